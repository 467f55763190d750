# Self-test of the host-side judging (sourced by matrix.sh; runs before any VM, in milliseconds).
#
# Feeds fixed protocol lines and kernel configs to `judge` and checks each verdict, so a change
# to the parser cannot quietly turn failures into passes or skips.

selftest_judge() {
  local d rows_saved=$ROWS metrics_saved=$METRICS bad=0 got
  d=$(mktemp -d "${TMPDIR:-/tmp}/pwru-vm-selftest.XXXXXX")
  ROWS=$d/rows METRICS=$d/metrics
  printf '%s\n' CONFIG_KPROBES=y CONFIG_KPROBE_EVENTS=y CONFIG_BPF_EVENTS=y CONFIG_DEBUG_INFO_BTF=y \
    CONFIG_BPF_JIT=y CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS=y '# CONFIG_FPROBE is not set' > "$d/cfg-6.1"
  { cat "$d/cfg-6.1"; echo CONFIG_FPROBE=y; } > "$d/cfg-6.12"
  # the lines a guest prints; \r as the serial line discipline adds it
  printf '%s\r\n' \
    'RESULT kprobe-multi capability skip unsupported: EOPNOTSUPP' \
    'RESULT kprobe capability pass kprobe+kretprobe' \
    'RESULT fentry fires fail fentry=0' \
    'RESULT tracepoint pending skip needs the tracer' \
    'METRIC baseline_load_ms 0.130' \
    'DONE 1' > "$d/res"

  check() {   # check CASE EXPECTED-VERDICTS
    got=$(cut -f4 "$ROWS" | tr '\n' ' ')
    if [ "$got" != "$2" ]; then
      echo "matrix self-test: $1: verdicts '$got', expected '$2'" >&2
      bad=1
    fi
    : > "$ROWS"
  }
  : > "$ROWS"; : > "$METRICS"
  read_expectations "$d/cfg-6.1"; judge k "$d/res" /dev/null 0
  check "6.1 config (no FPROBE)" "skip pass FAIL skip "
  read_expectations "$d/cfg-6.12"; judge k "$d/res" /dev/null 0
  check "6.12 config (FPROBE=y)" "FAIL pass FAIL skip "
  printf 'CONFIG_BPF_EVENTS=y\n' > "$d/cfg-none"
  read_expectations "$d/cfg-none"; judge k "$d/res" /dev/null 0
  check "config without kprobes" "skip FAIL FAIL skip "
  read_expectations ""; judge k "$d/res" /dev/null 0
  check "no config" "skip pass FAIL skip "
  grep -v DONE "$d/res" > "$d/res-crash"
  read_expectations "$d/cfg-6.1"; judge k "$d/res-crash" /dev/null 125
  check "guest crashed" "skip pass FAIL skip FAIL "
  # the expectations come from the rules file (tests/capabilities.conf), not from the judge:
  # a rule naming an option the config lacks turns the kprobe pass into a failure
  local rules_saved=$CAPABILITY_RULES
  { grep -v '^need kprobe ' "$rules_saved"; echo 'need kprobe CONFIG_NOT_IN_ANY_CONFIG'; } > "$d/rules"
  CAPABILITY_RULES=$d/rules
  read_expectations "$d/cfg-6.1"; judge k "$d/res" /dev/null 0
  check "rules file drives the expectations" "skip FAIL FAIL skip "
  CAPABILITY_RULES=$rules_saved
  grep -q '^k baseline_load_ms 0.130$' "$METRICS" || { echo "matrix self-test: metric not parsed" >&2; bad=1; }
  # the emulator's patching race (lib/emulator.sh) and look-alikes that must not pass for it
  local oops='[   16.094790] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI'
  local code='[   16.095727] Code: 90 90 90 90 f3 0f 1e fa e8 <67> 3c 80 3e 41 56'
  printf '%s\n' "$oops" 'RIP: 0010:__udp_enqueue_schedule_skb+0x5/0x260' "$code" > "$d/race"
  printf '%s\n' "$oops" 'RIP: 0010:__udp_enqueue_schedule_skb+0x5/0x260' \
    '[   16.095727] Code: 90 90 90 90 f3 0f 1e fa cc <67> 3c 80 3e 41 56' > "$d/int3-still-there"
  printf '%s\n' "$oops" 'RIP: 0010:ip_rcv+0x35/0x260' "$code" > "$d/not-the-site"
  printf '%s\n' '[   16.0] Oops: general protection fault: 0000 [#1]' "$oops" \
    'RIP: 0010:__udp_enqueue_schedule_skb+0x5/0x260' "$code" > "$d/other-oops-first"
  # a function IBT sealed: its endbr64 is a 4-byte nop
  printf '%s\n' "$oops" 'RIP: 0010:ip_send_skb+0x5/0x90' \
    '[   12.187454] Code: 90 90 90 90 66 0f 1f 00 e8 <47> 8e 84 3e 41 54' > "$d/race-sealed"
  got=$(tcg_patch_race "$d/race-sealed") && [ "$got" = "Oops: int3 at ip_send_skb+0x5, whose byte is already the patched e8" ] ||
    { echo "matrix self-test: the TCG patching race in a sealed function was not recognised ($got)" >&2; bad=1; }
  # 7.x seals with another 4-byte nop (a real oops of 7.3.4, ip_route_output_key_hash_rcu)
  printf '%s\n' "$oops" 'RIP: 0010:ip_route_output_key_hash_rcu+0x5/0x930' \
    '[  338.561241] Code: 90 90 90 90 0f 1f 40 d6 e8 <d7> a4 4f 3e 41 57' > "$d/race-sealed-7"
  got=$(tcg_patch_race "$d/race-sealed-7") && [ "$got" = "Oops: int3 at ip_route_output_key_hash_rcu+0x5, whose byte is already the patched e8" ] ||
    { echo "matrix self-test: the TCG patching race in a 7.x sealed function was not recognised ($got)" >&2; bad=1; }
  got=$(tcg_patch_race "$d/race") && [ "$got" = "Oops: int3 at __udp_enqueue_schedule_skb+0x5, whose byte is already the patched e8" ] ||
    { echo "matrix self-test: the TCG patching race was not recognised ($got)" >&2; bad=1; }
  # the kernel's own patching while it boots, before /init (a real oops of 6.12.118)
  printf '%s\n' '[    2.039996] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI' 'RIP: 0010:sched_clock_cpu+0x9/0x190' \
    '[    2.041765] Code: 90 90 f3 0f 1e fa 41 54 55 53 66 <90> e8 f1 ee f0 ff 48 03 05' > "$d/race-at-boot"
  : > "$d/no-results"
  echo 'METRIC boot_to_init_s 2.38' > "$d/init-ran"
  got=$(tcg_patch_race "$d/race-at-boot" "$d/no-results") &&
    [ "$got" = "Oops: int3 at sched_clock_cpu+0x9, before /init ran, whose byte is already the patched 66" ] ||
    { echo "matrix self-test: the TCG patching race while the kernel boots was not recognised ($got)" >&2; bad=1; }
  # once /init has run, only a function's ftrace site counts (the code under test patches those)
  if tcg_patch_race "$d/race-at-boot" "$d/init-ran" > /dev/null || tcg_patch_race "$d/race-at-boot" > /dev/null ||
    tcg_patch_race "$d/not-the-site" "$d/init-ran" > /dev/null; then
    echo "matrix self-test: an int3 oops after /init away from an ftrace site taken for the TCG patching race" >&2; bad=1
  fi
  if tcg_patch_race "$d/int3-still-there" "$d/no-results" > /dev/null; then
    echo "matrix self-test: an int3 still in place taken for the TCG patching race" >&2; bad=1
  fi
  for f in int3-still-there not-the-site other-oops-first; do
    if tcg_patch_race "$d/$f" > /dev/null; then
      echo "matrix self-test: $f taken for the TCG patching race" >&2; bad=1
    fi
  done
  rm -rf "$d"
  ROWS=$rows_saved METRICS=$metrics_saved
  return "$bad"
}
