//! The VM's profile counters count exactly, and the reports say why.

use ruchy_jit::profile::report::{Report, Thresholds};
use ruchy_jit::session::{Options, Session, Tier};

fn profile(program: &str, timing: bool) -> Report {
    let program = program.to_string();
    ruchy_jit::stack::run_with_stack(256 << 20, move || {
        let options = Options {
            tier: Tier::Vm,
            timing,
            ..Options::default()
        };
        let mut session = Session::new(&options, Box::new(std::io::sink())).expect("vm");
        session
            .run_program("profile.ruchy", &program)
            .expect("runs");
        let report = session.profile_report(Thresholds::default());
        // Reports are plain data: render them here, on the engine thread.
        (report.text(false), report.json(), report)
    })
    .2
}

const FIB: &str = "fun fib(n) { if n < 2 { return n } fib(n - 1) + fib(n - 2) }\nfib(20)\n";

#[test]
fn fib_20_makes_21891_calls() {
    let report = profile(FIB, false);
    let fib = report
        .functions
        .iter()
        .find(|f| f.name == "fib")
        .expect("fib");
    assert_eq!(fib.calls, 21891);
    assert_eq!(fib.signatures[0].signature, "(int)");
    assert_eq!(fib.stability, 1.0);
    assert!(fib.candidate, "{}", fib.reason);
    assert!(fib.reason.contains("21891 calls > 1000"), "{}", fib.reason);
}

#[test]
fn nested_loops_count_entries_and_iterations() {
    let program = "var t = 0\nfor k in 0..10 {\n    for i in 0..1000 { t += i }\n}\n";
    let report = profile(program, false);
    let inner = report
        .loops
        .iter()
        .find(|l| l.line == 3)
        .expect("inner loop");
    assert_eq!((inner.entries, inner.iterations), (10, 10000));
    let outer = report
        .loops
        .iter()
        .find(|l| l.line == 2)
        .expect("outer loop");
    assert_eq!((outer.entries, outer.iterations), (1, 10));
    assert!(!inner.osr_candidate, "1000 per entry is not above 1000");
}

#[test]
fn stability_is_the_top_signatures_share() {
    let program = "fun poly(a, b) { a * b }\n\
                   var i = 0\nwhile i < 95 { poly(i, 2); i += 1 }\n\
                   i = 0\nwhile i < 5 { poly(1.5, 2.5); i += 1 }\n";
    let report = profile(program, false);
    let poly = report
        .functions
        .iter()
        .find(|f| f.name == "poly")
        .expect("poly");
    assert_eq!(poly.calls, 100);
    assert!((poly.stability - 0.95).abs() < 1e-12);
    assert_eq!(poly.signatures[0].signature, "(int, int)");
    assert_eq!(poly.signatures[1].signature, "(float, float)");
    assert!(!poly.candidate);
    assert!(poly.reason.starts_with("cold"), "{}", poly.reason);
}

#[test]
fn unstable_functions_are_not_candidates_and_say_so() {
    let program = "fun f(x) { x }\nvar i = 0\n\
                   while i < 3000 { if i % 2 == 0 { f(i) } else { f(1.5) }; i += 1 }\n";
    let report = profile(program, false);
    let f = report.functions.iter().find(|f| f.name == "f").expect("f");
    assert!((f.stability - 0.5).abs() < 1e-12);
    assert!(!f.candidate);
    assert!(f.reason.starts_with("unstable"), "{}", f.reason);
}

#[test]
fn timing_counts_recursion_once() {
    let report = profile(
        "fun fib(n) { if n < 2 { return n } fib(n - 1) + fib(n - 2) }\nfib(22)\n",
        true,
    );
    let fib = report
        .functions
        .iter()
        .find(|f| f.name == "fib")
        .expect("fib");
    // The total of a recursive function is its outermost activations' time, never more
    // than the whole run (a naive sum over activations would be about 20 times more).
    assert!(
        fib.total <= report.run_time,
        "{:?} > {:?}",
        fib.total,
        report.run_time
    );
    assert!(fib.percent.expect("timed") > 50.0);
    assert!(fib.self_time <= fib.total);
}

#[test]
fn osr_candidates_are_loops_with_many_iterations_per_entry() {
    let report = profile(
        "var s = 0\nvar i = 0\nwhile i < 5000 { s += i; i += 1 }\n",
        true,
    );
    let l = &report.loops[0];
    assert_eq!(l.iterations, 5000);
    assert!(l.osr_candidate, "{}", l.reason);
    assert!(l.time_per_iteration.is_some());
}

#[test]
fn json_has_the_documented_fields() {
    let program = FIB.to_string();
    let json = ruchy_jit::stack::run_with_stack(256 << 20, move || {
        let options = Options {
            tier: Tier::Vm,
            ..Options::default()
        };
        let mut session = Session::new(&options, Box::new(std::io::sink())).expect("vm");
        session.run_program("p.ruchy", &program).expect("runs");
        session.profile_report(Thresholds::default()).json()
    });
    for field in [
        "\"version\":1",
        "\"name\":\"fib\"",
        "\"calls\":21891",
        "\"signatures\":[{\"signature\":\"(int)\",\"calls\":21891}]",
        "\"jit_candidate\":true",
        "\"loops\":[",
    ] {
        assert!(json.contains(field), "{field} missing from {json}");
    }
}
