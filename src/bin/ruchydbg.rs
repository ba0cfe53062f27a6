//! `ruchydbg`: look inside the engine (bytecode, profiles, compiled IR, benchmarks).

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("ruchydbg: no subcommands are built yet (bytecode, hotspots, benchmark, ir come with the VM, profiler and JIT)");
    ExitCode::from(2)
}
