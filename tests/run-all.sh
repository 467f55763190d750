#!/usr/bin/env bash
# The project's whole test command (the README's second command; .ci/run calls it).
# Needs root for the kernel tests; tests that cannot run here say why by name.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

step() { printf '\n=== %s (%ss since start)\n' "$1" "$SECONDS"; }

step "setup: Debian packages"
tests/setup.sh

step "format"
cargo fmt --all -- --check

step "clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests (unit, differential, host kernel)"
mkdir -p target
cargo test --workspace --locked --no-fail-fast -- --nocapture 2>&1 | tee target/test-output.log
echo "test binaries passed: $(grep -c '^test result: ok' target/test-output.log)"
echo "skipped, with reasons:"; grep '^SKIP' target/test-output.log || echo "  (none)"

step "docs (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

if [ -x tests/vm/matrix.sh ]; then
  step "distro-kernel matrix (QEMU)"
  tests/vm/matrix.sh
fi

step "all green"
