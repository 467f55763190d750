#!/usr/bin/env bash
# The distro-kernel test matrix: boots Debian's own kernels under QEMU and runs the guest test
# binary (tests/src/bin/vm_guest) in each, then prints kernel x backend x scenario.
#
#   tests/vm/matrix.sh [--kernels 6.1,6.12,7] [--scenario A,B] [--backend X,Y] [--fetch-only]
#
# Exit status: 0 when nothing failed unexpectedly (skips with reasons are fine), 1 otherwise.
# See tests/vm/README.md for the environment variables, the cache and how to add scenarios.
set -euo pipefail

VM_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$VM_DIR/../.." && pwd)
[ -f "${HOME:-/root}/.cargo/env" ] && . "${HOME:-/root}/.cargo/env"

CACHE=${PWRU_VM_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/pwru-rs/vm}
OUT=${PWRU_VM_OUT:-$ROOT/target/vm-matrix}
PWRU_VM_FLAVOUR=${PWRU_VM_FLAVOUR:-cloud-amd64}
KERNELS=${PWRU_VM_KERNELS:-6.1 6.12 7}
GUEST_ARGS=()
FETCH_ONLY=0
while [ $# -gt 0 ]; do
  case $1 in
    --kernels) KERNELS=${2//,/ }; shift 2 ;;
    --scenario | --backend) GUEST_ARGS+=("$1" "$2"); shift 2 ;;
    --fetch-only) FETCH_ONLY=1; shift ;;
    -h | --help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "matrix.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

log() { printf '[vm %5ss] %s\n' "$SECONDS" "$*" >&2; }

. "$VM_DIR/lib/kernels.sh"
. "$VM_DIR/lib/initramfs.sh"
. "$VM_DIR/lib/boot.sh"
. "$VM_DIR/lib/report.sh"
. "$VM_DIR/lib/emulator.sh"
. "$VM_DIR/lib/selftest.sh"

missing=()
for t in qemu-system-x86_64 busybox cpio depmod modprobe xz zstd lz4 apt-get dpkg cargo; do
  command -v "$t" > /dev/null || missing+=("$t")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "matrix.sh: missing host tools: ${missing[*]} (run tests/setup.sh as root)" >&2
  exit 1
fi
mkdir -p "$CACHE" "$OUT"
ROWS=$OUT/rows.tsv METRICS=$OUT/metrics.txt
selftest_judge || { echo "matrix.sh: the result judge is broken (see above)" >&2; exit 1; }
: > "$ROWS"; : > "$METRICS"; rm -f "$OUT/notes"

# --- guest binary: dynamic by default (the initramfs carries its libraries); static on request --
# PWRU_VM_GUEST_LINK=dynamic (default)|static|auto (auto: static, or dynamic when the static link fails,
# e.g. once libpcap is linked: its archive needs libdbus and libsystemd, which have none)
build_guest() {   # build_guest static|dynamic -> sets GUEST
  local link=$1 flags= dir=$ROOT/target/vm-guest strip=symbols
  [ -n "${PWRU_VM_PROFILE:-}" ] && strip=none   # perf in the guest names our functions
  [ "$link" = static ] && flags="-C target-feature=+crt-static"
  [ "$link" = dynamic ] && dir=$ROOT/target/vm-guest-dynamic
  # own target dirs: the static flags must not invalidate the workspace's normal builds
  CARGO_TARGET_DIR=$dir RUSTFLAGS="$flags" \
    CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=$strip \
    cargo build --manifest-path "$ROOT/Cargo.toml" --release --locked -q \
    -p pwru-tests --bin vm_guest --target x86_64-unknown-linux-gnu 2> "$OUT/guest-build-$link.log" || {
    return 1
  }
  GUEST=$dir/x86_64-unknown-linux-gnu/release/vm_guest
}
if [ "$FETCH_ONLY" = 0 ]; then
  link=${PWRU_VM_GUEST_LINK:-dynamic}
  log "building vm_guest (release, ${link} link)"
  if [ "$link" = auto ]; then
    if ! build_guest static; then
      # only a failed link is worth a second, dynamic build; a compile error fails both
      if grep -qE 'linking with|undefined (symbol|reference)|native static library' "$OUT/guest-build-static.log"; then
        log "static link failed (see $OUT/guest-build-static.log); linking dynamically"
        link=dynamic
      else
        link=static
      fi
    fi
  fi
  if [ -z "${GUEST:-}" ] && ! build_guest "$link"; then
    cat "$OUT/guest-build-$link.log" >&2
    echo "matrix.sh: building vm_guest failed" >&2
    exit 1
  fi
  build_base_cpio "$OUT/base.cpio" "$GUEST"
fi

# run_kernel INDEX SERIES: prepares, boots and judges one kernel; its rows and metrics go to
# files of its own (merged in kernel order afterwards), so kernels can run as parallel jobs.
run_kernel() {
  local idx=$1 series=$2 label=$2 prepared=0 initrd t0 t1 st=0
  local ROWS=$OUT/rows.$idx METRICS=$OUT/metrics.$idx
  : > "$ROWS"; : > "$METRICS"
  # the cache is shared by every checkout on the machine: one job at a time prepares kernels
  # (a lock file opened by this job: flock locks belong to the open file, not the process)
  exec 9> "$CACHE/.lock"
  flock 9
  prepare_kernel "$series" && prepared=1
  flock -u 9
  if [ "$prepared" = 0 ]; then
    if [ "$series" = 7 ]; then
      add_row "$label" - kernel skip "7.x kernel not available: $REASON"
    else
      add_row "$label" - kernel FAIL "could not get the $series kernel: $REASON"
    fi
    log "$series: $REASON"
    return 0
  fi
  label=$(printf '%s' "$KVER" | sed -E 's/-(cloud-)?amd64$//; s/\+deb[0-9]+//')
  [ "$FETCH_ONLY" = 1 ] && { log "$series: $KNAME ready in $KTREE"; return 0; }
  initrd=$OUT/initrd-$KNAME.cpio
  cat "$OUT/base.cpio" "$(modules_cpio)" > "$initrd"
  read_expectations "$KCONFIG"
  log "booting $KNAME ($(pick_accel))"
  t0=$(date +%s.%N)
  local slow=()
  case " ${PWRU_VM_SLOW_ON:-6.12} " in *" $series "* | *" all "*) slow=(--slow) ;; esac
  # The slow kernel's boot also runs full-attach on kprobe and fentry (about 9 minutes under
  # TCG, most of it detaching): it gets a longer bound than the others' 900 s.
  local bound=${PWRU_VM_TIMEOUT:-900}
  [ ${#slow[@]} -gt 0 ] && [ -z "${PWRU_VM_TIMEOUT:-}" ] && bound=1800
  PWRU_VM_TIMEOUT=$bound boot_kernel "$KIMAGE" "$initrd" "$OUT/$KNAME.console" "$OUT/$KNAME.results" "${GUEST_ARGS[@]}" "${slow[@]}" || st=$?
  # Up to two more boots, and only for the emulator's own fault (lib/emulator.sh), each stated
  # in the output: a third such crash, or any other crash, fails as usual. (One more boot was
  # not enough: the race crashed a boot twice in a row in 2 of 17 runs of first-event on
  # 2026-12-04.)
  local race reboots=0
  while [ "$reboots" -lt 2 ] && [ "$(pick_accel)" = tcg ] && ! grep -q '^DONE' "$OUT/$KNAME.results" &&
    race=$(tcg_patch_race "$OUT/$KNAME.console" "$OUT/$KNAME.results"); do
    reboots=$((reboots + 1))
    mv "$OUT/$KNAME.console" "$OUT/$KNAME.console.tcg-race$reboots"
    mv "$OUT/$KNAME.results" "$OUT/$KNAME.results.tcg-race$reboots"
    log "$KNAME: emulator fault ($race); booting once more"
    printf '%s: boot %d died of QEMU TCG'"'"'s cross-modifying-code race (%s; tests/vm/lib/emulator.sh), console kept as %s; booted once more\n' \
      "$label" "$reboots" "$race" "$KNAME.console.tcg-race$reboots" >> "$OUT/notes.$idx"
    st=0
    PWRU_VM_TIMEOUT=$bound boot_kernel "$KIMAGE" "$initrd" "$OUT/$KNAME.console" "$OUT/$KNAME.results" "${GUEST_ARGS[@]}" "${slow[@]}" || st=$?
  done
  [ "$reboots" -gt 0 ] && echo "$label tcg_patch_race_reboots $reboots" >> "$METRICS"
  t1=$(date +%s.%N)
  log "$KNAME done"
  awk -v k="$label" -v a="$t0" -v b="$t1" 'BEGIN {printf "%s round_s %.2f\n", k, b - a}' >> "$METRICS"
  PWRU_VM_TIMEOUT=$bound judge "$label" "$OUT/$KNAME.results" "$OUT/$KNAME.console" "$st"
  rm -f "$initrd"
}

# PWRU_VM_JOBS=1 (default) boots one kernel at a time: the timings stay clean. 2 fits two
# host cores too (TCG guests idle a lot) and cuts the wall time of the matrix by ~40%.
JOBS=${PWRU_VM_JOBS:-1}
n=0
for series in $KERNELS; do
  n=$((n + 1))
  if [ "$JOBS" -le 1 ]; then
    run_kernel "$n" "$series"
  else
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
    run_kernel "$n" "$series" &
  fi
done
wait
for i in $(seq 1 "$n"); do
  cat "$OUT/rows.$i" >> "$ROWS"; cat "$OUT/metrics.$i" >> "$METRICS"
  [ -f "$OUT/notes.$i" ] && cat "$OUT/notes.$i" >> "$OUT/notes"
  rm -f "$OUT/rows.$i" "$OUT/metrics.$i" "$OUT/notes.$i"
done
[ "$FETCH_ONLY" = 1 ] && exit 0

echo
echo "distro-kernel matrix ($(pick_accel), flavour $PWRU_VM_FLAVOUR; logs in $OUT)"
render_table
if [ -s "$OUT/notes" ]; then echo; cat "$OUT/notes"; fi
echo
render_metrics
fails=$(awk -F'\t' '$4 == "FAIL"' "$ROWS" | wc -l)
echo
echo "matrix time: ${SECONDS}s"
echo "matrix: $(awk -F'\t' '$4 == "pass"' "$ROWS" | wc -l) passed, $fails failed, $(awk -F'\t' '$4 == "skip"' "$ROWS" | wc -l) skipped"
[ "$fails" = 0 ]
