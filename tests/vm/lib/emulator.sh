# Faults of the emulator, told apart from faults of the code under test (sourced, not run).
#
# QEMU's multi-threaded TCG does not honour x86 cross-modifying code exactly: while one vCPU
# patches a function's ftrace site (the kernel's int3 protocol: int3 first, then the rest of
# the instruction, then the first byte, a serialising IPI after each step), the other vCPU can
# still run a translation of the page made from the int3 stage after the last step. Its trap
# then finds no patch in progress, and the kernel dies with "Oops: int3" at the site, whose
# bytes by then are the finished instruction. On hardware the protocol rules this out. Seen in
# 3 of about 45 boots of 6.12, all in `first-event` (kprobe-multi links patching ~1,600 sites
# while UDP crosses a veth on the other vCPU), and once on 7.3 in `track-addr-reuse`.

# The same race hits the kernel's own patching while it boots (jump labels, static calls:
# once at sched_clock_cpu+0x9, a 2-byte nop, 2.0 s into a 6.12 boot), before /init and so
# before any code under test has run.

# tcg_patch_race CONSOLE_LOG [RESULTS]: prints a one-line description and succeeds if the
# console's first oops is that trap: "Oops: int3", RIP at a function's ftrace site (+0x1, or
# +0x5 after an endbr64 or the 4-byte nop that replaces it in functions IBT sealed: 66 0f 1f 00
# on 6.12, 0f 1f 40 d6 on 7.x), and the byte the trap came from already the finished patch
# (e8: call, patched in; 0f: the 5-byte nop, patched out). With RESULTS (the guest's protocol
# lines) showing that /init never reported (no boot_to_init_s), an int3 trap anywhere counts
# too, as long as its byte is no longer the int3 (cc).
tcg_patch_race() {
  local early=0
  if [ -n "${2:-}" ] && ! grep -q 'boot_to_init_s' "$2" 2> /dev/null; then early=1; fi
  awk -v early="$early" '
    !oops && /Oops: / { if ($0 !~ /Oops: int3/) exit 1; oops = 1; next }
    oops && !rip && /RIP: 0010:/ {
      if (!match($0, /RIP: 0010:[A-Za-z0-9_.]+\+0x[0-9a-f]+\//)) exit 1
      rip = substr($0, RSTART + 10, RLENGTH - 11); next
    }
    rip && /Code:/ {
      if (rip ~ /\+0x[15]$/) {
        site = (rip ~ /\+0x5$/) ? "(f3 0f 1e fa|66 0f 1f 00|0f 1f 40 d6) (e8|0f) <" : "(e8|0f) <"
      } else if (early) {
        site = " [0-9a-f][0-9a-f] <"
      } else exit 1
      if (!match($0, site)) exit 1
      byte = substr($0, RSTART + RLENGTH - 4, 2)
      if (byte == "cc") exit 1
      when = (early && rip !~ /\+0x[15]$/) ? ", before /init ran," : ","
      printf "Oops: int3 at %s%s whose byte is already the patched %s\n", rip, when, byte
      found = 1; exit 0
    }
    END { exit !found }' "$1"
}
