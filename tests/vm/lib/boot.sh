# Booting one kernel under QEMU for tests/vm/matrix.sh (sourced, not run).

# tcg unless hardware KVM really works. /dev/kvm alone proves nothing: on some cloud VMs it is
# a software KVM (kvm_pvm) on which distro kernels die with "KVM internal error".
pick_accel() {
  case ${PWRU_VM_ACCEL:-auto} in
    kvm | tcg) echo "$PWRU_VM_ACCEL" ;;
    *)
      if [ -w /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then
        echo kvm
      else
        echo tcg
      fi ;;
  esac
}

# boot_kernel IMAGE INITRD CONSOLE_LOG RESULTS_LOG GUEST_ARGS...
# Returns QEMU's status (124 on timeout). The guest writes protocol lines to RESULTS_LOG
# (its second serial port) and the kernel console to CONSOLE_LOG.
boot_kernel() {
  local image=$1 initrd=$2 console=$3 results=$4 accel
  shift 4
  accel=$(pick_accel)
  local accel_args=(-accel tcg,thread=multi -cpu "${PWRU_VM_CPU:-max}")
  [ "$accel" = kvm ] && accel_args=(-accel kvm -cpu host)
  : > "$console"; : > "$results"
  # -nodefaults: no NIC (no route out of the guest), no VGA, no option ROMs
  timeout "${PWRU_VM_TIMEOUT:-900}" qemu-system-x86_64 -nodefaults -no-user-config -no-reboot \
    "${accel_args[@]}" -smp "${PWRU_VM_SMP:-2}" -m "${PWRU_VM_MEM:-1024}" -display none \
    -serial "file:$console" -serial "file:$results" \
    -kernel "$image" -initrd "$initrd" \
    -append "console=ttyS0 panic=-1 quiet loglevel=4 ${PWRU_VM_APPEND:-} -- $*" < /dev/null > "$console.qemu" 2>&1
}
