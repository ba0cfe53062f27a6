//! Mixed-mode execution (`--tier auto`): functions and loops move from the VM to compiled
//! code when hot, deoptimize, recompile and get blacklisted, in that order. Each test reads
//! the event log (`--trace-jit`) of a golden program (whose output `golden.rs` checks).

use std::path::PathBuf;
use std::process::Command;

fn program(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/programs")
        .join(name);
    path.to_str().expect("utf-8 path").to_string()
}

/// The events of a run, without the timings and sizes that vary.
fn events(name: &str, extra: &[&str]) -> (String, Vec<String>) {
    let out = Command::new(env!("CARGO_BIN_EXE_ruchy"))
        .arg("run")
        .arg(program(name))
        .args(["--tier", "auto", "--trace-jit"])
        .args(extra)
        .output()
        .expect("run ruchy");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let events = stderr
        .lines()
        .map(|l| l.split(" in ").next().unwrap_or(l).to_string())
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), events)
}

#[test]
fn a_function_heats_up_deopts_on_a_type_change_and_recompiles() {
    let (out, events) = events("tiering_heats_up.ruchy", &[]);
    assert_eq!(out, "7500\n6750.0\n");
    assert_eq!(
        events,
        [
            "[jit] compiled run (OSR entry at line 9)",
            "[jit] OSR into run at line 9 after 1000 iterations",
            "[jit] compiled advance(int)",
            "[jit] deopt run at line 9: expected int, got float (deopt 1 of 3)",
            "[jit] compiled run (OSR entry at line 9)",
            "[jit] OSR into run at line 9 after 1002 iterations",
        ]
    );
}

/// With `--jit-threshold 1` the function compiles at its second call, when the global
/// holds a float; the next call finds an int.
#[test]
fn a_function_that_keeps_deopting_is_blacklisted() {
    let (_, events) = events("jit_deopt_global_type.ruchy", &["--jit-threshold", "1"]);
    let scaled: Vec<&str> = events
        .iter()
        .map(String::as_str)
        .filter(|e| e.contains(" scaled"))
        .collect();
    let compiled = "[jit] compiled scaled(int)";
    let deopt = |n: u32| {
        let count = if n <= 3 {
            format!("deopt {n} of 3")
        } else {
            format!("deopt {n}, over the limit of 3")
        };
        format!("[jit] deopt scaled at line 7: expected float, got int ({count})")
    };
    assert_eq!(
        scaled,
        [
            compiled,
            &deopt(1),
            compiled,
            &deopt(2),
            compiled,
            &deopt(3),
            compiled,
            &deopt(4),
            "[jit] blacklisted scaled after 4 deopts",
        ]
    );
}

#[test]
fn a_hot_top_level_loop_is_entered_mid_run() {
    let (out, events) = events("tiering_osr_loop.ruchy", &[]);
    assert_eq!(out, "599994\n200000\n");
    let script = program("tiering_osr_loop.ruchy");
    assert_eq!(
        events,
        [
            format!("[jit] compiled {script} (OSR entry at line 5)"),
            format!("[jit] OSR into {script} at line 5 after 1000 iterations"),
        ]
    );
}

#[test]
fn the_osr_threshold_is_a_flag() {
    let (out, events) = events("tiering_osr_loop.ruchy", &["--osr-threshold", "50"]);
    assert_eq!(out, "599994\n200000\n");
    assert!(events[1].ends_with("after 50 iterations"), "{events:?}");
}
