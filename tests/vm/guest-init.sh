#!/bin/busybox sh
# /init of the matrix's initramfs: mount what BPF tests need, load the modules listed in
# /etc/modules, run the guest test binary with the arguments the kernel got after "--", and
# power off. Protocol lines (see tests/src/bin/vm_guest/report.rs) go to /dev/ttyS1.
/bin/busybox --install -s /bin
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/
proto() { echo "$*" > /dev/ttyS1; }

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs run /run && mkdir -p /run/netns
mount -t tmpfs tmp /tmp
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing 2> /dev/null
mount -t debugfs debugfs /sys/kernel/debug 2> /dev/null
proto "METRIC boot_to_init_s $(cut -d' ' -f1 /proc/uptime)"
# the clock behind bpf_ktime_get_ns and clock_gettime: under TCG the kernel may leave the TSC
# for an emulated device, which changes what every timestamp costs
proto "INFO clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2> /dev/null)"
# the string and copy instructions the emulated CPU offers, which glibc's memcpy and friends
# pick from (under TCG their costs differ far more than on hardware)
proto "INFO cpu $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'sse4_2|avx|avx2|avx512f|erms|fsrm' | tr '\n' ' ')"

while read -r ko; do
  insmod "$ko" 2> /dev/null || proto "INFO insmod $ko failed"
done < /etc/modules
proto "METRIC modules_loaded_s $(cut -d' ' -f1 /proc/uptime)"
/usr/sbin/ip link set lo up

/pwru/vm_guest "$@"
proto "EXIT $? uptime=$(cut -d' ' -f1 /proc/uptime) mem_used_kb=$(free | awk '/Mem:/ {print $3}')"
poweroff -f
