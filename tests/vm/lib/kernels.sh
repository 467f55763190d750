# Kernel resolution, download and extraction for tests/vm/matrix.sh (sourced, not run).
#
# A kernel "series" (6.1, 6.12, 7) is resolved to an exact Debian package name with apt's own
# metadata, downloaded with `apt-get download` (nothing is installed on the host), unpacked with
# `dpkg -x` into $CACHE/trees/<name>, and prepared once: uncompressed ELF vmlinux (boots through
# the PVH entry, skipping the decompressor under TCG) and modules.dep (depmod).
#
# Each function that can fail for a reason outside the project (no network, package gone)
# returns non-zero after writing the reason to $REASON; the caller turns it into a skip row.

# The host's Debian mirror, read from its apt sources (deb822 first, then one-line format).
debian_mirror() {
  local m
  m=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$m" ] || m=$(awk '$1 == "deb" && $0 ~ /debian/ && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
  printf '%s' "$m"
}

# apt options of the throw-away configuration that reaches trixie-backports (7.x kernels).
# Its state lives in the cache, never in /etc/apt or /var/lib/apt.
backports_apt_opts() {
  local d=$CACHE/apt-trixie-backports
  printf '%s ' -o "Dir::Etc::SourceList=$d/sources.list" -o "Dir::Etc::SourceParts=$d/parts" \
    -o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d/cache" -o "Dir::State::Status=$d/status" \
    -o "APT::Sandbox::User=root" -o "Acquire::Retries=1" -o "Acquire::http::Timeout=20"
}

# Refreshes the trixie-backports package lists at most once a day.
backports_update() {
  local d=$CACHE/apt-trixie-backports mirror
  mirror=$(debian_mirror)
  if [ -z "$mirror" ]; then REASON="no Debian mirror found in the host's apt sources"; return 1; fi
  mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/parts"
  : > "$d/status"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie-backports main" > "$d/sources.list"
  if [ -n "$(find "$d/lists" -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null)" ]; then return 0; fi
  # shellcheck disable=SC2046
  if ! timeout 120 apt-get $(backports_apt_opts) -qq update > "$d/update.log" 2>&1; then
    REASON="trixie-backports not reachable ($(grep -m1 -E '^(E|W):' "$d/update.log" | cut -c1-80))"
    return 1
  fi
}

# Sets PKGS to the exact package name(s) for a series, the kernel image first.
resolve_packages() {
  PKGS=
  local series=$1 flavour=$PWRU_VM_FLAVOUR name
  case $series in
    6.1)
      name=$(apt-cache pkgnames linux-image-6.1.0- 2>/dev/null |
        grep -E "^linux-image-6\.1\.0-[0-9]+-${flavour}\$" | sort -V | tail -1) ;;
    6.12)
      name=$(apt-cache pkgnames linux-image-6.12. 2>/dev/null |
        grep -E "^linux-image-6\.12\.[0-9]+\+deb[0-9]+-${flavour}\$" | sort -V | tail -1) ;;
    7)
      backports_update || return 1
      # shellcheck disable=SC2046
      name=$(apt-cache $(backports_apt_opts) pkgnames linux-binary-7. 2>/dev/null |
        grep -E "^linux-binary-7\.[0-9.]+\+deb[0-9]+-${flavour}\$" | sort -V | tail -1)
      if [ -n "$name" ]; then
        local ver=${name#linux-binary-}
        PKGS="$name linux-modules-$ver"
        # the kernel config lives in a third package on 7.x; optional (only feeds the oracle)
        # shellcheck disable=SC2046
        if apt-cache $(backports_apt_opts) pkgnames "linux-base-$ver" 2>/dev/null | grep -qx "linux-base-$ver"; then
          PKGS="$PKGS linux-base-$ver"
        fi
        return 0
      fi ;;
    *) REASON="unknown kernel series '$series' (known: 6.1 6.12 7)"; return 1 ;;
  esac
  if [ -z "$name" ]; then
    REASON="no linux-image package for $series ($flavour) in apt's lists; run apt-get update"
    return 1
  fi
  PKGS=$name
}

fetch_all() {
  local p
  for p in $PKGS; do fetch_deb "$p" "$1" || return 1; done
}

# Downloads one package into $CACHE/debs unless a .deb of it is already there.
fetch_deb() {
  local pkg=$1 series=$2 apt_opts=()
  # shellcheck disable=SC2207
  [ "$series" = 7 ] && apt_opts=($(backports_apt_opts))
  ls "$CACHE/debs/${pkg}"_*.deb > /dev/null 2>&1 && return 0
  mkdir -p "$CACHE/debs"
  log "downloading $pkg"
  if ! (cd "$CACHE/debs" && apt-get "${apt_opts[@]}" download -qq "$pkg" > "$CACHE/debs/download.log" 2>&1); then
    REASON="apt-get download $pkg failed: $(grep -m1 -E '^(E|W):' "$CACHE/debs/download.log" | cut -c1-80)"
    return 1
  fi
}

# Resolves and fetches a series; with stale host lists (the package was superseded and left
# the mirror), refreshes them once and resolves again.
resolve_and_fetch() {
  local series=$1
  resolve_packages "$series" && fetch_all "$series" && return 0
  [ "$series" = 7 ] && return 1
  log "$series: $REASON; refreshing apt lists and retrying"
  apt-get update -qq > /dev/null 2>&1 || true
  resolve_packages "$series" && fetch_all "$series"
}

# Extracts the uncompressed ELF vmlinux from a bzImage ($1) into $2.
extract_vmlinux() {
  local bz=$1 out=$2 sects poff plen magic dec
  sects=$(od -An -tu1 -j$((0x1f1)) -N1 "$bz" | tr -d ' '); [ "$sects" -eq 0 ] && sects=4
  poff=$(od -An -tu4 -j$((0x248)) -N4 "$bz" | tr -d ' ')
  plen=$(od -An -tu4 -j$((0x24c)) -N4 "$bz" | tr -d ' ')
  payload() { tail -c +$(((sects + 1) * 512 + poff + 1)) "$bz" | head -c "$plen"; }
  magic=$(payload | head -c4 | od -An -tx1 | tr -d ' \n')
  case $magic in
    fd377a58) dec="xz -dc" ;; 28b52ffd) dec="zstd -dcq" ;; 02214c18) dec="lz4 -dc" ;;
    1f8b*) dec="gzip -dc" ;; *) dec=false ;;
  esac
  payload | $dec > "$out.tmp" 2> /dev/null || true   # trailing-data warnings are expected
  if [ "$(head -c4 "$out.tmp" | od -An -c | tr -d ' \n')" = '177ELF' ]; then
    mv "$out.tmp" "$out"
  else
    rm -f "$out.tmp"; cp "$bz" "$out"   # boots through the decompressor: slower, still works
  fi
}

# Makes sure kernel series $1 is downloaded and prepared. Sets KNAME, KTREE, KVER, KMODROOT,
# KIMAGE and KCONFIG. Falls back to the newest cached tree of the series when apt cannot
# resolve or fetch (offline run).
prepare_kernel() {
  local series=$1 pkg tree
  REASON=
  if resolve_and_fetch "$series"; then
    KNAME=${PKGS%% *}; KNAME=${KNAME#linux-image-}; KNAME=${KNAME#linux-binary-}
    tree=$CACHE/trees/$KNAME
    if [ ! -e "$tree/.ready" ]; then
      log "unpacking $KNAME"
      rm -rf "$tree"; mkdir -p "$tree"
      for pkg in $PKGS; do dpkg -x "$(ls "$CACHE/debs/${pkg}"_*.deb | tail -1)" "$tree"; done
    fi
  else
    [ -n "$REASON" ] || REASON="could not resolve or fetch series $series"
    tree=$(ls -d "$CACHE"/trees/* 2> /dev/null | grep -E "/$(series_glob "$series").*[0-9]-${PWRU_VM_FLAVOUR}\$" | sort -V | tail -1 || true)
    if [ -z "$tree" ] || [ ! -e "$tree/.ready" ]; then return 1; fi
    log "using cached $(basename "$tree") ($REASON)"
    KNAME=$(basename "$tree")
  fi
  KTREE=$tree
  KMODROOT=$tree; [ -d "$tree/usr/lib/modules" ] && KMODROOT=$tree/usr
  KVER=$(ls "$KMODROOT/lib/modules" | head -1)
  KCONFIG=$(ls "$tree"/boot/config-* "$KMODROOT/lib/modules/$KVER/config" "$tree"/usr/lib/linux/config-* 2> /dev/null | head -1 || true)
  KIMAGE=$tree/vmlinux
  if [ ! -e "$tree/.ready" ]; then
    local bz
    bz=$(ls "$tree"/boot/vmlinuz-* "$KMODROOT/lib/modules/$KVER/vmlinuz" 2> /dev/null | head -1 || true)
    if [ -z "$bz" ]; then REASON="no vmlinuz in $KNAME (a meta package?)"; return 1; fi
    extract_vmlinux "$bz" "$KIMAGE"
    depmod -b "$KMODROOT" "$KVER"
    touch "$tree/.ready"
    # keep one tree per series and flavour: older ones are superseded by this one
    for old in $(ls -d "$CACHE"/trees/* | grep -E "/$(series_glob "$series").*[0-9]-${PWRU_VM_FLAVOUR}\$" | grep -vx "$tree"); do
      rm -rf "$old"; rm -f "$CACHE/debs/"*"$(basename "$old")"_*.deb
    done
  fi
}

# Regex (anchored at the tree name) for the trees of a series.
series_glob() {
  case $1 in
    6.1) printf '6\\.1\\.0-' ;; 6.12) printf '6\\.12\\.' ;; 7) printf '7\\.' ;; *) printf 'NONE' ;;
  esac
}
