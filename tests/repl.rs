//! Piped REPL sessions: `tests/repl/NAME.input` is typed into `ruchy repl` through a pipe
//! (no banner, no prompt); stdout must be exactly `NAME.expected`, and every line of
//! `NAME.stderr` must appear in stderr (errors, JIT notices with varying timings).

mod common;

use std::io::Write;
use std::path::PathBuf;

#[test]
fn piped_sessions_echo_keep_state_and_redefine() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/repl");
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/repl")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "input"))
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty());
    for input in inputs {
        let text = std::fs::read_to_string(&input).expect("input");
        let mut child = common::spawn_repl(&[]);
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("type the input");
        let out = child
            .wait_with_output()
            .expect("the REPL ends at end of input");
        assert!(out.status.success(), "{}", input.display());
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let expected = std::fs::read_to_string(input.with_extension("expected")).expect("expected");
        assert_eq!(stdout, expected, "{}", input.display());
        if let Ok(wanted) = std::fs::read_to_string(input.with_extension("stderr")) {
            for line in wanted.lines() {
                assert!(
                    stderr.contains(line),
                    "{}: stderr lacks {line:?}:\n{stderr}",
                    input.display()
                );
            }
        }
    }
}

/// The teaching walkthroughs of `demo/` run as REPL input without errors.
#[test]
fn the_demos_run() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("demo");
    for name in [
        "tier_up",
        "deopt",
        "osr",
        "bytecode_and_ir",
        "tier2",
        "ranges",
    ] {
        let text = std::fs::read_to_string(dir.join(format!("{name}.repl"))).expect("demo");
        let mut child = common::spawn_repl(&[]);
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("type the demo");
        let out = child.wait_with_output().expect("the REPL ends");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {stderr}");
        assert!(!stderr.contains("error"), "{name}: {stderr}");
        let wanted = match name {
            "tier_up" => "jit (int)",
            "deopt" => "blacklisted scaled after 4 deopts",
            "osr" => "8999994",
            "tier2" => "at tier 2 (3 self-calls inlined, 1 turned into a loop)",
            "ranges" => "8 overflow checks removed",
            _ => "x the VM's speed",
        };
        assert!(
            stdout.contains(wanted) || stderr.contains(wanted),
            "{name} lacks {wanted:?}:\n{stdout}\n{stderr}"
        );
    }
}
