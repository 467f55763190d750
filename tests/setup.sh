#!/usr/bin/env bash
# Installs every Debian package that building, running and testing pwru-rs needs.
# Idempotent: installs only what is missing. Run as root (CI and the README do).
set -euo pipefail

pkgs=(
  clang-19 llvm-19          # compiles the kernel programs (pwru-ebpf/rebuild.sh, feature test-programs)
  libbpf-dev                # bpf_helpers.h, bpf_core_read.h, bpf_tracing.h
  linux-libc-dev            # linux/bpf.h (uapi) for pwru-ebpf/bpf/*.c
  libpcap-dev               # pwru-filter: libpcap compiles pcap expressions to classic BPF
  pkg-config
  iproute2 nftables iptables  # network namespaces, veth, drop rules for tests and the demo
  librsvg2-bin              # rsvg-convert: the tests render the path picture (--output-paths-svg)
  qemu-system-x86 busybox-static cpio kmod xz-utils zstd lz4   # distro-kernel test matrix
  tshark                    # reads the pcap-ng exports back (pwru-core/tests/pcapng_tshark.rs)
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]}; run this script as root" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  # tshark pulls in wireshark-common, which otherwise asks whether non-root users may capture.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "setup: all packages present"

# tracefs: function discovery for the kprobe/fentry backends reads available_filter_functions,
# and some tests read tracepoint formats. Fresh machines may not have it mounted.
if ! grep -q ' tracefs ' /proc/mounts && [ -d /sys/kernel/tracing ]; then
  if [ "$(id -u)" = 0 ]; then
    mount -t tracefs nodev /sys/kernel/tracing && echo "setup: mounted tracefs at /sys/kernel/tracing"
  else
    echo "setup: tracefs is not mounted; as root: mount -t tracefs nodev /sys/kernel/tracing" >&2
  fi
fi
