#!/usr/bin/env python3
"""interleave.py - time commands side by side, interleaved, for ratios on a noisy machine.

    scripts/interleave.py [--runs N] NAME=COMMAND [NAME=COMMAND ...]

Each round runs every command once, in turn, so a slow spell of the machine (a busy
neighbour on a shared VM) hits all of them alike; hyperfine runs one command's runs back to
back, so its ratios between commands are unpaired. After one warm-up round, `--runs` rounds
(default 15) are timed (wall time of the whole process, output discarded), and one markdown
table gives each command's median and minimum, and the ratio of its median to the first
command's. A command that exits non-zero stops the script: a failed run is not a time.

Example (nested against C, both tiers):
    gcc -O2 -o /tmp/nested ../shared/bench/nested/nested.c
    scripts/interleave.py c=/tmp/nested \\
        auto="target/release/ruchy run ../shared/bench/nested/nested.ruchy" \\
        jit="target/release/ruchy run --tier jit ../shared/bench/nested/nested.ruchy"
"""

import statistics
import subprocess
import sys
import time


def main(argv):
    runs = 15
    commands = []
    args = iter(argv)
    for arg in args:
        if arg in ("-h", "--help"):
            print(__doc__.strip())
            return 0
        if arg == "--runs":
            runs = int(next(args, "0"))
            if runs < 1:
                print("interleave.py: --runs wants a positive number", file=sys.stderr)
                return 2
        elif "=" in arg:
            name, command = arg.split("=", 1)
            commands.append((name, command))
        else:
            print(f"interleave.py: expected NAME=COMMAND, got {arg!r}", file=sys.stderr)
            return 2
    if not commands:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    times = {name: [] for name, _ in commands}
    for round_number in range(runs + 1):
        for name, command in commands:
            start = time.perf_counter()
            done = subprocess.run(
                command, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            elapsed = time.perf_counter() - start
            if done.returncode != 0:
                print(f"interleave.py: {name} exited with {done.returncode}", file=sys.stderr)
                return 1
            if round_number > 0:
                times[name].append(elapsed)
        print(f"\rround {round_number}/{runs}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    base = statistics.median(times[commands[0][0]])
    print(f"| command | median | min | ratio to {commands[0][0]} |")
    print("|---|---|---|---|")
    for name, _ in commands:
        median = statistics.median(times[name])
        print(
            f"| {name} | {median * 1000:.1f} ms | {min(times[name]) * 1000:.1f} ms "
            f"| {median / base:.2f}× |"
        )
    print(f"\n{runs} interleaved rounds after 1 warm-up; wall time of each whole process.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
