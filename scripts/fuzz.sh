#!/usr/bin/env bash
# fuzz.sh - long runs of the differential fuzz test (tests/no_panic.rs): mutated programs
# under every built tier; any panic, or any difference in output, error or error location
# between tiers, stops the run and prints the program.
#
# Usage: scripts/fuzz.sh [SEEDS] [PROGRAMS_PER_SEED]     (defaults: 20 seeds x 5000 programs)
# Seeds start from the clock, so each run explores new programs; a failure prints its seed,
# and `RUCHY_FUZZ_SEED=S RUCHY_FUZZ_COUNT=N cargo test --release --test no_panic` replays it.
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
seeds="${1:-20}"
count="${2:-5000}"
base=$(date +%s)
cargo build --release --tests -q || exit 1
tried=0
for i in $(seq 1 "$seeds"); do
    seed=$((base + i))
    printf '\rseed %s (%d of %d), %d programs so far' "$seed" "$i" "$seeds" "$tried" >&2
    if ! out=$(RUCHY_FUZZ_SEED=$seed RUCHY_FUZZ_COUNT=$count cargo test --release -q --test no_panic 2>&1); then
        printf '\n\nFAILED with RUCHY_FUZZ_SEED=%s RUCHY_FUZZ_COUNT=%s\n\n' "$seed" "$count"
        echo "$out" | sed -n '/panicked at/,/^stack backtrace/p'
        exit 1
    fi
    tried=$((tried + count))
done
printf '\n%d programs tried over %d seeds: no panic, every tier agreed.\n' "$tried" "$seeds"
