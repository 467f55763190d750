# Judging and printing the guest's results for tests/vm/matrix.sh (sourced, not run).
#
# Rows are collected in $ROWS as tab-separated: kernel backend scenario verdict detail,
# with verdict pass | skip | FAIL. Metrics go to $METRICS as: kernel name value.

# The capability rules shared with the host tests (tests/capabilities.conf): one `need` line
# per capability lists the config options it hangs on.
CAPABILITY_RULES=${CAPABILITY_RULES:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/capabilities.conf}

# The config options capability $1 needs, from the rules (empty if the rules do not know it).
needed_options() {
  awk -v cap="$1" '$1 == "need" && $2 == cap { for (i = 3; i <= NF; i++) print $i }' "$CAPABILITY_RULES"
}

# Sets EXPECT_<backend> to yes / no / unknown from the kernel's config and the rules: the oracle
# for the guest's "unsupported:" skips (a kernel capability is a fact, but only if the config
# agrees). The rules' `refuse` lines name host kernels (uname -r globs), none of them a matrix
# kernel, and `since` lines name no backend, so only `need` lines apply here.
read_expectations() {
  local cfg=$1 b var opt want
  for b in kprobe kprobe-multi fentry tracepoint; do
    var=EXPECT_${b//-/_}
    if [ -z "$cfg" ] || [ ! -s "$cfg" ]; then printf -v "$var" unknown; continue; fi
    want=$(needed_options "$b")
    if [ -z "$want" ]; then
      echo "report.sh: $CAPABILITY_RULES has no 'need $b' line" >&2
      printf -v "$var" unknown; continue
    fi
    printf -v "$var" yes
    printf -v "MISSING_${b//-/_}" '%s' ''
    for opt in $want; do
      grep -q "^$opt=y" "$cfg" || { printf -v "$var" no; printf -v "MISSING_${b//-/_}" '%s' "$opt"; break; }
    done
  done
  return 0
}

# The config option a backend lacks, or else every option it needs (for messages).
config_reason() {
  local want missing=MISSING_${1//-/_}
  want=$(needed_options "$1" | paste -sd/ -)
  echo "${!missing:-${want:-?}}"
}

add_row() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >> "$ROWS"; }

# judge KERNEL_LABEL RESULTS_LOG CONSOLE_LOG QEMU_STATUS
judge() {
  local k=$1 res=$2 console=$3 st=$4 line backend scenario status detail expect var
  local saw_done=0
  while IFS= read -r line; do
    line=${line%$'\r'}
    case $line in
      RESULT\ *)
        read -r _ backend scenario status detail <<< "$line"
        var=EXPECT_${backend//-/_}; expect=${!var:-unknown}
        case $status in
          pass)
            if [ "$scenario" = capability ] && [ "$expect" = no ]; then
              add_row "$k" "$backend" "$scenario" FAIL "passed although the config lacks $(config_reason "$backend"): $detail"
            else
              add_row "$k" "$backend" "$scenario" pass "$detail"
            fi ;;
          skip)
            if [[ $detail == unsupported:* ]] && [ "$expect" = yes ]; then
              add_row "$k" "$backend" "$scenario" FAIL "config has $(config_reason "$backend")=y but: $detail"
            elif [[ $detail == unsupported:* ]] && [ "$expect" = no ]; then
              add_row "$k" "$backend" "$scenario" skip "$detail (as expected: config lacks $(config_reason "$backend"))"
            else
              add_row "$k" "$backend" "$scenario" skip "$detail"
            fi ;;
          *) add_row "$k" "$backend" "$scenario" FAIL "$detail" ;;
        esac ;;
      METRIC\ *) read -r _ name value _ <<< "$line"; printf '%s %s %s\n' "$k" "$name" "$value" >> "$METRICS" ;;
      DONE\ *) saw_done=1 ;;
    esac
  done < "$res"
  if [ "$saw_done" = 0 ]; then
    local why="guest did not finish (QEMU status $st)"
    [ "$st" = 124 ] && why="timed out after ${PWRU_VM_TIMEOUT:-900}s"
    add_row "$k" - guest FAIL "$why; console tail: $(tail -c 400 "$console" | tr '\r\n' '  ')"
  fi
}

# Prints the matrix: one row per scenario x backend, one column per kernel, with numbered
# notes for every skip and failure reason.
render_table() {
  awk -F'\t' '
    !(($1) in kseen) { kseen[$1] = 1; kernels[++nk] = $1 }
    { key = $3 "\t" $2
      if (!(key in rseen)) { rseen[key] = 1; rows[++nr] = key }
      cell = $4
      if ($4 != "pass") {
        note = $4 ": " $5
        if (!(note in nidx)) { nidx[note] = ++nn; notes[nn] = note }
        cell = $4 "[" nidx[note] "]"
      }
      cells[key, $1] = cell }
    END {
      printf "%-18s %-13s", "scenario", "backend"
      for (i = 1; i <= nk; i++) printf " %-13s", kernels[i]
      printf "\n"
      for (r = 1; r <= nr; r++) {
        split(rows[r], kb, "\t")
        printf "%-18s %-13s", kb[1], kb[2]
        for (i = 1; i <= nk; i++) {
          c = cells[rows[r], kernels[i]]; if (c == "") c = "."
          printf " %-13s", c
        }
        printf "\n"
      }
      if (nn) printf "\n"
      for (n = 1; n <= nn; n++) printf "[%d] %s\n", n, substr(notes[n], 1, 400)
    }' "$ROWS"
}

# Prints selected metrics per kernel, with timings relative to the in-VM load baseline.
render_metrics() {
  awk '
    !($1 in kseen) { kseen[$1] = 1; kernels[++nk] = $1 }
    { m[$1, $2] = $3; if (!($2 in nseen)) { nseen[$2] = 1; names[++nn] = $2 } }
    END {
      printf "%-28s", "metric"
      for (i = 1; i <= nk; i++) printf " %-13s", kernels[i]
      printf "\n"
      for (n = 1; n <= nn; n++) {
        name = names[n]
        if (name ~ /^scenario_ms/) continue
        printf "%-28s", name
        for (i = 1; i <= nk; i++) {
          v = m[kernels[i], name]; b = m[kernels[i], "baseline_load_ms"]
          if (v == "") { printf " %-13s", "."; continue }
          if (name ~ /^(load|attach|detach)_ms/ && b > 0) printf " %-13s", sprintf("%.1f (%.0fx)", v, v / b)
          else printf " %-13s", v
        }
        printf "\n"
      }
      printf "(x = multiple of baseline_load_ms, the load time of a 2-instruction program in the same VM)\n"
    }' "$METRICS"
}
