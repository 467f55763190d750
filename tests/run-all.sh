#!/usr/bin/env bash
# The project's whole test command (the README's second command; .ci/run calls it).
# Needs root for the kernel tests; tests that cannot run here say why by name (tests/README.md).
# Ends with one line `N passed, N failed, N skipped` over cargo's tests and the VM matrix.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

step() { printf '\n=== %s (%ss since start)\n' "$1" "$SECONDS"; }

# summarize TEST_LOG [MATRIX_LOG]: lists every SKIP line and prints the totals.
#   passed  = tests cargo counted as passed, less those that skipped as a whole
#             (`SKIP <test>: ...`; a `SKIP <test> (<part>): ...` line skips a part of a test
#             that otherwise ran), plus the matrix's passed results
#   failed  = cargo's failed tests, +1 per test binary that started but printed no
#             `test result:` line (crashed), +1 if cargo failed with nothing counted (did not
#             build; $TEST_STATUS is its exit status), plus the matrix's failures
#   skipped = every SKIP line and every ignored test, plus the matrix's skips
# A SKIP line can follow libtest's `test NAME ... ` on the same line when output interleaves,
# so SKIP is looked for anywhere in a line.
summarize() {
  local log=$1 matrix=${2:-} skips whole partial p f i runs extra mp=0 mf=0 ms=0
  skips=$(grep -o 'SKIP [^[:space:]].*' "$log" || true)
  whole=$(printf '%s\n' "$skips" | grep -c '^SKIP [^ :(]*:' || true)
  partial=$(printf '%s\n' "$skips" | grep -c '^SKIP [^ :(]* (' || true)
  # The last `test result:` line of each binary's section counts (a test that re-runs its own
  # binary as a child may let the child's result line through before it).
  read -r p f i runs extra < <(awk '
    function flush() { if (sec) { if (have) { p += cp; f += cf; i += ci } else missing++ } }
    /^ *(Running|Doc-tests) / { flush(); sec = 1; have = 0; runs++; next }
    /test result: / {
      if (match($0, /[0-9]+ passed; [0-9]+ failed; [0-9]+ ignored/)) {
        split(substr($0, RSTART, RLENGTH), w, " "); cp = w[1]; cf = w[3]; ci = w[5]; have = 1
      }
    }
    END { flush(); print p + 0, f + 0, i + 0, runs + 0, missing + 0 }' "$log")
  if [ "${TEST_STATUS:-0}" != 0 ] && [ $((f + extra)) = 0 ]; then extra=1; fi
  echo "skipped, with reasons:"
  if [ -n "$skips" ]; then printf '%s\n' "$skips" | sed 's/^/  /'; else echo "  (none)"; fi
  echo "cargo tests: $((p - whole)) passed, $((f + extra)) failed, $((whole + partial + i)) skipped ($whole whole tests and $partial parts said SKIP, $i ignored; $runs binaries, $extra without a result)"
  if [ -n "$matrix" ]; then
    read -r mp mf ms < <(sed -nE 's/^matrix: ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped$/\1 \2 \3/p' "$matrix" 2>/dev/null | tail -1) || true
    if [ -n "$mp" ]; then
      echo "VM matrix: $mp passed, $mf failed, $ms skipped"
    else
      mp=0 mf=1 ms=0
      echo "VM matrix: no result line (it did not finish): 1 failure"
    fi
  fi
  SUMMARY_FAILED=$((f + extra + mf))
  echo "$((p - whole + mp)) passed, $SUMMARY_FAILED failed, $((whole + partial + i + ms)) skipped"
}

if [ "${1:-}" = --summarize ]; then   # tests/run-all.sh --summarize TEST_LOG [MATRIX_LOG]
  shift; summarize "$@"; [ "$SUMMARY_FAILED" = 0 ]; exit
fi

step "setup: Debian packages"
tests/setup.sh

step "format"
cargo fmt --all -- --check
# cargo fmt reaches only the files it finds through `mod` items outside macro calls; rustfmt on
# every tracked file also covers the rest (tests/packaged/main.rs, copied into a crate of its own).
git ls-files -z '*.rs' | xargs -0 rustfmt --edition 2021 --check

step "clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "shipped BPF object: rebuilt from bpf/ it is byte-identical (twice, and at another path)"
pwru-ebpf/rebuild.sh --check

step "publishing dry run (pwru-ebpf, pwru-filter, pwru-core)"
# The dry run unpacks our own crates into cargo's registry cache under a name that depends only
# on the checkout's path and the version; cargo reuses an unpacked copy it finds there, so a
# stale one from an earlier run of the same version would be verified instead of this tree.
rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/pwru-{ebpf,filter,core}-[0-9]*
cargo publish --dry-run --locked --allow-dirty -p pwru-ebpf -p pwru-filter -p pwru-core

step "tests (unit, differential, host kernel)"
mkdir -p target
TEST_STATUS=0
cargo test --workspace --locked --no-fail-fast -- --nocapture 2>&1 | tee target/test-output.log || TEST_STATUS=$?

step "docs (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

matrix_log=
if [ -x tests/vm/matrix.sh ]; then
  step "distro-kernel matrix (QEMU)"
  matrix_log=target/vm-matrix-output.log
  tests/vm/matrix.sh 2>&1 | tee "$matrix_log" || true
fi

step "summary"
summarize target/test-output.log $matrix_log
[ "$SUMMARY_FAILED" = 0 ] && [ "$TEST_STATUS" = 0 ]
