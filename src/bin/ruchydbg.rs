//! `ruchydbg`: look inside the engine.

use std::process::ExitCode;

use ruchy_jit::bytecode::op::disassemble;
use ruchy_jit::bytecode::proto::Proto;
use ruchy_jit::error::stderr_wants_color;
use ruchy_jit::profile::report::Thresholds;
use ruchy_jit::session::{Options, Session, Tier};
use ruchy_jit::stack;
use std::time::{Duration, Instant};

/// `print!` and `println!` to stdout, except that a reader gone away (`ruchydbg ir F f |
/// head`) ends the program quietly instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write;
        if write!(std::io::stdout(), $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write;
        if writeln!(std::io::stdout(), $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}

const USAGE: &str = "\
ruchydbg - look inside the ruchy-jit engine

USAGE:
    ruchydbg bytecode FILE [FUNCTION]    disassemble every function of FILE (or one)
    ruchydbg hotspots FILE [OPTIONS]     run FILE with profiling; report hot functions and
                                         loops, JIT and OSR candidates and why
        --json                           machine-readable report (docs/PROFILE_JSON.md)
        --show-output                    print the program's own output first
        --hot-percent P  (30)            hot: more than P% of the run's time...
        --hot-calls N    (1000)          ...or more than N calls
        --stable S       (0.8)           stable: top signature's share of calls above S
        --osr-iterations N (1000)        OSR candidate: more than N iterations per entry
        --tier auto|vm   (auto)          run with tiering (the report says where each
                                         function ended and why; time spent in compiled
                                         code counts for its VM caller) or in the VM only
    ruchydbg benchmark FILE [OPTIONS]    run FILE under each tier; median and spread
        --tiers ast,vm   (all built)     tiers to compare
        --runs N         (5)             runs per tier
        --json                           machine-readable results
    ruchydbg --help | --version

    ruchydbg ir FILE FUNCTION [--tier2-threshold N]
                                         run FILE with --tier jit; print the Cranelift IR and
                                         machine code FUNCTION was compiled to, per signature
                                         and tier (0 compiles tier 2 at once)
";

fn main() -> ExitCode {
    ruchy_jit::alloc::tune();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("-h" | "--help" | "help") => {
            out!("{USAGE}");
            if args.is_empty() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            }
        }
        Some("-V" | "--version") => {
            outln!("ruchydbg {} (ruchy-jit)", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some("bytecode") => match &args[1..] {
            [file] => bytecode(file, None),
            [file, function] => bytecode(file, Some(function)),
            _ => usage_error("'ruchydbg bytecode' takes FILE and an optional FUNCTION"),
        },
        Some("hotspots") => hotspots(&args[1..]),
        Some("benchmark") => benchmark(&args[1..]),
        Some("ir") => match &args[1..] {
            [file, function] => ir(file, function, None),
            [file, function, flag, n] if flag == "--tier2-threshold" => match n.parse() {
                Ok(n) => ir(file, function, Some(n)),
                Err(_) => usage_error("--tier2-threshold expects a number"),
            },
            _ => usage_error("'ruchydbg ir' takes FILE and FUNCTION [--tier2-threshold N]"),
        },
        Some(other) => usage_error(&format!("unknown command '{other}'")),
    }
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("ruchydbg: {msg}\n\n{USAGE}");
    ExitCode::from(2)
}

fn find<'p>(proto: &'p Proto, name: &str) -> Option<&'p Proto> {
    if &*proto.name == name {
        return Some(proto);
    }
    proto.children.iter().find_map(|c| find(c, name))
}

fn bytecode(file: &str, function: Option<&String>) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("ruchydbg: cannot read {file}: {e}");
            return ExitCode::from(2);
        }
    };
    let options = Options {
        tier: Tier::Vm,
        ..Options::default()
    };
    let mut session = match Session::new(&options, Box::new(std::io::sink())) {
        Ok(s) => s,
        Err(msg) => {
            eprintln!("ruchydbg: {msg}");
            return ExitCode::from(2);
        }
    };
    let proto = match session.compile_bytecode(file, &text) {
        Ok(p) => p,
        Err(err) => {
            eprint!("{}", session.render_error(&err, stderr_wants_color()));
            return ExitCode::from(1);
        }
    };
    let names = |g: u32| session.globals.name(g).to_string();
    let mut out = String::new();
    match function {
        None => disassemble(&proto, &names, &mut out),
        Some(name) => match find(&proto, name) {
            Some(p) => disassemble(p, &names, &mut out),
            None => {
                eprintln!("ruchydbg: {file} has no function named '{name}'");
                return ExitCode::from(1);
            }
        },
    }
    out!("{out}");
    ExitCode::SUCCESS
}

/// Runs `file` in the JIT tier and prints what `function` was compiled to.
fn ir(file: &str, function: &str, tier2_threshold: Option<u64>) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("ruchydbg: cannot read {file}: {e}");
            return ExitCode::from(2);
        }
    };
    let mut options = Options {
        tier: Tier::Jit,
        ..Options::default()
    };
    options.jit.keep_ir = true;
    if let Some(n) = tier2_threshold {
        options.jit.tier2_threshold = n;
    }
    let size = stack::stack_size_for(options.max_depth);
    let (out, status) = stack::run_with_stack(size, move || {
        let mut session = match Session::new(&options, Box::new(std::io::sink())) {
            Ok(s) => s,
            Err(msg) => return (format!("ruchydbg: {msg}\n"), 2),
        };
        let mut out = String::new();
        if let Err(err) = session.run_program(file, &text) {
            out.push_str(&format!(
                "; note: the program stopped with an error:\n{}",
                session.render_error(&err, false)
            ));
        }
        let protos = ruchy_jit::profile::report::all_protos(&session.scripts);
        let found: Vec<_> = protos.iter().filter(|p| &*p.name == function).collect();
        if found.is_empty() {
            return (
                format!("ruchydbg: {file} has no function named '{function}'\n"),
                1,
            );
        }
        for p in found {
            out.push_str(&ruchy_jit::jit::describe_code(p));
        }
        (out, 0)
    });
    out!("{out}");
    ExitCode::from(status)
}

/// Splits `args` into one positional FILE and `--flag [value]` options.
fn parse_flags(
    args: &[String],
    with_value: &[&str],
    switches: &[&str],
) -> Result<(String, Vec<(String, String)>), String> {
    let mut file = None;
    let mut flags = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        if with_value.contains(&name.as_str()) {
            let v = inline
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{name} needs a value"))?;
            flags.push((name, v));
        } else if switches.contains(&name.as_str()) {
            flags.push((name, String::new()));
        } else if name.starts_with('-') {
            return Err(format!("unknown option '{name}'"));
        } else if file.replace(a.clone()).is_some() {
            return Err(format!("unexpected argument '{a}'"));
        }
    }
    Ok((file.ok_or("a FILE is needed")?, flags))
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{flag} expects a number, got '{v}'"))
}

fn read(file: &str) -> Result<String, ExitCode> {
    std::fs::read_to_string(file).map_err(|e| {
        eprintln!("ruchydbg: cannot read {file}: {e}");
        ExitCode::from(2)
    })
}

fn hotspots(args: &[String]) -> ExitCode {
    let parsed = parse_flags(
        args,
        &[
            "--hot-percent",
            "--hot-calls",
            "--stable",
            "--osr-iterations",
            "--tier",
        ],
        &["--json", "--show-output"],
    );
    let (file, flags) = match parsed {
        Ok(p) => p,
        Err(msg) => return usage_error(&msg),
    };
    let mut thresholds = Thresholds::default();
    let mut json = false;
    let mut show_output = false;
    let mut tier = Tier::Auto;
    for (name, v) in &flags {
        let r = match name.as_str() {
            "--tier" => match Tier::parse(v) {
                Some(t @ (Tier::Vm | Tier::Auto)) => {
                    tier = t;
                    Ok(())
                }
                _ => Err(format!("--tier for hotspots is vm or auto, got '{v}'")),
            },
            "--hot-percent" => number(name, v).map(|x| thresholds.hot_percent = x),
            "--hot-calls" => number(name, v).map(|x| thresholds.hot_calls = x),
            "--stable" => number(name, v).map(|x| thresholds.stable = x),
            "--osr-iterations" => number(name, v).map(|x| thresholds.osr_iterations = x),
            "--json" => {
                json = true;
                Ok(())
            }
            _ => {
                show_output = true;
                Ok(())
            }
        };
        if let Err(msg) = r {
            return usage_error(&msg);
        }
    }
    let text = match read(&file) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let options = Options {
        tier,
        timing: true,
        ..Options::default()
    };
    stack::run_with_stack(stack::stack_size_for(options.max_depth), move || {
        let out: Box<dyn std::io::Write> = if show_output {
            Box::new(std::io::stdout())
        } else {
            Box::new(std::io::sink())
        };
        let mut session = match Session::new(&options, out) {
            Ok(s) => s,
            Err(msg) => {
                eprintln!("ruchydbg: {msg}");
                return ExitCode::from(2);
            }
        };
        let result = session.run_program(&file, &text);
        session.flush();
        let mut code = ExitCode::SUCCESS;
        if let Err(err) = &result {
            eprint!("{}", session.render_error(err, stderr_wants_color()));
            eprintln!("(the profile below covers the run up to the error)");
            code = ExitCode::from(1);
        }
        let report = session.profile_report(thresholds);
        if json {
            out!("{}", report.json());
        } else {
            use std::io::IsTerminal;
            let color = std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            out!("{}", report.text(color));
        }
        code
    })
}

struct TierResult {
    tier: Tier,
    runs: Vec<Duration>,
    compile: Vec<Duration>,
    /// Where each function ended (label, tier and why), for the tiers that compile.
    ended: Vec<(String, String)>,
}

fn median(v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    s[s.len() / 2]
}

fn secs(d: Duration) -> String {
    ruchy_jit::profile::report::ms(d)
}

fn benchmark(args: &[String]) -> ExitCode {
    let (file, flags) = match parse_flags(args, &["--tiers", "--runs"], &["--json"]) {
        Ok(p) => p,
        Err(msg) => return usage_error(&msg),
    };
    let mut tiers: Vec<Tier> = [Tier::Ast, Tier::Vm, Tier::Jit, Tier::Auto]
        .into_iter()
        .filter(|t| t.available().is_ok())
        .collect();
    let mut runs = 5usize;
    let mut json = false;
    for (name, v) in &flags {
        match name.as_str() {
            "--tiers" => {
                let mut chosen = Vec::new();
                for t in v.split(',') {
                    match Tier::parse(t) {
                        Some(tier) if tier.available().is_ok() => chosen.push(tier),
                        Some(tier) => {
                            eprintln!("ruchydbg: {}", tier.available().unwrap_err());
                            return ExitCode::from(2);
                        }
                        None => return usage_error(&format!("unknown tier '{t}'")),
                    }
                }
                tiers = chosen;
            }
            "--runs" => match number::<usize>(name, v) {
                Ok(n) if n > 0 => runs = n,
                _ => return usage_error("--runs expects a positive number"),
            },
            _ => json = true,
        }
    }
    let text = match read(&file) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let mut results = Vec::new();
    for tier in tiers {
        let mut r = TierResult {
            tier,
            runs: Vec::new(),
            compile: Vec::new(),
            ended: Vec::new(),
        };
        for i in 0..runs {
            eprint!("\r{} run {}/{} ...   ", tier.name(), i + 1, runs);
            let (name, text) = (file.clone(), text.clone());
            let options = Options {
                tier,
                ..Options::default()
            };
            let outcome =
                stack::run_with_stack(stack::stack_size_for(options.max_depth), move || {
                    let mut session = Session::new(&options, Box::new(std::io::sink()))?;
                    let started = Instant::now();
                    let result = session.run_program(&name, &text);
                    let total = started.elapsed();
                    let ended: Vec<(String, String)> = match session.jit {
                        Some(_) => ruchy_jit::profile::report::all_protos(&session.scripts)
                            .iter()
                            .filter(|p| p.counters.calls.get() > 0)
                            .map(|p| {
                                let label = if p.line == 0 {
                                    "(top level)".to_string()
                                } else {
                                    format!("{}:{}", p.name, p.line)
                                };
                                (label, ruchy_jit::jit::tier_of(p))
                            })
                            .collect(),
                        None => Vec::new(),
                    };
                    match result {
                        Ok(_) => Ok((
                            total.saturating_sub(session.compile_time),
                            session.compile_time,
                            ended,
                        )),
                        Err(e) => Err(session.render_error(&e, false)),
                    }
                });
            match outcome {
                Ok((run, compile, ended)) => {
                    r.runs.push(run);
                    r.compile.push(compile);
                    r.ended = ended;
                }
                Err(msg) => {
                    eprintln!(
                        "\nruchydbg: {file} failed under --tier {}:\n{msg}",
                        tier.name()
                    );
                    return ExitCode::from(1);
                }
            }
        }
        results.push(r);
    }
    eprint!("\r{:40}\r", "");
    let baseline = results
        .iter()
        .find(|r| r.tier == Tier::Ast)
        .map(|r| median(&r.runs));
    if json {
        let rows: Vec<String> = results
            .iter()
            .map(|r| {
                let m = median(&r.runs);
                let ended: Vec<String> = r
                    .ended
                    .iter()
                    .map(|(f, t)| {
                        format!(
                            "{{\"function\":{},\"tier\":{}}}",
                            ruchy_jit::profile::report::json_str(f),
                            ruchy_jit::profile::report::json_str(t)
                        )
                    })
                    .collect();
                format!(
                    "{{\"tier\":\"{}\",\"runs\":{},\"median_s\":{:.6},\"min_s\":{:.6},\"max_s\":{:.6},\"compile_median_s\":{:.6},\"speedup_over_ast\":{},\"functions\":[{}]}}",
                    r.tier.name(),
                    r.runs.len(),
                    m.as_secs_f64(),
                    r.runs.iter().min().copied().unwrap_or_default().as_secs_f64(),
                    r.runs.iter().max().copied().unwrap_or_default().as_secs_f64(),
                    median(&r.compile).as_secs_f64(),
                    baseline.map_or("null".to_string(), |b| format!("{:.3}", b.as_secs_f64() / m.as_secs_f64())),
                    ended.join(",")
                )
            })
            .collect();
        outln!(
            "{{\"file\":{},\"results\":[{}]}}",
            ruchy_jit::profile::report::json_str(&file),
            rows.join(",")
        );
        return ExitCode::SUCCESS;
    }
    outln!(
        "{file}: {runs} run{} per tier (run time excludes compile time)",
        if runs == 1 { "" } else { "s" }
    );
    outln!(
        "  {:<6} {:>10} {:>10} {:>10} {:>10} {:>12}",
        "tier",
        "median",
        "min",
        "max",
        "compile",
        "speed-up"
    );
    for r in &results {
        let m = median(&r.runs);
        outln!(
            "  {:<6} {:>10} {:>10} {:>10} {:>10} {:>12}",
            r.tier.name(),
            secs(m),
            secs(r.runs.iter().min().copied().unwrap_or_default()),
            secs(r.runs.iter().max().copied().unwrap_or_default()),
            secs(median(&r.compile)),
            baseline.map_or("-".to_string(), |b| format!(
                "{:.2}x",
                b.as_secs_f64() / m.as_secs_f64()
            ))
        );
    }
    for r in results.iter().filter(|r| !r.ended.is_empty()) {
        outln!(
            "\nwhere each function ended under --tier {}:",
            r.tier.name()
        );
        for (function, tier) in &r.ended {
            outln!("  {function:<20} {tier}");
        }
    }
    ExitCode::SUCCESS
}
