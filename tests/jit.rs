//! The JIT's own behavior, beyond identical output (which `golden.rs` checks under
//! `--tier jit` with and without `--deopt-stress`): the events it logs, deopts with their
//! reason, blacklisting, and the IR `ruchydbg ir` shows.

mod common;

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> (String, String, i32) {
    common::ruchy(args)
}

/// Runs `tests/programs/NAME.ruchy` with `flags` after `run`, checks its output against
/// `NAME.expected`, and returns its stderr and exit code.
fn run_golden(name: &str, flags: &[&str]) -> (String, i32) {
    let program = root().join(format!("tests/programs/{name}.ruchy"));
    let program = program.to_str().expect("utf-8 path");
    let mut args = vec!["run", program];
    args.extend_from_slice(flags);
    let (out, err, code) = run(&args);
    let want = std::fs::read_to_string(root().join(format!("tests/programs/{name}.expected")))
        .expect("expected output");
    assert_eq!(out, want, "{err}");
    (err, code)
}

/// What `ruchydbg ir FILE FUNCTION ARGS` prints for `program`.
fn ir_of(program: &str, function: &str, args: &[&str]) -> String {
    let file = common::TempProgram::new(&format!("{function}.ruchy"), program);
    let out = Command::new(env!("CARGO_BIN_EXE_ruchydbg"))
        .arg("ir")
        .arg(file.path())
        .arg(function)
        .args(args)
        .output()
        .expect("run ruchydbg");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// What `ruchydbg ir` prints for fib compiled at tier 2 at once.
fn fib_at_tier2() -> String {
    let program = std::fs::read_to_string(root().join("tests/bytecode/fib.ruchy"))
        .expect("fib program")
        + "println(fib(15))\n";
    ir_of(&program, "fib", &["--tier2-threshold", "0"])
}

/// The lines (by index) of the IR's comparisons `icmp CC x, k` with the constant `k`.
fn compares_with(ir: &str, cc: &str, k: i64) -> Vec<usize> {
    // Cranelift notes the constant after the instruction: in decimal when small, else in
    // hex, eight digits in groups of four (`; v13 = 0x0003_0d3f`).
    let hex = format!(" = 0x{k:08x}");
    let decimal = format!(" = {k}");
    ir.lines()
        .enumerate()
        .filter(|(_, l)| {
            l.contains(&format!("= icmp {cc} ")) || l.contains(&format!("= icmp.i64 {cc} "))
        })
        .filter(|(_, l)| l.replace('_', "").ends_with(&hex) || l.ends_with(&decimal))
        .map(|(i, _)| i)
        .collect()
}

/// A global read by compiled code alternates between int and float: each call of the
/// code compiled for the other type deopts with the reason and line, the code is dropped
/// and compiled again at the next call, and the fourth deopt blacklists the function.
#[test]
fn a_type_change_deopts_with_its_reason_then_blacklists() {
    let program = root().join("tests/programs/jit_deopt_global_type.ruchy");
    let program = program.to_str().expect("utf-8 path");
    let (out, err, code) = run(&["run", program, "--tier", "jit", "--trace-jit"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.ends_with("52.5\n"), "{out}");
    let events: Vec<&str> = err
        .lines()
        .filter(|l| l.contains(" scaled"))
        .map(|l| l.split(" in ").next().unwrap_or(l))
        .collect();
    let deopt = "[jit] deopt scaled at line 7: expected int, got float";
    assert_eq!(
        events,
        [
            "[jit] compiled scaled(int)".to_string(),
            format!("{deopt} (deopt 1 of 3)"),
            "[jit] compiled scaled(int)".to_string(),
            format!("{deopt} (deopt 2 of 3)"),
            "[jit] compiled scaled(int)".to_string(),
            format!("{deopt} (deopt 3 of 3)"),
            "[jit] compiled scaled(int)".to_string(),
            format!("{deopt} (deopt 4, over the limit of 3)"),
            "[jit] blacklisted scaled after 4 deopts".to_string(),
        ],
        "{err}"
    );
}

/// Deopt-stress makes guards fail on purpose; the function deopts, is blacklisted and
/// the result is still right.
#[test]
fn deopt_stress_blacklists_and_keeps_results() {
    let program = root().join("tests/bytecode/fib.ruchy");
    let text = std::fs::read_to_string(&program).expect("fib program") + "println(fib(20))\n";
    let file = common::TempProgram::new("deopt-stress.ruchy", &text);
    let (out, err, code) = run(&[
        "run",
        file.path(),
        "--tier",
        "jit",
        "--deopt-stress",
        "3",
        "--trace-jit",
    ]);
    assert_eq!((out.as_str(), code), ("6765\n", 0), "{err}");
    assert!(err.contains("[jit] deopt fib at line"), "{err}");
    assert!(err.contains("deopt-stress"), "{err}");
    assert!(
        err.contains("[jit] blacklisted fib after 4 deopts"),
        "{err}"
    );
}

/// `ruchydbg ir` prints the IR that was compiled, with its signature, and the machine code.
#[test]
fn ruchydbg_ir_shows_the_compiled_code() {
    let fib = std::fs::read_to_string(root().join("tests/bytecode/fib.ruchy")).expect("fib");
    let text = ir_of(&(fib + "println(fib(15))\n"), "fib", &[]);
    assert!(text.starts_with("; fib(int) compiled in "), "{text}");
    assert!(text.contains("returns int"), "{text}");
    // The checked addition and the direct self-call are in the IR; `n - 1` and `n - 2`
    // lost their checks, since `n < 2` returned before them.
    assert!(text.contains("sadd_overflow"), "{text}");
    assert!(!text.contains("ssub_overflow"), "{text}");
    assert!(
        text.contains("; 2 overflow checks outside loops removed: the branch tests before them prove they cannot overflow"),
        "{text}"
    );
    assert!(text.contains("colocated"), "{text}");
    assert!(text.contains("; machine code of fib(int):"), "{text}");
}

/// A function never called says so instead of printing nothing.
#[test]
fn ruchydbg_ir_of_a_function_never_called() {
    let file = root().join("tests/bytecode/fib.ruchy");
    let out = Command::new(env!("CARGO_BIN_EXE_ruchydbg"))
        .arg("ir")
        .arg(&file)
        .arg("fib")
        .output()
        .expect("run ruchydbg");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("fib was not compiled (it was never called)"),
        "{text}"
    );
}

/// A constant as Cranelift's IR text writes it in hex: eight digits in groups of four.
fn cranelift_hex(k: i64) -> String {
    let digits = format!("{k:08x}");
    format!("0x{}_{}", &digits[..4], &digits[4..])
}

/// The IR's direct calls of functions declared `colocated` (the function itself), each
/// with whether it is in a cold block.
fn direct_calls(ir: &str) -> Vec<bool> {
    let direct: Vec<&str> = ir
        .lines()
        .filter(|l| l.contains("= colocated"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let mut cold = false;
    let mut calls = Vec::new();
    for line in ir.lines() {
        if line.starts_with("block") {
            cold = line.contains(" cold");
        }
        if direct.iter().any(|f| line.contains(&format!("call {f}("))) {
            calls.push(cold);
        }
    }
    calls
}

/// Tier 2 turns fib's second call into a loop with a running sum (`fib(n - 2)` becomes
/// `n = n - 2` and a jump back to the start), and unrolls the first three levels deep,
/// each level a loop of its own; the innermost activation's call is peeled. The sums are
/// checked by sign (no `sadd_overflow`), fib's subtractions need no check, each back
/// edge polls the interrupt flag, and the only real call on the hot path is the peeled
/// one: each level also has a cold real call, for when an interrupt is pending.
#[test]
fn tier2_turns_fibs_second_call_into_a_loop() {
    let text = fib_at_tier2();
    assert!(
        text.starts_with(
            "; fib(int) at tier 2 (self-recursion unrolled 3 levels deep: 3 self-calls inlined, \
             1 more peeled (base case tested inline)) compiled in"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "; accumulator: the self-call at line 7 is a loop with a running sum (4 back \
             edges), its depth bounded by parameter 1 (calls only while it is >= 2, each with \
             it smaller), checked once at the entry\n"
        ),
        "{text}"
    );
    let ir = &text[..text.find("; machine code").expect("machine code")];
    assert_eq!(ir.matches("sadd_overflow").count(), 0, "{ir}");
    assert_eq!(ir.matches("ssub_overflow").count(), 0, "{ir}");
    assert_eq!(ir.matches("atomic_load").count(), 4, "{ir}");
    let calls = direct_calls(ir);
    assert_eq!(calls.len(), 5, "{ir}");
    assert_eq!(calls.iter().filter(|cold| !**cold).count(), 1, "{ir}");
}

/// A self-recursion that is no sum (a difference here) is unrolled as a tree: its body
/// appears seven times in its IR (itself, two inlined calls, and two inlined in each of
/// those), with one checked subtraction each; only the innermost calls remain real calls,
/// and those are peeled: the callee's start (the base-case test and `n - 1`) is
/// translated inline, and the real call is made from there, only when the base case does
/// not apply.
#[test]
fn tier2_unrolls_other_self_recursion_as_a_tree() {
    let program = "fun diff(n) {\n    if n < 2 {\n        return n\n    }\n    \
                   return diff(n - 1) - diff(n - 2)\n}\nprintln(diff(15))\n";
    let text = ir_of(program, "diff", &["--tier2-threshold", "0"]);
    assert!(
        text.starts_with(
            "; diff(int) at tier 2 (self-recursion unrolled 2 levels deep: 6 self-calls \
             inlined, 8 more peeled (base case tested inline)) compiled in"
        ),
        "{text}"
    );
    assert!(!text.contains("; accumulator"), "{text}");
    let ir = &text[..text.find("; machine code").expect("machine code")];
    // 7 full bodies with one checked subtraction; `n - 1` and `n - 2` need no check.
    assert_eq!(ir.matches("ssub_overflow").count(), 7, "{ir}");
    // The eight peeled activations make their real calls.
    assert_eq!(direct_calls(ir).len(), 8, "{ir}");
}

/// fib's depth is bounded by its parameter (every call passes a smaller `n`, and only
/// past `n >= 2`), so its entry checks once that `n` is far enough from the depth limit,
/// and nothing below compares a level with the limit: not the loops, not the inlined
/// calls, not the real ones.
#[test]
fn tier2_checks_a_bounded_recursion_once_at_the_entry() {
    let text = fib_at_tier2();
    let ir = &text[..text.find("; machine code").expect("machine code")];
    let max_depth = ruchy_jit::limits::DEFAULT_MAX_DEPTH as i64;
    for below in 0..5 {
        assert!(
            compares_with(ir, "uge", max_depth - below).is_empty(),
            "{ir}"
        );
    }
    // The entry's check: `n >= (2 + max_depth) - level`.
    assert!(
        ir.contains(&format!("= iconst.i64 {}", cranelift_hex(max_depth + 2))),
        "{ir}"
    );
}

/// Without such a bound (`d` stops at `n == 0`, which a negative `n` never reaches), the
/// loop counts its call depth: each back edge compares it with the limit, as the call it
/// replaces would, and `d(199999)` works while `d(200000)` fails at the same call in every
/// tier (`tier2_depth_limit_edges.ruchy`).
#[test]
fn tier2_counts_the_depth_of_an_unbounded_accumulator_loop() {
    let program = "fun d(n) {\n    if n == 0 {\n        return 0\n    }\n    \
                   return 1 + d(n - 1)\n}\nprintln(d(50))\n";
    let text = ir_of(program, "d", &["--tier2-threshold", "0"]);
    assert!(
        text.contains(
            "; accumulator: the self-call at line 5 is a loop with a running sum (1 back edge), \
             each iteration counting its call depth\n"
        ),
        "{text}"
    );
    let ir = &text[..text.find("; machine code").expect("machine code")];
    let max_depth = ruchy_jit::limits::DEFAULT_MAX_DEPTH as i64;
    let hex = cranelift_hex(max_depth);
    let checks = ir
        .lines()
        .filter(|l| l.contains(" uge ") && l.ends_with(&format!("= {hex}")))
        .count();
    // The back edge's, and the cold real call's.
    assert_eq!(checks, 2, "{ir}");
}

/// A function that changes no binding and calls nothing but small leaves (inlined) checks
/// the epoch and depth limit of those calls once, in its first block, not in its loop.
#[test]
fn inlined_leaves_are_checked_once_at_the_entry() {
    let program = "fun sq(x) {\n    return x * x\n}\nfun run(n) {\n    let mut s = 0\n    \
                   let mut i = 0\n    while i < n {\n        s = s + sq(i)\n        \
                   i = i + 1\n    }\n    return s\n}\nprintln(run(10))\n";
    let text = ir_of(program, "run", &[]);
    assert!(text.contains("; inlined: sq (line 8)"), "{text}");
    let ir = &text[..text.find("; machine code").expect("machine code")];
    let checks = compares_with(ir, "uge", ruchy_jit::limits::DEFAULT_MAX_DEPTH as i64);
    // The loop starts where its back edge polls the interrupt flag.
    let loop_poll = ir
        .lines()
        .position(|l| l.contains("atomic_load"))
        .expect("the loop's poll");
    assert_eq!(checks.len(), 1, "{ir}");
    assert!(
        checks[0] < loop_poll,
        "the check is not at the entry:\n{ir}"
    );
}

/// With tiering, fib's tier-1 code counts its calls and hands over to tier 2 mid-recursion;
/// deopts inside inlined activations land in their own VM frames.
#[test]
fn tier1_code_tiers_up_and_inlined_deopts_keep_results() {
    let (err, _) = run_golden(
        "tier2_deopt_in_inlined_calls",
        &["--tier", "jit", "--tier2-threshold", "0", "--trace-jit"],
    );
    assert!(
        err.contains("[jit] compiled walk(int) at tier 2 (2 self-calls inlined)"),
        "{err}"
    );
    assert!(
        err.contains("[jit] deopt walk at line 9: expected int, got string"),
        "{err}"
    );

    let fib = std::fs::read_to_string(root().join("tests/bytecode/fib.ruchy")).expect("fib")
        + "println(fib(25))\n";
    let file = common::TempProgram::new("tier2.ruchy", &fib);
    let (out, err, code) = run(&[
        "run",
        file.path(),
        "--trace-jit",
        "--tier2-threshold",
        "500",
    ]);
    assert_eq!((out.as_str(), code), ("75025\n", 0), "{err}");
    let tier1 = err
        .find("[jit] compiled fib(int) in")
        .expect("tier 1 first");
    let tier2 = err
        .find("[jit] compiled fib(int) at tier 2 (3 self-calls inlined, 1 turned into a loop)")
        .expect("then tier 2");
    assert!(tier1 < tier2, "{err}");
}

/// Range analysis: in the triple loop of `nested`, the loop bounds prove every `+`, `-`
/// and `*` cannot overflow, `count + 1` included (an accumulator of a loop whose count
/// is bounded); the IR keeps no check, only the range guards at the three loop entries
/// (values within ±2^30).
#[test]
fn loop_bounds_remove_overflow_checks_behind_range_guards() {
    let text = "fun triples(n) {
    let mut count = 0
    let mut a = 1
    while a <= n {
        let mut b = a
        while b <= n {
            let mut c = b
            while c <= n {
                if a * a + b * b == c * c {
                    count = count + 1
                }
                c = c + 1
            }
            b = b + 1
        }
        a = a + 1
    }
    count
}
println(triples(30))
";
    let text = ir_of(text, "triples", &[]);
    assert!(
        text.lines().nth(1).is_some_and(|l| l
            == "; 8 overflow checks removed: loop bounds prove them unnecessary, given the range guards at 3 loop entries"),
        "{text}"
    );
    let ir = &text[..text.find("; machine code").expect("machine code")];
    assert_eq!(ir.matches("smul_overflow").count(), 0, "{ir}");
    assert_eq!(ir.matches("sadd_overflow").count(), 0, "{ir}");
    // Each guard is one unsigned comparison per value: v + 2^30 <= 2^31.
    assert!(ir.matches("icmp ugt").count() >= 3, "{ir}");
}

/// Branch tests bound the registers they compare on the edge that is the only way into
/// what follows: a check goes where the edge proves it, and stays after a join or once
/// the register is written again (tests/programs/jit_branch_ranges.ruchy runs these at
/// the ends of i64).
#[test]
fn branch_tests_remove_the_overflow_checks_they_prove() {
    let program = std::fs::read_to_string(root().join("tests/programs/jit_branch_ranges.ruchy"))
        .expect("program");
    // (function, checks removed, checked operations left)
    for (function, removed, left) in [
        ("below", 2, 2),
        ("joined", 2, 1),
        ("strict", 1, 0),
        ("pinned", 1, 0),
        ("reassigned", 0, 1),
    ] {
        let text = ir_of(&program, function, &[]);
        let ir = &text[..text.find("; machine code").expect("machine code")];
        let line = match removed {
            0 => None,
            1 => Some("; 1 overflow check outside loops removed".to_string()),
            n => Some(format!("; {n} overflow checks outside loops removed")),
        };
        match line {
            Some(line) => assert!(ir.contains(&line), "{function}: {ir}"),
            None => assert!(!ir.contains("removed"), "{function}: {ir}"),
        }
        assert_eq!(ir.matches("_overflow").count(), left, "{function}: {ir}");
    }
}

/// An accumulator: in the `loop` benchmark's body, `i * i % 7` lies within ±6 and the loop
/// runs at most 2^31 + 1 times, so `sum + ...` cannot overflow from a start within ±2^30;
/// all three checks go. A `continue` before the increment leaves the iterations unbounded
/// by the counter, and the sum keeps its check.
#[test]
fn an_accumulator_of_a_bounded_loop_needs_no_overflow_check() {
    let bounded = "fun squares_mod(n) {
    let mut sum = 0
    let mut i = 0
    while i < n {
        sum = sum + i * i % 7
        i = i + 1
    }
    sum
}
println(squares_mod(1000))
";
    let text = ir_of(bounded, "squares_mod", &[]);
    let ir = &text[..text.find("; machine code").expect("machine code")];
    assert!(ir.contains("; 3 overflow checks removed"), "{ir}");
    assert_eq!(ir.matches("_overflow").count(), 0, "{ir}");

    let unbounded = "fun skipping(n) {
    let mut total = 0
    let mut m = 0
    while m < n {
        total = total + 1
        if total % 2 == 0 {
            continue
        }
        m = m + 1
    }
    total
}
println(skipping(1001))
";
    let text = ir_of(unbounded, "skipping", &[]);
    let ir = &text[..text.find("; machine code").expect("machine code")];
    assert_eq!(ir.matches("sadd_overflow").count(), 1, "{ir}");
}

/// A loop test on floats branches on the comparison's complement: `while y >= 1.0` leaves
/// the loop on `fcmp ult` (unordered or less, so a NaN leaves it too), which x86-64 fuses
/// into `ucomisd; jb`, instead of testing the result of `fcmp ge` against zero.
#[test]
fn a_float_loop_test_branches_on_the_complement() {
    let program = "fun halvings(x) {
    let mut y = x
    let mut steps = 0
    while y >= 1.0 {
        y = y / 2.0
        steps = steps + 1
    }
    steps
}
println(halvings(1000.0))
";
    let text = ir_of(program, "halvings", &[]);
    let ir = &text[..text.find("; machine code").expect("machine code")];
    assert!(ir.contains("= fcmp ult "), "{ir}");
    assert!(!ir.contains("= fcmp ge "), "{ir}");
}

/// The IR of one function of `tests/programs/NAME.ruchy`, up to its machine code.
fn program_ir(name: &str, function: &str) -> String {
    let program = std::fs::read_to_string(root().join(format!("tests/programs/{name}.ruchy")))
        .expect("read the program");
    let text = ir_of(&program, function, &[]);
    text[..text.find("; machine code").expect("machine code")].to_string()
}

/// A short `if` body with no check is if-converted: its result is selected, not branched
/// over. One whose overflow check stays keeps its branch (it could raise an error).
#[test]
fn short_if_bodies_become_selects() {
    for function in [
        "triples",
        "counts",
        "count_true",
        "last_false",
        "float_sums",
    ] {
        let ir = program_ir("jit_if_conversion", function);
        assert!(ir.contains(" = select"), "{function}: {ir}");
    }
    let ir = program_ir("jit_if_conversion", "triples");
    assert!(
        ir.contains("1 branch turned into selects (if-conversion)"),
        "{ir}"
    );
    let ir = program_ir("jit_if_conversion", "doubling");
    assert!(!ir.contains(" = select"), "{ir}");
    assert_eq!(ir.matches("smul_overflow").count(), 1, "{ir}");
}

/// A back edge tests the loop's condition itself (loop rotation): `trips` tests whether
/// `i < n` fails twice, at the loop's entry (`n <= 0`, with `i` known to be 0) and at its
/// back edge (`i >= n`), instead of jumping back to one test.
#[test]
fn a_loop_tests_its_condition_at_the_back_edge() {
    let ir = program_ir("jit_loop_rotation", "trips");
    let tests = ir
        .lines()
        .filter(|l| l.contains(" = icmp") && (l.contains(" sle ") || l.contains(" sge ")))
        .count();
    assert_eq!(tests, 2, "{ir}");
    assert!(
        ir.contains("; branch layout: loop test repeated at 1 back edge"),
        "{ir}"
    );
}

/// Every deopt of an activation goes through one call of `rt_resume` with six register
/// arguments; what each exit hands over is described by its exit site, not passed.
#[test]
fn deopts_share_one_resume_call() {
    let ir = program_ir("jit_if_conversion", "float_sums");
    let resumes: Vec<&str> = ir.lines().filter(|l| l.contains("call fn1(")).collect();
    assert_eq!(resumes.len(), 1, "{ir}");
    let args = &resumes[0][resumes[0].find("call fn1(").expect("a call")..];
    assert_eq!(
        args[..args.find(')').expect("arguments")]
            .matches(',')
            .count(),
        5,
        "{ir}"
    );
}

/// A range guard that fails deoptimizes at the loop's entry with its reason; the function
/// is compiled again without range assumptions (its checks back), and results stay right.
#[test]
fn a_failed_range_guard_deopts_and_recompiles_with_checks() {
    let (err, code) = run_golden("jit_range_guards", &["--tier", "jit", "--trace-jit"]);
    assert_eq!(code, 1, "{err}");
    let events: Vec<&str> = err
        .lines()
        .filter(|l| l.contains(" squares"))
        .map(|l| l.split(" in ").next().unwrap_or(l))
        .collect();
    assert_eq!(
        events,
        [
            "[jit] compiled squares(int, int)",
            "[jit] deopt squares at line 10: an int outside ±1073741824 (the loop's overflow \
             checks were removed for that range) (deopt 1 of 3)",
            "[jit] compiled squares(int, int)",
        ],
        "{err}"
    );
}

/// The variable of `for i in start..end` is known to lie within the range when the loop's
/// entry finds both ends within ±2^30: `i * i` needs no check, the sum still does.
#[test]
fn a_for_range_variable_multiplies_without_checks() {
    let text = "fun s(n) {
    let mut t = 0
    for i in 0..n {
        t = t + i * i
    }
    t
}
println(s(100))
";
    let text = ir_of(text, "s", &[]);
    assert!(
        text.lines().nth(1).is_some_and(|l| l
            == "; 1 overflow check removed: loop bounds prove them unnecessary, given the range guards at 1 loop entry"),
        "{text}"
    );
    let ir = &text[..text.find("; machine code").expect("machine code")];
    assert_eq!(ir.matches("smul_overflow").count(), 0, "{ir}");
    assert_eq!(ir.matches("sadd_overflow").count(), 1, "{ir}");
}

/// A small leaf callee is translated into its caller's loop: `:ir` names it with the line
/// of the call, and the caller's code has no call left for it (no code-table load, no
/// indirect call), only its arithmetic.
#[test]
fn a_small_callee_is_inlined_into_the_loop_that_calls_it() {
    let program = "fun poly(a, b) {\n    return a * b + a - b\n}\n\
                   fun drive(n) {\n    let mut sum = 0\n    let mut i = 0\n    while i < n {\n        \
                   sum = sum + poly(i, 3)\n        i = i + 1\n    }\n    return sum\n}\n\
                   println(drive(100))\n";
    let text = ir_of(program, "drive", &[]);
    assert!(text.starts_with("; drive(int) compiled in"), "{text}");
    assert!(text.contains("\n; inlined: poly (line 8)\n"), "{text}");
    let ir = &text[..text.find("; machine code").expect("machine code")];
    assert_eq!(ir.matches("call_indirect").count(), 0, "{ir}");
    // poly's `a * b`, then its `+` and `-`, then the caller's `sum +`.
    assert_eq!(ir.matches("smul_overflow").count(), 1, "{ir}");
    assert_eq!(ir.matches("ssub_overflow").count(), 1, "{ir}");
}

/// A deopt inside an inlined callee lands in the callee's own VM frame: the VM finishes
/// the call with the right values, the caller continues with its result (deopting in
/// turn when it is not the type it expected), and the caller's code is dropped.
#[test]
fn a_deopt_inside_an_inlined_callee_finishes_the_callee_in_the_vm() {
    let (err, code) = run_golden("jit_inline_callees", &["--trace-jit"]);
    assert_eq!(code, 0, "{err}");
    let events: Vec<&str> = err
        .lines()
        .take(4)
        .map(|l| match l.find(" in ") {
            Some(at) if l.starts_with("[jit] compiled") => &l[..at],
            _ => l,
        })
        .collect();
    assert_eq!(
        events,
        [
            "[jit] compiled drive (OSR entry at line 35)",
            "[jit] OSR into drive at line 35 after 1000 iterations",
            "[jit] deopt scaled at line 14: expected int, got float (deopt 1 of 3)",
            "[jit] deopt drive at line 36: expected int, got float (deopt 1 of 3)",
        ],
        "{err}"
    );
    assert!(
        err.lines().next().is_some_and(
            |l| l.ends_with("; inlined poly (line 36), scaled (line 36), pick (line 37)")
        ),
        "{err}"
    );
}

/// `a[i]` in a compiled loop reads the element in place: the IR checks the array's tag and
/// the bounds, computes the element's address (`i << 4` past the buffer), and calls the
/// get helper only on the cold path of a miss.
#[test]
fn an_array_element_is_read_in_place() {
    let program = "fun total(a) {\n    let mut s = 0\n    let mut i = 0\n    \
                   while i < 3 {\n        s = s + a[i]\n        i = i + 1\n    }\n    \
                   return s\n}\nprintln(total([1, 2, 3]))\n";
    let text = ir_of(program, "total", &[]);
    let ir = &text[..text.find("; machine code").expect("machine code")];
    assert_eq!(ir.matches("ishl.i64").count(), 1, "{ir}");
    // The get helper (`fn6`: helpers are imported in `HelperRefs` order) is called only
    // from cold blocks, where the in-place path missed.
    let mut cold = false;
    let mut helper_calls = 0;
    for line in ir.lines() {
        if line.starts_with("block") {
            cold = line.contains(" cold:");
        }
        if line.contains("call fn6(") {
            helper_calls += 1;
            assert!(cold, "the get helper on the hot path: {line}\n{ir}");
        }
    }
    assert_eq!(helper_calls, 1, "{ir}");
}

/// A loop that only indexes an array reads the array's length and buffer once, at its
/// entry: the loop's two accesses (a read in the outer loop, a write in the nested one)
/// load neither, and check neither the array's tag nor its counts.
#[test]
fn a_loop_reads_its_array_once_at_its_entry() {
    let program = "fun mark(a, n) {\n    let mut p = 2\n    while p < n {\n        \
                   if a[p] {\n            let mut m = p + p\n            \
                   while m < n {\n                a[m] = false\n                \
                   m = m + p\n            }\n        }\n        p = p + 1\n    }\n    \
                   return a\n}\nprintln(len(mark([true, true, true, true, true, true], 6)))\n";
    let text = ir_of(program, "mark", &[]);
    assert!(
        text.contains(
            "; 2 array accesses in loops skip the array's checks: each loop's entry checks the \
             array once (1 array)"
        ),
        "{text}"
    );
    let ir = &text[..text.find("; machine code").expect("machine code")];
    // `a` is register 0: its payload (the pointer to the array) is at `regs + 8`, and
    // `regs` is the body's third parameter, `v2`. Each unhoisted access would load it.
    let pointer_loads = ir.lines().filter(|l| l.ends_with("aligned v2+8")).count();
    assert_eq!(
        pointer_loads, 1,
        "the array is read once, at the entry:\n{ir}"
    );
    let array_tag = ruchy_jit::value::Type::Array.index() as i64;
    let tag_checks = compares_with(ir, "eq", array_tag).len();
    assert_eq!(tag_checks, 1, "the array's tag is checked once:\n{ir}");
}

/// A loop that pushes to an array moves its buffer, so its entry keeps the array's pointer
/// (checked once: an array, unshared), and each access reads the length and buffer.
#[test]
fn a_loop_that_pushes_checks_its_array_once_at_its_entry() {
    let program = "fun grow(n) {\n    let mut a = []\n    let mut s = 0\n    \
                   let mut i = 0\n    while i < n {\n        a.push(i)\n        \
                   s = s + a[i]\n        i = i + 1\n    }\n    return s\n}\n\
                   println(grow(10))\n";
    let text = ir_of(program, "grow", &[]);
    assert!(
        text.contains("; 2 array accesses in loops skip the array's checks"),
        "{text}"
    );
    let ir = &text[..text.find("; machine code").expect("machine code")];
    let array_tag = ruchy_jit::value::Type::Array.index() as i64;
    let tag_checks = compares_with(ir, "eq", array_tag).len();
    assert_eq!(tag_checks, 1, "the array's tag is checked once:\n{ir}");
}
