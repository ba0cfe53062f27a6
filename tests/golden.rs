//! The golden-program runner: every `NAME.ruchy` in `tests/programs/` and in
//! `../shared/conformance/` runs under every tier that is built, through the real `ruchy`
//! binary, and must print exactly `NAME.expected`, exit with the code in `NAME.status`
//! (0 when absent) and put that file's `error:` text on stderr.

use std::path::{Path, PathBuf};
use std::process::Command;

use ruchy_jit::session::Tier;

const ALL_TIERS: [Tier; 4] = [Tier::Ast, Tier::Vm, Tier::Jit, Tier::Auto];

struct Expectation {
    stdout: String,
    exit: i32,
    /// Texts stderr must contain: one per `error:` line (the message, a location, ...).
    errors: Vec<String>,
}

fn expectation(program: &Path) -> Expectation {
    let stdout = std::fs::read_to_string(program.with_extension("expected"))
        .unwrap_or_else(|e| panic!("{}: missing .expected: {e}", program.display()));
    let mut exit = 0;
    let mut errors = Vec::new();
    if let Ok(status) = std::fs::read_to_string(program.with_extension("status")) {
        for line in status.lines() {
            if let Some(code) = line.strip_prefix("exit:") {
                exit = code.trim().parse().expect("exit: N");
            } else if let Some(text) = line.strip_prefix("error:") {
                errors.push(text.trim().to_string());
            }
        }
    }
    Expectation {
        stdout,
        exit,
        errors,
    }
}

fn programs(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "ruchy"))
        .collect();
    out.sort();
    out
}

/// Runs every program of `dir` under `tier` with extra flags; returns the failures.
fn run_dir(dir: &Path, tier: Tier, extra: &[&str]) -> Vec<String> {
    let mut failures = Vec::new();
    for program in programs(dir) {
        let want = expectation(&program);
        let out = Command::new(env!("CARGO_BIN_EXE_ruchy"))
            .arg("run")
            .arg(&program)
            .args(["--tier", tier.name()])
            .args(extra)
            .env("NO_COLOR", "1")
            .output()
            .expect("running ruchy");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let code = out.status.code().unwrap_or(-1);
        let mut problems = Vec::new();
        if stdout != want.stdout {
            problems.push(format!(
                "stdout differs\n--- expected\n{}--- got\n{}",
                want.stdout, stdout
            ));
        }
        if code != want.exit {
            problems.push(format!("exit code {code}, expected {}", want.exit));
        }
        for text in &want.errors {
            if !stderr.contains(text.as_str()) {
                problems.push(format!("stderr lacks {text:?}: {stderr}"));
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{} [--tier {} {}]: {}",
                program.display(),
                tier.name(),
                extra.join(" "),
                problems.join("; ")
            ));
        }
    }
    failures
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn conformance_dir() -> PathBuf {
    let dir = root().join("../shared/conformance");
    assert!(
        dir.is_dir(),
        "{} is missing: the shared folder must sit beside the repository",
        dir.display()
    );
    dir
}

fn check_all(tier: Tier, extra: &[&str]) {
    if tier.available().is_err() {
        return;
    }
    let mut failures = run_dir(&root().join("tests/programs"), tier, extra);
    failures.extend(run_dir(&conformance_dir(), tier, extra));
    assert!(
        failures.is_empty(),
        "{} failure(s):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn golden_programs_tree_walker() {
    check_all(Tier::Ast, &[]);
}

#[test]
fn golden_programs_vm() {
    check_all(Tier::Vm, &[]);
}

#[test]
fn golden_programs_jit() {
    check_all(Tier::Jit, &[]);
}

/// Deoptimization everywhere: guards fail on purpose every 1st, 2nd and 7th time, so
/// every kind of guard hands frames back to the VM mid-function, and functions get
/// blacklisted; the output must not change.
#[test]
fn golden_programs_jit_deopt_stress_1() {
    check_all(Tier::Jit, &["--deopt-stress", "1"]);
}

#[test]
fn golden_programs_jit_deopt_stress_2() {
    check_all(Tier::Jit, &["--deopt-stress", "2"]);
}

#[test]
fn golden_programs_jit_deopt_stress_7() {
    check_all(Tier::Jit, &["--deopt-stress", "7"]);
}

#[test]
fn golden_programs_auto() {
    check_all(Tier::Auto, &[]);
}

/// Tiering at low thresholds: functions compile after 1, 2 or 10 calls and loops are
/// entered in compiled code after as many iterations, so nearly every program moves
/// between the VM and compiled code mid-run; with deopt-stress, back again.
#[test]
fn golden_programs_auto_threshold_1() {
    check_all(
        Tier::Auto,
        &["--jit-threshold", "1", "--osr-threshold", "1"],
    );
}

#[test]
fn golden_programs_auto_threshold_2() {
    check_all(
        Tier::Auto,
        &["--jit-threshold", "2", "--osr-threshold", "2"],
    );
}

#[test]
fn golden_programs_auto_threshold_10() {
    check_all(
        Tier::Auto,
        &["--jit-threshold", "10", "--osr-threshold", "10"],
    );
}

#[test]
fn golden_programs_auto_threshold_1_deopt_stress_2() {
    check_all(
        Tier::Auto,
        &[
            "--jit-threshold",
            "1",
            "--osr-threshold",
            "1",
            "--deopt-stress",
            "2",
        ],
    );
}

#[test]
fn golden_programs_auto_threshold_10_deopt_stress_7() {
    check_all(
        Tier::Auto,
        &[
            "--jit-threshold",
            "10",
            "--osr-threshold",
            "10",
            "--deopt-stress",
            "7",
        ],
    );
}

#[test]
fn golden_programs_auto_deopt_stress_1() {
    check_all(Tier::Auto, &["--deopt-stress", "1"]);
}

/// Tier 2 (self-recursion unrolled inline) forced for every compile, alone and with guards
/// failing on purpose, so deopts happen inside inlined activations.
#[test]
fn golden_programs_tier2() {
    check_all(Tier::Jit, &["--tier2-threshold", "0"]);
}

#[test]
fn golden_programs_tier2_deopt_stress_1() {
    check_all(
        Tier::Jit,
        &["--tier2-threshold", "0", "--deopt-stress", "1"],
    );
}

#[test]
fn golden_programs_tier2_deopt_stress_3() {
    check_all(
        Tier::Jit,
        &["--tier2-threshold", "0", "--deopt-stress", "3"],
    );
}

/// Tiering all the way: the VM, tier 1 after 2 calls, tier 2 after 3 calls of tier-1 code
/// (handing over mid-recursion), with deopt-stress.
#[test]
fn golden_programs_auto_tier2_threshold_3_deopt_stress_7() {
    check_all(
        Tier::Auto,
        &[
            "--jit-threshold",
            "2",
            "--osr-threshold",
            "2",
            "--tier2-threshold",
            "3",
            "--deopt-stress",
            "7",
        ],
    );
}

#[test]
fn golden_programs_auto_tier2_threshold_1() {
    check_all(
        Tier::Auto,
        &["--jit-threshold", "1", "--tier2-threshold", "1"],
    );
}

#[test]
fn at_least_one_tier_and_enough_programs() {
    assert!(ALL_TIERS.iter().any(|t| t.available().is_ok()));
    let own = programs(&root().join("tests/programs")).len();
    assert!(own >= 60, "only {own} golden programs of our own");
}

/// `ruchydbg bytecode FILE FUNCTION` prints exactly `tests/bytecode/NAME.bytecode`: the
/// disassembly format people read (and the REPL's `:bytecode`) is pinned.
#[test]
fn disassembly_is_pinned() {
    let dir = root().join("tests/bytecode");
    let cases = [("fib", "fib"), ("loops", "total")];
    for (name, function) in cases {
        let program = dir.join(format!("{name}.ruchy"));
        let want = std::fs::read_to_string(dir.join(format!("{name}.bytecode")))
            .expect("expected disassembly");
        let out = Command::new(env!("CARGO_BIN_EXE_ruchydbg"))
            .args(["bytecode"])
            .arg(&program)
            .arg(function)
            .output()
            .expect("running ruchydbg");
        assert!(out.status.success(), "ruchydbg failed on {name}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), want, "{name}");
    }
}
