//! Recursion depth and interrupts behave the same in every tier.

mod common;

use std::time::Duration;

use ruchy_jit::error::ErrorKind;
use ruchy_jit::session::{Options, Session, Tier};

const TIERS: [Tier; 4] = [Tier::Ast, Tier::Vm, Tier::Jit, Tier::Auto];

fn built() -> impl Iterator<Item = Tier> {
    TIERS.into_iter().filter(|t| t.available().is_ok())
}

fn ruchy(args: &[&str], program: &str) -> (String, String, i32) {
    common::ruchy_run(args, "limits.ruchy", program)
}

const DEPTH: &str = "fun d(n) { if n == 0 { 0 } else { 1 + d(n - 1) } }\n";

#[test]
fn one_hundred_thousand_frames_work_in_every_tier() {
    let program = format!("{DEPTH}println(d(100000))\n");
    for tier in built() {
        let (out, err, code) = ruchy(&["--tier", tier.name()], &program);
        assert_eq!(
            (out.as_str(), code),
            ("100000\n", 0),
            "tier {}: {err}",
            tier.name()
        );
    }
}

#[test]
fn the_limit_is_exact_and_clean_in_every_tier() {
    // `--max-depth 100` allows 100 nested calls: d(99) makes 100, d(100) makes 101.
    let program = format!("{DEPTH}println(d(99))\nprintln(d(100))\n");
    for tier in built() {
        let (out, err, code) = ruchy(&["--tier", tier.name(), "--max-depth", "100"], &program);
        assert_eq!(out, "99\n", "tier {}", tier.name());
        assert_eq!(code, 1, "tier {}", tier.name());
        assert!(
            err.contains("Recursion limit exceeded"),
            "tier {}: {err}",
            tier.name()
        );
        assert!(
            err.contains(":1:39"),
            "tier {} points at the call: {err}",
            tier.name()
        );
    }
}

#[test]
fn runaway_recursion_is_an_error_not_a_crash() {
    let program = "fun f(n) { f(n + 1) + 1 }\nf(0)\n";
    for tier in built() {
        let (_, err, code) = ruchy(&["--tier", tier.name(), "--max-depth", "2000000"], program);
        assert_eq!(code, 1, "tier {}: {err}", tier.name());
        assert!(
            err.contains("Recursion limit exceeded"),
            "tier {}: {err}",
            tier.name()
        );
    }
}

/// The interrupt flag stops an endless loop, and an endless recursion, with `Interrupted`.
#[test]
fn the_interrupt_flag_stops_running_code_in_every_tier() {
    for tier in built() {
        for program in [
            "loop { }",
            "var i = 0\nwhile true { i += 1 }",
            "fun f() { f() }\nloop { f() }",
        ] {
            let result = ruchy_jit::stack::run_with_stack(256 << 20, || {
                let options = Options {
                    tier,
                    max_depth: 1_000_000_000,
                    ..Options::default()
                };
                let mut session =
                    Session::new(&options, Box::new(std::io::sink())).expect("tier is built");
                let flag = session.limits.interrupt.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(50));
                    ruchy_jit::limits::request_interrupt(&flag);
                });
                // Only the error crosses back to the test thread (values are not `Send`).
                session.run_program("interrupt.ruchy", program).map(|_| ())
            });
            let err = result.expect_err("the loop must be interrupted");
            assert!(
                err.kind == ErrorKind::Interrupted || err.kind == ErrorKind::RecursionLimit,
                "tier {} on {program:?}: {err}",
                tier.name()
            );
        }
    }
}
