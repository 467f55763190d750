# Judging and printing the guest's results for tests/vm/matrix.sh (sourced, not run).
#
# Rows are collected in $ROWS as tab-separated: kernel backend scenario verdict detail,
# with verdict pass | skip | FAIL. Metrics go to $METRICS as: kernel name value.

# Sets EXPECT_<backend> to yes / no / unknown from the kernel's config: the oracle for the
# guest's "unsupported:" skips (a kernel capability is a fact, but only if the config agrees).
read_expectations() {
  local cfg=$1
  has() { [ -n "$cfg" ] && grep -q "^$1=y" "$cfg"; }
  if [ -z "$cfg" ] || [ ! -s "$cfg" ]; then
    EXPECT_kprobe=unknown EXPECT_kprobe_multi=unknown EXPECT_fentry=unknown EXPECT_tracepoint=unknown
    return
  fi
  EXPECT_kprobe=no EXPECT_kprobe_multi=no EXPECT_fentry=no EXPECT_tracepoint=no
  if has CONFIG_KPROBES && has CONFIG_KPROBE_EVENTS && has CONFIG_BPF_EVENTS; then
    EXPECT_kprobe=yes
    has CONFIG_FPROBE && EXPECT_kprobe_multi=yes
  fi
  has CONFIG_DEBUG_INFO_BTF && has CONFIG_BPF_JIT && has CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS &&
    EXPECT_fentry=yes
  has CONFIG_DEBUG_INFO_BTF && has CONFIG_BPF_EVENTS && EXPECT_tracepoint=yes
  return 0
}

# The config option a backend's support hangs on (for messages).
config_reason() {
  case $1 in
    kprobe-multi) echo CONFIG_FPROBE ;; kprobe) echo CONFIG_KPROBES/CONFIG_KPROBE_EVENTS ;;
    fentry) echo CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS ;; tracepoint) echo CONFIG_DEBUG_INFO_BTF ;;
    *) echo "?" ;;
  esac
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
