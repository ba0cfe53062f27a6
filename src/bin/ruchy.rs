//! `ruchy`: run a program, evaluate an expression, or start the REPL.

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use ruchy_jit::error::stderr_wants_color;
use ruchy_jit::session::{Options, Session, Tier};

const USAGE: &str = "\
ruchy - a tiered engine (tree-walker, bytecode VM, Cranelift JIT) for the Ruchy language

USAGE:
    ruchy run FILE [OPTIONS]     run a program (calls main() if it defines it and did not call it)
    ruchy -e CODE [OPTIONS]      evaluate code; prints the final value when it is not nil
    ruchy repl [OPTIONS]         the interactive REPL (also: ruchy with no arguments)
    ruchy --help | --version

OPTIONS:
    --tier ast|vm|jit|auto       which engine runs the code (default: auto: the VM, moving hot
                                 functions and loops to the JIT). jit compiles every function
                                 at its first call
    --jit-threshold N            (auto) calls after which a function is compiled (default 1000)
    --osr-threshold N            (auto) loop iterations after which a running loop moves to
                                 compiled code (default 1000)
    --tier2-threshold N|off      (jit, auto) calls of a function's tier-1 code after which
                                 it is recompiled at tier 2, the optimizing tier (default
                                 10000; 0: tier 2 at once; off: never)
    --deopt-stress N             (jit) every Nth guard in compiled code fails on purpose
    --trace-jit                  print each JIT event (compiled, deopt, blacklisted) on stderr
    --max-depth N                recursion limit in call frames (default: 200000)
    --profile                    time functions and loops; print the hotspot report on stderr
    --no-counters                switch the VM's profile counters off (to measure their cost)

EXIT CODES:
    0 success, 1 program error (syntax or runtime), 2 usage error
";

struct Args {
    command: Command,
    options: Options,
}

enum Command {
    Run(String),
    Eval(String),
    Repl,
    Help,
    Version,
}

fn parse_args(mut argv: Vec<String>) -> Result<Args, String> {
    let mut options = Options::default();
    let mut command = None;
    argv.reverse();
    let mut positional = Vec::new();
    while let Some(arg) = argv.pop() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| argv.pop())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => command = Some(Command::Help),
            "-V" | "--version" => command = Some(Command::Version),
            "-e" | "--eval" => command = Some(Command::Eval(value("-e")?)),
            "--tier" => {
                let t = value("--tier")?;
                options.tier = Tier::parse(&t)
                    .ok_or_else(|| format!("unknown tier '{t}' (expected ast, vm, jit or auto)"))?;
            }
            "--profile" => options.timing = true,
            "--trace-jit" => options.jit.trace = true,
            "--jit-threshold" | "--osr-threshold" => {
                let v = value(&flag)?;
                let n = v
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{flag} expects a positive number, got '{v}'"))?;
                if flag == "--jit-threshold" {
                    options.jit.call_threshold = n;
                } else {
                    options.jit.osr_threshold = n;
                }
            }
            "--tier2-threshold" => {
                let v = value(&flag)?;
                options.jit.tier2_threshold = match v.as_str() {
                    "off" => u64::MAX,
                    _ => v.parse().map_err(|_| {
                        format!("--tier2-threshold expects a number or off, got '{v}'")
                    })?,
                };
            }
            "--deopt-stress" => {
                let v = value("--deopt-stress")?;
                options.jit.deopt_stress = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    format!("--deopt-stress expects a positive number, got '{v}'")
                })?;
            }
            "--no-counters" => options.counters = false,
            "--max-depth" => {
                let v = value("--max-depth")?;
                options.max_depth =
                    v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                        format!("--max-depth expects a positive number, got '{v}'")
                    })?;
            }
            f if f.starts_with('-') && f.len() > 1 => return Err(format!("unknown option '{f}'")),
            _ => positional.push(arg),
        }
    }
    let mut positional = positional.into_iter();
    let command = match (command, positional.next().as_deref()) {
        (Some(c), None) => c,
        (Some(Command::Help), _) => Command::Help,
        (Some(_), Some(extra)) => return Err(format!("unexpected argument '{extra}'")),
        (None, None) | (None, Some("repl")) => Command::Repl,
        (None, Some("run")) => match positional.next() {
            Some(file) => Command::Run(file),
            None => return Err("'ruchy run' needs a FILE".to_string()),
        },
        (None, Some(other)) if other.ends_with(".ruchy") => Command::Run(other.to_string()),
        (None, Some(other)) => return Err(format!("unknown command '{other}'")),
    };
    if let Some(extra) = positional.next() {
        return Err(format!("unexpected argument '{extra}'"));
    }
    Ok(Args { command, options })
}

fn main() -> ExitCode {
    ruchy_jit::alloc::tune();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse_args(argv) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("ruchy: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match args.command {
        Command::Help => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("ruchy {} (ruchy-jit)", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Repl => {
            let stack = ruchy_jit::stack::stack_size_for(args.options.max_depth);
            let options = args.options;
            match ruchy_jit::stack::run_with_stack(stack, move || ruchy_jit::repl::run(options)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(msg) => {
                    eprintln!("ruchy: {msg}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Run(file) => {
            let bytes = match std::fs::read(&file) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("ruchy: cannot read {file}: {e}");
                    return ExitCode::from(2);
                }
            };
            let text = match String::from_utf8(bytes) {
                Ok(t) => t,
                Err(e) => {
                    // A syntax error at the first bad byte (the text before it is intact).
                    let at = e.utf8_error().valid_up_to();
                    let byte = e.as_bytes()[at];
                    let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
                    return run(&args.options, move |s| {
                        let id = s.sources.add(&file, &text);
                        let message = format!("the file is not valid UTF-8 (byte 0x{byte:02x})");
                        Err(ruchy_jit::error::Error::new(
                            ruchy_jit::error::ErrorKind::Syntax(message),
                            ruchy_jit::syntax::source::Span::new(
                                id,
                                at,
                                at + '\u{FFFD}'.len_utf8(),
                            ),
                        ))
                    });
                }
            };
            let profile = args.options.timing;
            run(&args.options, move |s| {
                let result = s.run_program(&file, &text).map(|_| None);
                if profile {
                    let report = s.profile_report(Default::default());
                    eprint!("\n{}", report.text(stderr_wants_color()));
                }
                result
            })
        }
        Command::Eval(code) => run(&args.options, move |s| {
            s.eval("<eval>", &code).map(|v| match v {
                ruchy_jit::value::Value::Nil => None,
                v => Some(v.display().to_string()),
            })
        }),
    }
}

/// Runs the engine on its own big-stack thread; prints the error, if any, after flushing
/// the program's output.
fn run<F>(options: &Options, job: F) -> ExitCode
where
    F: FnOnce(&mut Session) -> Result<Option<String>, ruchy_jit::error::Error> + Send,
{
    let stack = ruchy_jit::stack::stack_size_for(options.max_depth);
    ruchy_jit::stack::run_with_stack(stack, || {
        let out = Box::new(BufWriter::with_capacity(1 << 16, std::io::stdout()));
        let mut session = match Session::new(options, out) {
            Ok(s) => s,
            Err(msg) => {
                eprintln!("ruchy: {msg}");
                return ExitCode::from(2);
            }
        };
        let result = job(&mut session);
        session.flush();
        let code = match result {
            Ok(echo) => {
                if let Some(text) = echo {
                    let mut stdout = std::io::stdout();
                    let _ = writeln!(stdout, "{text}");
                }
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprint!("{}", session.render_error(&err, stderr_wants_color()));
                ExitCode::from(1)
            }
        };
        // The process ends here: dropping the session would release every value, the
        // register stack's million-odd slots included, one by one (0.8 M instructions,
        // two-thirds of a one-line program's run), for the system to take back anyway.
        // Its output is flushed above.
        std::mem::forget(session);
        code
    })
}
