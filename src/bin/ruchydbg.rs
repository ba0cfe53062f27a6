//! `ruchydbg`: look inside the engine.

use std::process::ExitCode;

use ruchy_jit::bytecode::op::disassemble;
use ruchy_jit::bytecode::proto::Proto;
use ruchy_jit::error::stderr_wants_color;
use ruchy_jit::session::{Options, Session, Tier};

const USAGE: &str = "\
ruchydbg - look inside the ruchy-jit engine

USAGE:
    ruchydbg bytecode FILE [FUNCTION]   disassemble every function of FILE (or one)
    ruchydbg --help | --version

Not built yet (they come with the profiler and the JIT): hotspots, benchmark, ir.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            if args.is_empty() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            }
        }
        Some("-V" | "--version") => {
            println!("ruchydbg {} (ruchy-jit)", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some("bytecode") => match &args[1..] {
            [file] => bytecode(file, None),
            [file, function] => bytecode(file, Some(function)),
            _ => usage_error("'ruchydbg bytecode' takes FILE and an optional FUNCTION"),
        },
        Some(cmd @ ("hotspots" | "benchmark" | "ir")) => {
            eprintln!(
                "ruchydbg: '{cmd}' is not built yet (it comes with the profiler and the JIT)"
            );
            ExitCode::from(2)
        }
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
    print!("{out}");
    ExitCode::SUCCESS
}
