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

# Meltdown page-table isolation: with it, every system call and interrupt would switch page
# tables, which under TCG flushes the emulator's TLB (QEMU 7.2's `-cpu max`: "Not affected")
proto "INFO meltdown $(cat /sys/devices/system/cpu/vulnerabilities/meltdown 2> /dev/null)"

while read -r ko; do
  insmod "$ko" 2> /dev/null || proto "INFO insmod $ko failed"
done < /etc/modules
proto "METRIC modules_loaded_s $(cut -d' ' -f1 /proc/uptime)"
/usr/sbin/ip link set lo up

if [ -s /etc/pwru-vm-profile ]; then
  # PWRU_VM_PROFILE (matrix.sh): sample every CPU with the software clock (TCG has no PMU),
  # then print where the samples fell, per thread name and symbol, to the console log
  perf record -q -e cpu-clock -F "$(cat /etc/pwru-vm-profile)" -a -o /run/perf.data -- \
    /pwru/vm_guest "$@"
  st=$?
  echo "PROFILE begin"
  perf report -i /run/perf.data --stdio --sort comm --percent-limit 0.5 2>&1 | grep -v '^#\|^$'
  perf report -i /run/perf.data --stdio --sort comm,dso,sym --percent-limit 0.05 2>&1 |
    grep -v '^#\|^$\|swapper' | head -n 400
  echo "PROFILE end"
else
  /pwru/vm_guest "$@"
  st=$?
fi
proto "EXIT $st uptime=$(cut -d' ' -f1 /proc/uptime) mem_used_kb=$(free | awk '/Mem:/ {print $3}')"
poweroff -f
