//! Stress: recursion to the default limit in every tier, an array of ten million elements
//! built by `push`, a REPL session of 10,000 inputs that redefine and recompile functions
//! (its memory must stay bounded), and Ctrl-C at random moments of compiled code.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{ruchy_run as ruchy, Captured};
use ruchy_jit::error::ErrorKind;
use ruchy_jit::session::{Options, Session, Tier};

const TIERS: [Tier; 4] = [Tier::Ast, Tier::Vm, Tier::Jit, Tier::Auto];

fn built() -> impl Iterator<Item = Tier> {
    TIERS.into_iter().filter(|t| t.available().is_ok())
}

/// With the default limit, `d(limit - 1)` makes exactly `limit` nested calls and works;
/// one more is the clean error, pointing at the call.
#[test]
fn recursion_to_the_default_limit_in_every_tier() {
    let limit = Options::default().max_depth;
    let program = format!(
        "fun d(n) {{ if n == 0 {{ 0 }} else {{ 1 + d(n - 1) }} }}\nprintln(d({}))\nprintln(d({limit}))\n",
        limit - 1
    );
    for tier in built() {
        let (out, err, code) = ruchy(&["--tier", tier.name()], "deep.ruchy", &program);
        assert_eq!(
            out,
            format!("{}\n", limit - 1),
            "tier {}: {err}",
            tier.name()
        );
        assert_eq!(code, 1, "tier {}", tier.name());
        assert!(
            err.contains("Recursion limit exceeded") && err.contains("deep.ruchy:1:39"),
            "tier {}: {err}",
            tier.name()
        );
    }
}

#[test]
fn ten_million_pushes_in_every_tier() {
    let program = "var a = []\nvar i = 0\nwhile i < 10000000 { a.push(i); i += 1 }\n\
                   println(len(a), a[9999999], a[-10000000])\n\
                   fun fill(n) { var b = []; for k in 0..n { b.push(k * 2) }; b }\n\
                   let b = fill(10000000)\nprintln(len(b), b[len(b) - 1])\n";
    for tier in built() {
        let (out, err, code) = ruchy(&["--tier", tier.name()], "push.ruchy", program);
        assert_eq!(
            (out.as_str(), code),
            ("10000000 9999999 0\n10000000 19999998\n", 0),
            "tier {}: {err}",
            tier.name()
        );
    }
}

/// One `:memory` report of the REPL.
#[derive(Debug)]
struct Memory {
    resident_mb: f64,
    module_mb: f64,
    flushes: u32,
}

fn megabytes(text: &str) -> f64 {
    let mut words = text.split_whitespace();
    let number: f64 = words.next().and_then(|n| n.parse().ok()).expect("a size");
    match words.next() {
        Some("MB") => number,
        Some("KB") => number / 1024.0,
        _ => number / (1024.0 * 1024.0),
    }
}

fn parse_memory(report: &[&str]) -> Memory {
    let field = |prefix: &str| -> &str {
        let line = report
            .iter()
            .find(|l| l.contains(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {report:?}"));
        &line[line.find(prefix).expect("found") + prefix.len()..]
    };
    let flushes = field("MB, ")
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("flush count");
    Memory {
        resident_mb: megabytes(field("resident memory: ")),
        module_mb: megabytes(field("the JIT module holds about ")),
        flushes,
    }
}

/// 10,000 inputs: each redefines `f` and calls it enough to compile it (`--jit-threshold
/// 1`), so the session compiles 10,000 functions. Cranelift cannot free one function, so
/// the code cache is flushed when it passes its budget: the module never holds much more
/// than the budget, and resident memory stops growing.
#[test]
fn ten_thousand_redefinitions_in_one_repl_session_stay_bounded() {
    let budget_mb = (ruchy_jit::jit::CODE_CACHE_BUDGET >> 20) as f64;
    let mut input = String::new();
    for i in 0..10_000 {
        input.push_str(&format!(
            "fun f(n) {{ var s = 0; for i in 0..n {{ s += i * {} + {i} }}; s }}\nf(3) + f(4) + f(5)\n",
            i % 7
        ));
        if (i + 1) % 2500 == 0 {
            input.push_str(":memory\n");
        }
    }
    let mut child = common::spawn_repl(&["--jit-threshold", "1"]);
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("the REPL ends");
    writer.join().expect("writer").expect("typed");
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    // The last input's value: f(3) + f(4) + f(5) with i = 9999, k = 9999 % 7 = 3.
    let final_value = 19 * (9999 % 7) + 12 * 9999;
    assert!(
        lines.contains(&final_value.to_string().as_str()),
        "the session ran to the end"
    );
    let reports: Vec<Memory> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("resident memory:"))
        .map(|(i, _)| parse_memory(&lines[i..i + 3]))
        .collect();
    assert_eq!(reports.len(), 4, "{reports:?}");
    for (n, r) in reports.iter().enumerate() {
        eprintln!(
            "after {} inputs: {:.1} MB resident, JIT module {:.1} MB, {} flushes",
            (n + 1) * 2500,
            r.resident_mb,
            r.module_mb,
            r.flushes
        );
        assert!(r.module_mb <= budget_mb + 1.0, "{r:?}");
    }
    let (first, last) = (&reports[0], &reports[3]);
    // How many flushes depends on how much code each compile makes (two since the
    // exits' fixed parts left the code, three before).
    assert!(last.flushes >= 2, "the code cache was flushed: {last:?}");
    // Without the flushes, 7,500 more compiles would add well over 100 MB.
    assert!(
        last.resident_mb < first.resident_mb + budget_mb,
        "resident memory stays bounded: {first:?} then {last:?}"
    );
}

/// A program that spends its time in compiled code: recursion, nested loops, arrays,
/// floats and strings.
const BUSY: &str = r#"
fun fib(n) { if n < 2 { n } else { fib(n - 1) + fib(n - 2) } }
fun sum_to(n) { var s = 0; var i = 0; while i < n { s += i % 7; i += 1 }; s }
fun grid(n) {
    var rows = []
    for i in 0..n {
        var row = []
        for j in 0..n { row.push(i * j + 0.5) }
        rows.push(row)
    }
    rows
}
fun work() {
    var total = 0
    loop {
        total += fib(18) + sum_to(5000)
        let g = grid(20)
        total += int(g[3][4])
        total += len("x" + str(total))
    }
}
work()
"#;

/// Ctrl-C at random moments (here the interrupt flag, set from another thread, which is
/// what the REPL's handler does) stops compiled code with `Interrupted`, and the session
/// goes on: the same functions give the right answers afterwards.
#[test]
fn interrupts_at_random_moments_of_compiled_code() {
    let mut seed: u64 = 0x1234_5678_9abc_def1;
    let mut next_delay = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        Duration::from_micros(seed % 30_000)
    };
    for (tier, threshold) in [(Tier::Jit, 0), (Tier::Auto, 2), (Tier::Auto, 1000)] {
        let delays: Vec<Duration> = (0..25).map(|_| next_delay()).collect();
        let report = ruchy_jit::stack::run_with_stack(256 << 20, move || {
            let mut options = Options {
                tier,
                ..Options::default()
            };
            if threshold > 0 {
                options.jit.call_threshold = threshold;
                options.jit.osr_threshold = threshold;
            }
            let out = Captured::default();
            let mut session = Session::new(&options, Box::new(out.clone())).expect("tier");
            let mut outcomes = Vec::new();
            for delay in delays {
                session.limits.clear_interrupt();
                let flag = session.limits.interrupt.clone();
                let timer = std::thread::spawn(move || {
                    std::thread::sleep(delay);
                    ruchy_jit::limits::request_interrupt(&flag);
                });
                let result = session.eval("busy.ruchy", BUSY);
                timer.join().expect("timer");
                let kind = result.err().map(|e| e.kind);
                session.limits.clear_interrupt();
                out.take();
                let check = session.eval("check.ruchy", "println(fib(20), sum_to(100))");
                outcomes.push((kind, check.is_ok(), out.take()));
            }
            outcomes
        });
        for (kind, checked, printed) in report {
            assert_eq!(kind, Some(ErrorKind::Interrupted), "{}", tier.name());
            assert!(checked, "{}", tier.name());
            assert_eq!(printed, "6765 295\n", "{} after an interrupt", tier.name());
        }
    }
}

/// A real SIGINT to a REPL process at random moments of a long computation (in the VM at
/// first, in compiled code once it is hot): the process survives and answers the next
/// input.
#[test]
fn sigint_to_the_repl_at_random_moments() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    use std::io::{BufRead, BufReader, Read};
    for delay_ms in [5, 40, 120, 300] {
        let mut child = common::spawn_repl(&["--jit-threshold", "10", "--osr-threshold", "10"]);
        let mut stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let (line_tx, stderr_lines) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let _ = line_tx.send(line);
            }
        });
        stdin
            .write_all(
                b"fun spin(n) { var s = 0; var i = 0; while i < n { s += i % 7; i += 1 }; s }
                  spin(100)
",
            )
            .expect("type");
        stdin.flush().expect("flush");
        // The session is up (and its Ctrl-C handler installed) once it has answered.
        let mut answered = String::new();
        for _ in 0..2 {
            stdout.read_line(&mut answered).expect("an answer");
        }
        assert_eq!(answered, "<function>\n295\n");
        stdin.write_all(b"spin(100000000000)\n").expect("type");
        stdin.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(delay_ms));
        // A Ctrl-C that lands before the input starts running is dropped (each input
        // starts with the flag clear), as at a terminal: press again until it takes.
        let mut seen = Vec::new();
        let interrupted = (0..40).any(|_| {
            kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).expect("send SIGINT");
            while let Ok(line) = stderr_lines.recv_timeout(Duration::from_millis(250)) {
                let hit = line.contains("Interrupted");
                seen.push(line);
                if hit {
                    return true;
                }
            }
            false
        });
        assert!(interrupted, "after {delay_ms} ms: {seen:?}");
        stdin.write_all(b"spin(10)\n").expect("type");
        drop(stdin);
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).expect("the rest");
        let status = child.wait().expect("the REPL ends");
        reader.join().expect("stderr reader");
        assert!(status.success(), "after {delay_ms} ms: {seen:?}");
        assert_eq!(rest, "24\n", "after {delay_ms} ms: {seen:?}");
    }
}
