#!/usr/bin/env bash
# Refreshes or checks the shipped BPF object pwru-ebpf/obj/pwru.bpf.o.
#
#   pwru-ebpf/rebuild.sh           compile bpf/pwru.bpf.c (build.rs, PWRU_EBPF_REBUILD=1) and
#                                  copy the result over obj/pwru.bpf.o; records the clang
#                                  version in obj/pwru.bpf.o.clang
#   pwru-ebpf/rebuild.sh --check   compile it twice in this tree and once in a copy of the
#                                  packaged crate at another path; fail unless all three are
#                                  byte-for-byte the shipped object
#
# The object is built with the clang named in obj/pwru.bpf.o.clang (clang-19 of Debian 12);
# another clang may produce other bytes, and --check says so.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"
shipped=$here/obj/pwru.bpf.o
pin=$here/obj/pwru.bpf.o.clang
clang=${PWRU_CLANG:-clang-19}

clang_version() { "$clang" --version 2>/dev/null | head -1 || echo "no $clang"; }

# build_object TARGET_DIR [cargo args...]: prints the path of the freshly compiled object.
build_object() {
  local target=$1 out
  shift
  out=$(PWRU_EBPF_REBUILD=1 PWRU_CLANG=$clang CARGO_TARGET_DIR=$target \
    cargo build --offline --message-format=json "$@" |
    grep '"reason":"build-script-executed"' | grep 'pwru-ebpf' |
    sed -nE 's/.*"out_dir":"([^"]*)".*/\1/p' | tail -1)
  [ -n "$out" ] && [ -f "$out/pwru.bpf.o" ] || { echo "rebuild.sh: no object was built" >&2; return 1; }
  echo "$out/pwru.bpf.o"
}

if [ "${1:-}" != --check ]; then
  obj=$(build_object "$root/target/ebpf-rebuild" -p pwru-ebpf)
  mkdir -p "$here/obj"
  cp "$obj" "$shipped"
  clang_version >"$pin"
  echo "rebuild.sh: wrote $shipped ($(wc -c <"$shipped") bytes) with $(cat "$pin")"
  exit 0
fi

want=$(cat "$pin")
have=$(clang_version)
fail() {
  echo "rebuild.sh --check: FAIL: $1" >&2
  if [ "$want" != "$have" ]; then
    echo "  the shipped object was built with: $want" >&2
    echo "  this machine's $clang is:          $have" >&2
    echo "  a different clang may produce different bytes: use the pinned one (tests/setup.sh)" >&2
  else
    echo "  same clang as the shipped object: the sources in bpf/ changed without running" >&2
    echo "  pwru-ebpf/rebuild.sh, or the build is not deterministic" >&2
  fi
  exit 1
}

tmp=$(mktemp -d /tmp/pwru-ebpf-check.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# 1 and 2: this tree, two clean builds.
for n in 1 2; do
  obj=$(build_object "$tmp/target-$n" -p pwru-ebpf) || fail "build $n in this tree failed"
  cmp "$obj" "$shipped" || fail "build $n in $root differs from the shipped object"
  echo "rebuild.sh --check: build $n in this tree matches ($(wc -c <"$shipped") bytes)"
done

# 3: the packaged crate (what crates.io gets), unpacked at another path.
CARGO_TARGET_DIR=$tmp/target-pkg cargo package --offline -p pwru-ebpf --no-verify --allow-dirty -q
mkdir -p "$tmp/elsewhere/deeper"
tar -xzf "$tmp"/target-pkg/package/pwru-ebpf-*.crate -C "$tmp/elsewhere/deeper"
crate=$(echo "$tmp"/elsewhere/deeper/pwru-ebpf-*)
cmp "$crate/obj/pwru.bpf.o" "$shipped" || fail "the packaged crate does not ship obj/pwru.bpf.o"
obj=$(cd "$crate" && build_object "$tmp/target-3") || fail "build in the packaged copy failed"
cmp "$obj" "$shipped" || fail "build in the packaged copy at $crate differs from the shipped object"
echo "rebuild.sh --check: build in the packaged copy at another path matches"
echo "rebuild.sh --check: OK, the shipped object is reproducible with $have"
