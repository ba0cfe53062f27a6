#!/usr/bin/env bash
# fuzz.sh - long fuzzing campaigns, with fresh seeds each run:
#   - differential: random valid programs (tests/generator/) under every tier, JIT
#     thresholds and --deopt-stress; any difference in output, error or error location
#     stops the run and prints the program shrunk, with the configurations that disagree;
#   - mutation: mutated and random inputs (tests/no_panic.rs) through the front end and
#     every tier; no panic, and every tier agrees.
#
# Usage: scripts/fuzz.sh [SEEDS] [PROGRAMS_PER_SEED]     (defaults: 20 seeds x 5000 programs)
# A failure prints its seed; replay it with
#   RUCHY_DIFF_SEED=S RUCHY_DIFF_COUNT=N cargo test --release --test differential
#   RUCHY_FUZZ_SEED=S RUCHY_FUZZ_COUNT=N cargo test --release --test no_panic
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
seeds="${1:-20}"
count="${2:-5000}"
base=$(date +%s)
cargo build --release --tests -q || exit 1
tried=0
started=$(date +%s)
for i in $(seq 1 "$seeds"); do
    seed=$((base + i))
    printf '\rseed %s (%d of %d), %d programs so far, %ds' "$seed" "$i" "$seeds" "$tried" \
        $(($(date +%s) - started)) >&2
    if ! out=$(RUCHY_DIFF_SEED=$seed RUCHY_DIFF_COUNT=$count \
        cargo test --release -q --test differential -- --nocapture 2>&1); then
        printf '\n\nDIFFERENTIAL FAILURE with RUCHY_DIFF_SEED=%s RUCHY_DIFF_COUNT=%s\n\n' "$seed" "$count"
        echo "$out" | sed -n '/panicked at/,/^stack backtrace/p'
        exit 1
    fi
    summary=$(echo "$out" | grep 'programs agreed' | head -1)
    if ! out=$(RUCHY_FUZZ_SEED=$seed RUCHY_FUZZ_COUNT=$count \
        cargo test --release -q --test no_panic random_and_mutated 2>&1); then
        printf '\n\nMUTATION FAILURE with RUCHY_FUZZ_SEED=%s RUCHY_FUZZ_COUNT=%s\n\n' "$seed" "$count"
        echo "$out" | sed -n '/panicked at/,/^stack backtrace/p'
        exit 1
    fi
    tried=$((tried + 2 * count))
    printf '\n  seed %s: %s\n' "$seed" "$summary" >&2
done
printf '\n%d programs tried over %d seeds in %ds (half generated, half mutated): every tier agreed, no panic.\n' \
    "$tried" "$seeds" $(($(date +%s) - started))
