# Initramfs assembly for tests/vm/matrix.sh (sourced, not run).
#
# The initramfs is two concatenated newc archives (the kernel unpacks both):
#   base.cpio   - the same for every kernel: static busybox, /init, the guest binary,
#                 iproute2 (ip, tc) and nft with their shared libraries (copied from the host)
#   modules     - per kernel, cached in its tree: the modules the scenarios need, decompressed,
#                 in dependency order, listed in /etc/modules

# Kernel modules the scenarios need (missing or built-in ones are fine: noted, not fatal).
VM_MODULES=(veth sch_ingress cls_bpf act_bpf nf_tables nft_chain_nat nft_nat nft_ct
  nft_reject_inet nf_reject_ipv4 nf_reject_ipv6)

# Host binaries copied with their libraries (same paths as on the host).
VM_HOST_BINS=(/usr/sbin/ip /usr/sbin/tc /usr/sbin/nft)

# Copies a host binary and the libraries ldd lists into root $1.
copy_with_libs() {
  local root=$1 bin=$2 lib
  cp -L --parents "$bin" "$root"
  { ldd "$bin" 2> /dev/null || true; } | { grep -o '/[^ ]*' || true; } | while read -r lib; do
    [ -e "$root$lib" ] || cp -L --parents "$lib" "$root"
  done
}

# Builds the base archive into $1 from guest binary $2.
build_base_cpio() {
  local out=$1 guest=$2 r
  r=$(mktemp -d "${TMPDIR:-/tmp}/pwru-vm-root.XXXXXX")
  mkdir -p "$r"/{bin,dev,proc,sys,run,tmp,etc,pwru,lib/modules}
  ln -s /run "$r/var"
  cp "$(command -v busybox)" "$r/bin/busybox"
  cp "$VM_DIR/guest-init.sh" "$r/init"; chmod 755 "$r/init"
  : > "$r/etc/pwru-vm-guest"   # tells vm_guest it may use /dev/ttyS1
  copy_with_libs "$r" "$guest"
  mv "$r$guest" "$r/pwru/vm_guest"
  local b
  for b in "${VM_HOST_BINS[@]}"; do copy_with_libs "$r" "$b"; done
  # PWRU_VM_PROFILE=HZ: perf samples the whole guest while the guest binary runs (guest-init.sh)
  if [ -n "${PWRU_VM_PROFILE:-}" ]; then
    copy_with_libs "$r" "$(command -v perf)"
    printf '%s\n' "$PWRU_VM_PROFILE" > "$r/etc/pwru-vm-profile"
  fi
  (cd "$r" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) > "$out"
  rm -rf "$r"
}

# Prints the path of the cached modules archive of the prepared kernel (KMODROOT, KVER, KTREE),
# building it first if needed.
modules_cpio() {
  local key out r m ko dst
  key=$(printf '%s ' "${VM_MODULES[@]}" | cksum | cut -d' ' -f1)
  out=$KTREE/initrd-modules-$key.cpio
  if [ ! -s "$out" ]; then
    r=$(mktemp -d "${TMPDIR:-/tmp}/pwru-vm-mods.XXXXXX")
    mkdir -p "$r/lib/modules" "$r/etc"
    : > "$r/etc/modules"
    for m in "${VM_MODULES[@]}"; do
      modprobe -d "$KMODROOT" -S "$KVER" --show-depends "$m" 2> /dev/null ||
        echo "missing $m" >> "$r/etc/modules.notes"
    done | awk '$1 == "insmod" && !seen[$2]++ {print $2}' | while read -r ko; do
      dst=$r/lib/modules/$(basename "${ko%.*z*}")
      case $ko in
        *.ko.xz) xz -dc "$ko" > "$dst" ;;
        *.ko.zst) zstd -dcq "$ko" > "$dst" ;;
        *.ko.gz) gzip -dc "$ko" > "$dst" ;;
        *) dst=$r/lib/modules/$(basename "$ko"); cp "$ko" "$dst" ;;
      esac
      echo "/lib/modules/$(basename "$dst")" >> "$r/etc/modules"
    done
    (cd "$r" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) > "$out.tmp" && mv "$out.tmp" "$out"
    rm -rf "$r"
  fi
  printf '%s' "$out"
}
