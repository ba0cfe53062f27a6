#!/usr/bin/env bash
# bench.sh - time the ruchy engine's tiers against C, Lua, Python and node on the
# workloads of ../shared/bench, and print one markdown table (also saved under
# scripts/results/). `scripts/bench.sh --help` lists the knobs.
#
# Per workload, runner by runner: one check run (output compared with C's, peak RSS
# taken with GNU time, wall time noted), then hyperfine timing unless the check failed
# or took longer than --max-seconds.
set -u

usage() {
    cat <<'EOF'
usage: scripts/bench.sh [--tiers ast,vm,jit,auto] [--runs N] [--warmup N] [--max-seconds S]
                        [--no-peers] [--peers c,luajit,lua5.4,cpython,pypy,node] [WORKLOAD...]

  WORKLOAD         fib loop nested tak mandel sieve strcat poly (default: all eight)
  --tiers LIST     ruchy tiers to run (default: every tier the binary supports)
  --runs N         hyperfine timed runs per runner (default 5)
  --warmup N       hyperfine warm-up runs (default 1)
  --max-seconds S  a runner whose check run took over S s (default 60) is not timed:
                   its cell shows that one run, marked `s*`
  --peers LIST     peers to run (default: every installed one of c,luajit,lua5.4,
                   cpython,pypy,node; luajit-joff is opt-in)
  --no-peers       ruchy tiers only (C is always built and shown: it gives the
                   reference output and the ×C ratio)
environment: RUCHY (engine binary, default target/release/ruchy), BENCH_DIR (default
  ../shared/bench), CC, CFLAGS (gcc, -O2), PYTHON (default /usr/bin/python3), PYPY,
  LUA, LUAJIT, NODE, CHECK_TIMEOUT (seconds before a check run is killed, default 600)
EOF
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
COMMAND_LINE="scripts/bench.sh"
for _a in "$@"; do   # quote only what a shell would need quoted (%q also escapes commas)
    if [[ "$_a" =~ ^[A-Za-z0-9_./,=:+-]+$ ]]; then COMMAND_LINE+=" $_a"; else COMMAND_LINE+=" $(printf '%q' "$_a")"; fi
done
BUILD="$ROOT/scripts/.build"
RESULTS="$ROOT/scripts/results"
STAMP="$(date +%Y%m%d-%H%M%S)"
RUNDIR="$RESULTS/bench-$STAMP"          # hyperfine JSON exports and log of this run
BENCH_DIR="${BENCH_DIR:-$ROOT/../shared/bench}"
RUCHY="${RUCHY:-$ROOT/target/release/ruchy}"
CC="${CC:-gcc}"; CFLAGS="${CFLAGS:--O2}"
# Debian's python3 is a PGO/LTO build; a pyenv shim first on PATH is slower and adds
# start-up time (see PEERS.md), so prefer /usr/bin/python3.
if [ -z "${PYTHON:-}" ]; then
    if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi
PYPY="${PYPY:-pypy3}"; LUA="${LUA:-lua5.4}"; LUAJIT="${LUAJIT:-luajit}"; NODE="${NODE:-node}"
CHECK_TIMEOUT="${CHECK_TIMEOUT:-600}"

ALL_WORKLOADS=(fib loop nested tak mandel sieve strcat poly)
ALL_TIERS=(ast vm jit auto)
ALL_PEERS=(c luajit luajit-joff lua5.4 cpython pypy node)   # also the column order
DEFAULT_PEERS="c,luajit,lua5.4,cpython,pypy,node"
RUNS=5; WARMUP=1; MAX_SECONDS=60; TIERS=""; PEERS="$DEFAULT_PEERS"; WORKLOADS=()

NOTES=()   # repeated under the table, so a saved result says what was left out
note() { printf 'note: %s\n' "$*" >&2; NOTES+=("$*"); }
die() { printf 'error: %s\n' "$*" >&2; exit 2; }
have() { command -v "$1" >/dev/null 2>&1; }
in_list() { local x="$1"; shift; local y; for y in "$@"; do [ "$x" = "$y" ] && return 0; done; return 1; }
is_num() { [[ "$1" =~ ^[0-9]+([.][0-9]+)?$ ]]; }

parse_args() {
    while [ $# -gt 0 ]; do
        local arg="$1" val=""
        case "$arg" in --*=*) val="${arg#*=}"; arg="${arg%%=*}" ;; esac
        case "$arg" in
            --tiers|--runs|--warmup|--max-seconds|--peers)
                if [ -z "$val" ]; then
                    [ $# -ge 2 ] || die "$arg needs a value"; val="$2"; shift
                fi ;;
        esac
        case "$arg" in
            -h|--help) usage; exit 0 ;;
            --tiers) TIERS="$val" ;;
            --runs) RUNS="$val" ;;
            --warmup) WARMUP="$val" ;;
            --max-seconds) MAX_SECONDS="$val" ;;
            --peers) PEERS="$val" ;;
            --no-peers) PEERS="c" ;;
            -*) usage >&2; die "unknown option '$arg'" ;;
            *) in_list "$arg" "${ALL_WORKLOADS[@]}" || die "unknown workload '$arg' (known: ${ALL_WORKLOADS[*]})"
               WORKLOADS+=("$arg") ;;
        esac
        shift
    done
    [[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "--runs wants a positive integer"
    [[ "$WARMUP" =~ ^[0-9]+$ ]] || die "--warmup wants an integer"
    is_num "$MAX_SECONDS" || die "--max-seconds wants a number"
    [ ${#WORKLOADS[@]} -gt 0 ] || WORKLOADS=("${ALL_WORKLOADS[@]}")
}

# Build the engine if needed, then run a private copy: another engineer's
# `cargo build` may replace target/release/ruchy in the middle of a long run.
setup_engine() {
    if [ ! -x "$RUCHY" ]; then
        echo "building the engine (cargo build --release)..." >&2
        cargo build --release >&2 || die "cargo build --release failed"
    fi
    [ -x "$RUCHY" ] || die "no engine binary at $RUCHY"
    ENGINE="$BUILD/ruchy"
    cp "$RUCHY" "$ENGINE" || die "cannot copy $RUCHY"
}

# A tier is supported unless the binary rejects it with exit code 2 (usage error:
# "... is not built yet" or unknown tier).
tier_supported() {
    printf 'println(1)\n' > "$BUILD/trivial.ruchy"
    "$ENGINE" run "$BUILD/trivial.ruchy" --tier "$1" >/dev/null 2>&1
    [ $? -ne 2 ]
}

# Runners: a label, a command prefix (word-split, so LUAJIT="luajit -joff" works)
# and the source suffix it runs.
R_LABEL=(); R_CMD=(); R_EXT=()
add_runner() { R_LABEL+=("$1"); R_CMD+=("$2"); R_EXT+=("$3"); }

select_runners() {
    local t p list
    if [ -n "$TIERS" ]; then
        IFS=',' read -r -a list <<< "$TIERS"
        for t in "${list[@]}"; do
            in_list "$t" "${ALL_TIERS[@]}" || die "unknown tier '$t' (known: ${ALL_TIERS[*]})"
            if tier_supported "$t"; then add_runner "ruchy-$t" "" ruchy
            else note "tier '$t' is not supported by this binary: skipped"; fi
        done
    else
        for t in "${ALL_TIERS[@]}"; do tier_supported "$t" && add_runner "ruchy-$t" "" ruchy; done
    fi
    IFS=',' read -r -a list <<< "c,$PEERS"       # C always: reference and yardstick
    for p in "${list[@]}"; do
        in_list "$p" "${ALL_PEERS[@]}" || die "unknown peer '$p' (known: ${ALL_PEERS[*]})"
    done
    for p in "${ALL_PEERS[@]}"; do
        in_list "$p" "${list[@]}" || continue
        local cmd ext
        case "$p" in
            c) cmd="$CC"; ext=c ;;
            luajit) cmd="$LUAJIT"; ext=lua ;;
            luajit-joff) cmd="$LUAJIT -joff"; ext=lua ;;
            lua5.4) cmd="$LUA"; ext=lua ;;
            cpython) cmd="$PYTHON"; ext=py ;;
            pypy) cmd="$PYPY"; ext=py ;;
            node) cmd="$NODE"; ext=js ;;
        esac
        if have "${cmd%% *}"; then add_runner "$p" "$cmd" "$ext"
        elif [ "$p" = c ]; then note "C compiler '$CC' not found: outputs are not compared, ratios read n/a"
        else note "$p ('${cmd%% *}') is not installed: skipped"; fi
    done
}

# Sets CMD (an array) to the command line that runs runner $1 on workload $2.
build_cmd() {
    local label="${R_LABEL[$1]}" src="$BENCH_DIR/$2/$2.${R_EXT[$1]}"
    case "$label" in
        ruchy-*) CMD=("$ENGINE" run "$src" --tier "${label#ruchy-}") ;;
        c) CMD=("$BUILD/$2") ;;
        *) read -r -a CMD <<< "${R_CMD[$1]}"; CMD+=("$src") ;;
    esac
}

# One run of CMD: exit code, wall time, peak RSS, and output compared with C's.
# Sets CHK_STATUS (ok, MISMATCH, exitN, timeout), CHK_SECS, CHK_KB, CHK_NOTE.
check_run() {
    local label="$1" w="$2" out="$BUILD/$2.$1.out" err="$BUILD/$2.$1.err" rss="$BUILD/$2.$1.rss"
    local pre=(timeout "$CHECK_TIMEOUT")     # timeout signals its whole process group
    [ -x /usr/bin/time ] && pre+=(/usr/bin/time -f %M -o "$rss")
    rm -f "$rss"
    local t0=$EPOCHREALTIME rc
    "${pre[@]}" "${CMD[@]}" >"$out" 2>"$err"; rc=$?
    CHK_SECS=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.6f", b - a }')
    CHK_KB=$(grep -E '^[0-9]+$' "$rss" 2>/dev/null | tail -n1)
    if [ $rc -eq 124 ]; then CHK_STATUS=timeout
    elif [ $rc -ne 0 ]; then CHK_STATUS="exit$rc"
    elif [ "$label" = c ]; then CHK_STATUS=ok; cp "$out" "$BUILD/$w.ref"
    elif [ -f "$BUILD/$w.ref" ] && ! cmp -s "$out" "$BUILD/$w.ref"; then CHK_STATUS=MISMATCH
    else CHK_STATUS=ok; fi
    CHK_NOTE=""
    case "$CHK_STATUS" in
        exit*|timeout) CHK_NOTE="$label on $w: $CHK_STATUS: $(head -c 200 "$err" | tr '\n' ' ')" ;;
        MISMATCH) CHK_NOTE="$label on $w printed '$(head -c 120 "$out" | tr '\n' ' ')', C printed '$(tr '\n' ' ' < "$BUILD/$w.ref")'" ;;
    esac
}

# hyperfine without a shell when it can (no spawn overhead to subtract).
HF=()
setup_hyperfine() {
    if ! have hyperfine; then
        note "hyperfine is not installed: every cell is a single check run"; return
    fi
    HF=(hyperfine)
    hyperfine -N --runs 1 --style none true >/dev/null 2>&1 && HF+=(-N)
}

# Times CMD; sets MEDIAN, or returns 1.
time_run() {
    local json="$RUNDIR/$2-$1.json"
    "${HF[@]}" --warmup "$WARMUP" --runs "$RUNS" --style basic --export-json "$json" \
        -n "$1" "$(printf '%q ' "${CMD[@]}")" >>"$RUNDIR/hyperfine.log" 2>&1 || return 1
    MEDIAN=$(sed -n 's/^[[:space:]]*"median":[[:space:]]*\([0-9.eE+-]*\).*/\1/p' "$json" | head -n1)
    [ -n "$MEDIAN" ]
}

# Results, keyed "workload|label".
declare -A SECS STAR KB STATUS

bench_workload() {
    local w="$1" i label order=()
    rm -f "$BUILD/$w.ref"
    # C first: its output is the reference the others are compared with.
    for i in "${!R_LABEL[@]}"; do [ "${R_LABEL[$i]}" = c ] && order=("$i"); done
    for i in "${!R_LABEL[@]}"; do [ "${R_LABEL[$i]}" = c ] || order+=("$i"); done
    for i in "${order[@]}"; do
        label="${R_LABEL[$i]}"
        local src="$BENCH_DIR/$w/$w.${R_EXT[$i]}"
        if [ ! -f "$src" ]; then note "$src is missing: $label skipped on $w"; continue; fi
        if [ "$label" = c ] && ! "$CC" $CFLAGS -o "$BUILD/$w" "$src" 2>"$BUILD/$w.cc.err"; then
            note "C build of $w failed: $(head -c 200 "$BUILD/$w.cc.err")"; continue
        fi
        build_cmd "$i" "$w"
        printf '[%s] %-12s check ' "$w" "$label" >&2
        check_run "$label" "$w"
        KB[$w|$label]="$CHK_KB"; STATUS[$w|$label]="$CHK_STATUS"
        printf '%s %.3f s' "$CHK_STATUS" "$CHK_SECS" >&2
        if [ "$label" != c ] && [ ! -f "$BUILD/$w.ref" ] && [ "$CHK_STATUS" = ok ]; then
            printf ' (no C output to compare)' >&2
        fi
        if [ "$CHK_STATUS" != ok ]; then echo >&2; note "$CHK_NOTE"; continue; fi
        if [ ${#HF[@]} -eq 0 ] || awk -v s="$CHK_SECS" -v m="$MAX_SECONDS" 'BEGIN { exit !(s > m) }'; then
            SECS[$w|$label]="$CHK_SECS"; STAR[$w|$label]="*"
            echo " -> not timed (single run)" >&2; continue
        fi
        if time_run "$label" "$w"; then
            SECS[$w|$label]="$MEDIAN"; STAR[$w|$label]=""
            printf ' -> median %.3f s over %d runs\n' "$MEDIAN" "$RUNS" >&2
        else
            STATUS[$w|$label]="hyperfine-failed"; echo " -> hyperfine failed (see $RUNDIR/hyperfine.log)" >&2
        fi
    done
}

# "0.021 s · 4.5× · 2.2 MB": ms resolution for seconds, 2 digits for ratio and MiB.
format_cell() {
    local w="$1" label="$2" key="$1|$2"
    [ -n "${STATUS[$key]+x}" ] || { printf 'n/a'; return; }
    [ "${STATUS[$key]}" = ok ] || { printf '%s' "${STATUS[$key]}"; return; }
    awk -v s="${SECS[$key]}" -v star="${STAR[$key]}" -v c="${SECS[$w|c]:-}" \
        -v kb="${KB[$key]:-}" -v isc="$([ "$label" = c ] && echo 1)" '
        function two(x) { return x >= 10 ? sprintf("%.0f", x) : sprintf("%.1f", x) }
        BEGIN {
            secs = sprintf(s >= 100 ? "%.0f" : s >= 10 ? "%.1f" : s >= 1 ? "%.2f" : "%.3f", s)
            if (isc) ratio = "1"; else if (c > 0) ratio = two(s / c); else ratio = "n/a"
            mb = kb == "" ? "n/a" : two(kb / 1024)
            printf "%s s%s · %s× · %s MB", secs, star, ratio, mb
        }'
}

versions() {
    local i label v parts=()
    local rev; rev="$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    git diff --quiet HEAD -- src 2>/dev/null || rev="$rev+uncommitted src"
    for i in "${!R_LABEL[@]}"; do
        label="${R_LABEL[$i]}"; read -r -a CMD <<< "${R_CMD[$i]}"
        case "$label" in
            ruchy-ast) v="$("$ENGINE" --version 2>&1 | head -n1) (tree $rev)" ;;
            ruchy-*) continue ;;
            c) v="$CC $("$CC" -dumpfullversion 2>/dev/null) $CFLAGS" ;;
            luajit|lua5.4|luajit-joff) v="$("${CMD[@]}" -v 2>&1 | head -n1 | cut -d' ' -f1-2)"
                [ "$label" = luajit-joff ] && v+=" -joff" ;;
            cpython) v="$("${CMD[@]}" --version 2>&1 | head -n1) ($(command -v "${CMD[0]}"))" ;;
            pypy) v="$("${CMD[@]}" --version 2>&1 | grep -o 'PyPy [0-9.]*' | head -n1)" ;;
            node) v="node $("${CMD[@]}" --version 2>&1)" ;;
        esac
        [ -n "$v" ] && parts+=("$v")
    done
    [ ${#HF[@]} -gt 0 ] && parts+=("$(hyperfine --version)")
    local IFS=';'; printf '%s' "${parts[*]}" | sed 's/;/, /g'
}

print_table() {
    local w label row
    local timing="median wall time of $RUNS runs after $WARMUP warm-up (hyperfine)"
    [ ${#HF[@]} -gt 0 ] || timing="wall time of one run"
    row="| workload |"; for label in "${R_LABEL[@]}"; do row+=" $label |"; done; echo "$row"
    row="|---|"; for label in "${R_LABEL[@]}"; do row+="---|"; done; echo "$row"
    for w in "${WORKLOADS[@]}"; do
        row="| $w |"
        for label in "${R_LABEL[@]}"; do row+=" $(format_cell "$w" "$label") |"; done
        echo "$row"
    done
    echo
    echo "Cells: $timing · ratio to C's time (unpaired) · peak RSS of one run in MiB (GNU time)."
    echo "\`s*\` = single run, not timed (its check run took over ${MAX_SECONDS} s); MISMATCH = output differs from C's; exitN = exit code N; neither is timed."
    echo "Machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1), load $(cut -d' ' -f1-3 /proc/loadavg) · $(date '+%Y-%m-%d %H:%M %Z') · command: \`$COMMAND_LINE\`"
    echo "Runners: $(versions)"
    local n; for n in "${NOTES[@]}"; do echo "- note: $n"; done
}

main() {
    parse_args "$@"
    mkdir -p "$BUILD" "$RUNDIR" || die "cannot create $BUILD or $RUNDIR"
    [ -d "$BENCH_DIR" ] || die "no workloads at $BENCH_DIR (set BENCH_DIR)"
    setup_engine
    setup_hyperfine
    select_runners
    local w; for w in "${WORKLOADS[@]}"; do bench_workload "$w"; done
    echo >&2
    print_table | tee "$RESULTS/bench-$STAMP.md"
    echo >&2
    echo "saved: scripts/results/bench-$STAMP.md (hyperfine JSON in scripts/results/bench-$STAMP/)" >&2
}

main "$@"
