//! The REPL: one long-lived session (definitions, profiles and compiled code accumulate
//! across inputs), with meta-commands that show each tier.
//!
//! Input is read with rustyline on a terminal (history in `~/.ruchy_history`), or line by
//! line from a pipe (no banner, no prompt, the same echo). An input the parser finds
//! unfinished at its end (`fun f(n) {`, `let v = [1,`) waits for more lines.

mod helper;

use std::io::{BufRead, IsTerminal, Write};
use std::time::Instant;

use crate::error::ErrorKind;
use crate::session::{Options, Session};
use crate::value::Value;

/// The meta-commands, with their help lines.
pub(crate) const COMMANDS: &[(&str, &str)] = &[
    (":help", "this list"),
    (":quit", "leave (also Ctrl-D)"),
    (
        ":profile",
        "every function: calls, tier, signatures (:profile on|off|reset)",
    ),
    (
        ":bytecode",
        ":bytecode NAME - the disassembly of a function",
    ),
    (
        ":ir",
        ":ir NAME - the Cranelift IR and machine code it was compiled to",
    ),
    (
        ":deopts",
        "every deopt with line and reason, and the blacklist",
    ),
    (
        ":trace",
        ":trace on|off - a line for each JIT event as it happens",
    ),
    (
        ":memory",
        "resident memory, compiled code size and code-cache flushes",
    ),
    (":vars", "the session's globals and their values"),
    (":type", ":type EXPR - the type of a value"),
    (":time", ":time EXPR - evaluate and print how long it took"),
    (":load", ":load FILE - run a file in this session"),
    (":reset", "forget everything: a fresh session"),
];

pub struct Repl {
    session: Session,
    options: Options,
    color: bool,
}

/// Whether `text` is an unfinished input: the parser (not a count of braces) stopped at
/// its very end.
fn unfinished(text: &str) -> bool {
    let mut sources = crate::syntax::source::SourceMap::default();
    let id = sources.add("<input>", text);
    match crate::syntax::parser::parse_program(text, id, "<input>") {
        Err(e) => {
            matches!(e.kind, ErrorKind::Syntax(_)) && e.span.lo as usize >= text.trim_end().len()
        }
        Ok(_) => false,
    }
}

impl Repl {
    pub fn new(mut options: Options) -> Result<Repl, String> {
        options.jit.keep_ir = true;
        // A one-line notice when something compiles mid-session (`:trace off` silences it).
        options.jit.trace = true;
        let session = Session::new(&options, Box::new(std::io::stdout()))?;
        Ok(Repl {
            session,
            options,
            color: std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        })
    }

    /// Evaluates one complete input (code or a meta-command); returns false to leave.
    pub fn input(&mut self, text: &str) -> bool {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return true;
        }
        if trimmed.starts_with(':') {
            return self.command(trimmed);
        }
        self.eval(text);
        true
    }

    fn eval(&mut self, text: &str) {
        self.session.limits.clear_interrupt();
        match self.session.eval("<repl>", text) {
            Ok(Value::Nil) => {}
            Ok(v) => println!("{}", v.display()),
            Err(e) if e.kind == ErrorKind::Interrupted => {
                self.session.flush();
                eprintln!("Interrupted");
            }
            Err(e) => self.error(&e),
        }
        let _ = std::io::stdout().flush();
    }

    fn error(&mut self, e: &crate::error::Error) {
        self.session.flush();
        eprint!("{}", self.session.render_error(e, self.color));
    }

    fn command(&mut self, line: &str) -> bool {
        let (name, arg) = match line.split_once(char::is_whitespace) {
            Some((n, a)) => (n, a.trim()),
            None => (line, ""),
        };
        match name {
            ":quit" | ":q" | ":exit" => return false,
            ":help" | ":h" => {
                for (c, help) in COMMANDS {
                    println!("  {c:<10} {help}");
                }
            }
            ":profile" => match arg {
                "on" => {
                    self.session.timing = true;
                    println!("timing on");
                }
                "off" => {
                    self.session.timing = false;
                    println!("timing off");
                }
                "reset" => {
                    self.session.reset_profile();
                    println!("profile reset");
                }
                _ => {
                    let mut report = self.session.profile_report(Default::default());
                    // Each input is a top level of its own: only functions are of interest.
                    report.functions.retain(|f| f.line != 0);
                    print!("{}", report.text(self.color));
                }
            },
            ":bytecode" => match self.function(arg) {
                Some(p) => {
                    let names = |g: u32| self.session.globals.name(g).to_string();
                    let mut out = String::new();
                    crate::bytecode::op::disassemble(&p, &names, &mut out);
                    print!("{out}");
                }
                None => self.no_function(arg),
            },
            ":ir" => self.ir(arg),
            ":tiers" => {
                let (name, args) = match arg.split_once(char::is_whitespace) {
                    Some((n, a)) => (n, Some(a.trim())),
                    None => (arg, None),
                };
                match self.function(name) {
                    Some(p) => {
                        self.tiers(&p);
                        if let Some(args) = args {
                            self.time_tiers(name, args);
                        }
                    }
                    None => self.no_function(name),
                }
            }
            ":deopts" => self.deopts(),
            ":memory" => self.memory(),
            ":trace" => match (arg, &mut self.session.jit) {
                ("on" | "off", Some(jit)) => {
                    jit.options.trace = arg == "on";
                    println!("JIT trace {arg}");
                }
                (_, None) => println!("the JIT is off in this tier"),
                _ => println!("usage: :trace on|off"),
            },
            ":vars" => {
                let builtins: Vec<&str> = crate::builtins::Builtin::ALL
                    .iter()
                    .map(|b| b.name())
                    .collect();
                for name in self.session.globals.defined_names() {
                    if builtins.contains(&&*name) {
                        continue;
                    }
                    let id = self.session.globals.lookup(&name).expect("defined");
                    if let Some(v) = self.session.globals.get(id) {
                        println!("  {name} = {}", v.display());
                    }
                }
            }
            ":type" | ":time" if arg.is_empty() => println!("usage: {name} EXPR"),
            ":type" => match self.session.eval("<repl>", arg) {
                Ok(v) => println!("{}", v.type_of().name()),
                Err(e) => self.error(&e),
            },
            ":time" => {
                let started = Instant::now();
                self.eval(arg);
                println!("({:.3} ms)", started.elapsed().as_secs_f64() * 1e3);
            }
            ":load" => match std::fs::read_to_string(arg) {
                Ok(text) => {
                    if let Err(e) = self.session.run_program(arg, &text) {
                        self.error(&e);
                    }
                    self.session.flush();
                }
                Err(e) => println!("cannot read {arg}: {e}"),
            },
            ":reset" => match Session::new(&self.options, Box::new(std::io::stdout())) {
                Ok(s) => {
                    self.session = s;
                    println!("a fresh session");
                }
                Err(msg) => println!("{msg}"),
            },
            other => {
                let prefixed = COMMANDS.iter().find(|(c, _)| c.starts_with(other));
                let nearest = match prefixed {
                    Some((c, _)) => *c,
                    None => COMMANDS
                        .iter()
                        .map(|(c, _)| (distance(other, c), *c))
                        .min()
                        .map_or(":help", |(_, c)| c),
                };
                println!("unknown command {other}; did you mean {nearest}? (:help lists them)");
            }
        }
        let _ = std::io::stdout().flush();
        true
    }

    /// `:ir NAME [TYPES]`: what NAME was compiled to; with TYPES, compile it for them first.
    fn ir(&mut self, arg: &str) {
        let (name, types) = match arg.split_once(char::is_whitespace) {
            Some((n, t)) => (n, Some(t.trim())),
            None => (arg, None),
        };
        let Some(proto) = self.function(name) else {
            return self.no_function(name);
        };
        if let Some(types) = types {
            let parsed: Option<Vec<crate::value::Type>> = types
                .split(',')
                .filter(|t| !t.trim().is_empty())
                .map(|t| {
                    crate::value::Type::ALL
                        .into_iter()
                        .find(|ty| ty.short_name() == t.trim())
                })
                .collect();
            let key = parsed.as_deref().and_then(crate::profile::key_of_types);
            let closure = self.session.globals.lookup(name).and_then(|id| {
                match self.session.globals.get(id) {
                    Some(Value::Func(c)) => Some(c.clone()),
                    _ => None,
                }
            });
            match (key, closure, &mut self.session.jit) {
                (None, _, _) => {
                    return println!(
                        "unknown types '{types}' (int, float, bool, string, array, ...)"
                    )
                }
                (_, None, _) => return println!("'{name}' is not a global function"),
                (_, _, None) => return println!("the JIT is off in this tier"),
                (Some(key), Some(closure), Some(jit)) => {
                    if proto.jit.entry(key).is_none() {
                        if let Err(reason) = jit.compile(&closure, key, &self.session.globals) {
                            println!("not compiled: {reason}");
                        }
                    }
                }
            }
        } else if proto.jit.entries().is_empty() {
            let sig = proto
                .counters
                .signatures()
                .first()
                .map(|s| crate::profile::signature_text(s.0))
                .unwrap_or_else(|| "(int)".into());
            let types = sig.trim_matches(|c| c == '(' || c == ')').replace(' ', "");
            println!("{name} is not compiled yet; `:ir {name} {types}` compiles it for {sig} now");
        }
        print!("{}", crate::jit::describe_code(&proto));
    }

    /// `:tiers NAME`: one function in each tier.
    fn tiers(&self, proto: &crate::bytecode::proto::Proto) {
        let name = &proto.name;
        println!("{name}:");
        println!(
            "  vm     {} bytecode instructions, {} registers; {} calls counted",
            proto.code.len(),
            proto.num_regs,
            proto.counters.calls.get()
        );
        let entries = proto.jit.entries();
        if entries.is_empty() {
            println!("  jit    not compiled: {}", crate::jit::tier_of(proto));
        }
        for e in entries {
            let tier = match e.tier {
                2 => format!(
                    " at tier 2 ({} self-calls inlined{})",
                    e.inlined,
                    match e.accumulated_lines.len() {
                        0 => String::new(),
                        n => format!(", {n} turned into a loop"),
                    }
                ),
                _ => String::new(),
            };
            println!(
                "  jit    {name}{}{tier}: {} bytes of machine code, compiled in {} us, returns {}",
                e.signature,
                e.code_bytes,
                e.compile_time.as_micros(),
                e.returns.name()
            );
        }
        println!("  where it ended: {}", crate::jit::tier_of(proto));
    }

    /// Times the call `name(args)` in the VM alone and with compiled code (compiled for
    /// the arguments' types first).
    fn time_tiers(&mut self, name: &str, args: &str) {
        let call = format!("{name}({args})");
        let jit = self.session.jit.take();
        let started = Instant::now();
        let in_vm = self.session.eval("<tiers>", &call);
        let vm_time = started.elapsed();
        self.session.jit = jit;
        if let Err(e) = in_vm {
            return self.error(&e);
        }
        println!("  vm     {call} took {:.3} ms", vm_time.as_secs_f64() * 1e3);
        if self.session.jit.is_none() {
            return println!("  jit    off in this tier");
        }
        let values = match self.session.eval("<tiers>", &format!("[{args}]")) {
            Ok(Value::Array(values)) => values,
            _ => return,
        };
        let types: Vec<crate::value::Type> = values.iter().map(Value::type_of).collect();
        let closure =
            self.session
                .globals
                .lookup(name)
                .and_then(|id| match self.session.globals.get(id) {
                    Some(Value::Func(c)) => Some(c.clone()),
                    _ => None,
                });
        if let (Some(key), Some(closure)) = (crate::profile::key_of_types(&types), closure) {
            let crate::function::Code::Bytecode(proto) = &closure.code else {
                return;
            };
            let jit = self.session.jit.as_mut().expect("checked above");
            if proto.jit.entry(key).is_none() && !proto.jit.blacklisted.get() {
                if let Err(reason) = jit.compile(&closure, key, &self.session.globals) {
                    return println!("  jit    not compiled: {reason}");
                }
            }
        }
        let started = Instant::now();
        let compiled = self.session.eval("<tiers>", &call);
        let jit_time = started.elapsed();
        if let Err(e) = compiled {
            return self.error(&e);
        }
        println!(
            "  jit    {call} took {:.3} ms ({:.1}x the VM's speed)",
            jit_time.as_secs_f64() * 1e3,
            vm_time.as_secs_f64() / jit_time.as_secs_f64().max(1e-9)
        );
    }

    /// The session's global names (builtins included), for completion.
    fn names(&self) -> Vec<String> {
        self.session
            .globals
            .defined_names()
            .map(|n| n.to_string())
            .collect()
    }

    /// The most recent definition of a function named `name`.
    fn function(&self, name: &str) -> Option<std::rc::Rc<crate::bytecode::proto::Proto>> {
        crate::profile::report::all_protos(&self.session.scripts)
            .into_iter()
            .rev()
            .find(|p| &*p.name == name)
    }

    fn no_function(&self, name: &str) {
        if name.is_empty() {
            println!("usage: give a function's name");
        } else {
            println!("no function named '{name}' has run in this session yet");
        }
    }

    fn memory(&self) {
        match resident_bytes() {
            Some(bytes) => println!("resident memory: {}", size(bytes)),
            None => println!("resident memory: not known on this system"),
        }
        match &self.session.jit {
            Some(jit) => {
                let stats = jit.code_stats();
                println!(
                    "compiled code: {} versions of {} functions, {} of machine code; the JIT module holds about {}",
                    stats.versions,
                    stats.functions,
                    size(stats.code_bytes),
                    size(stats.module_bytes)
                );
                println!(
                    "code cache: flushed when over {}, {} flush(es) so far",
                    size(crate::jit::CODE_CACHE_BUDGET),
                    stats.flushes
                );
            }
            None => println!("compiled code: none (the JIT is off in this tier)"),
        }
        println!("scripts kept: {}", self.session.scripts.len());
    }

    fn deopts(&self) {
        let Some(jit) = &self.session.jit else {
            println!("the JIT is off in this tier");
            return;
        };
        let mut any = false;
        for e in &jit.events {
            if matches!(
                e.kind,
                crate::jit::EventKind::Deopt { .. } | crate::jit::EventKind::Blacklisted { .. }
            ) {
                println!("{e}");
                any = true;
            }
        }
        if !any {
            println!("no deopts so far");
        }
    }
}

/// The process's resident set size, from `/proc/self/statm` (Linux).
fn resident_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn size(bytes: usize) -> String {
    match bytes {
        b if b < 10 << 10 => format!("{b} bytes"),
        b if b < 10 << 20 => format!("{:.1} KB", b as f64 / 1024.0),
        b => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
    }
}

/// Edit distance, for suggesting the nearest command.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Runs the REPL on stdin until `:quit` or end of input.
pub fn run(options: Options) -> Result<(), String> {
    let mut repl = Repl::new(options)?;
    if std::io::stdin().is_terminal() {
        interactive(&mut repl)
    } else {
        piped(&mut repl);
        Ok(())
    }
}

/// Ctrl-C while code runs stops it: the engine polls the flag. (At the prompt the terminal
/// is in raw mode and rustyline reports Ctrl-C as an interrupted read instead.) Installed
/// after rustyline's editor, which sets a SIGINT handler of its own when it is made.
fn handle_ctrl_c(repl: &Repl) {
    let flag = repl.session.limits.interrupt.clone();
    let _ = ctrlc::set_handler(move || crate::limits::request_interrupt(&flag));
}

fn piped(repl: &mut Repl) {
    handle_ctrl_c(repl);
    let mut buffer = String::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        buffer.push_str(&line);
        buffer.push('\n');
        if !buffer.trim_start().starts_with(':') && unfinished(&buffer) {
            continue;
        }
        let text = std::mem::take(&mut buffer);
        if !repl.input(&text) {
            return;
        }
    }
    if !buffer.trim().is_empty() {
        repl.input(&buffer);
    }
}

fn interactive(repl: &mut Repl) -> Result<(), String> {
    use rustyline::error::ReadlineError;
    let mut editor: rustyline::Editor<helper::ReplHelper, rustyline::history::DefaultHistory> =
        rustyline::Editor::new().map_err(|e| e.to_string())?;
    editor.set_helper(Some(helper::ReplHelper {
        names: repl.names(),
        color: repl.color,
    }));
    handle_ctrl_c(repl);
    let history =
        std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".ruchy_history"));
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    println!(
        "ruchy {} (ruchy-jit) - tier {}: code starts in the VM; hot functions and loops are compiled. :help for commands",
        env!("CARGO_PKG_VERSION"),
        repl.options.tier.name()
    );
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            "ruchy> "
        } else {
            "...    "
        };
        match editor.readline(prompt) {
            Ok(line) => {
                buffer.push_str(&line);
                buffer.push('\n');
                if !buffer.trim_start().starts_with(':') && unfinished(&buffer) {
                    continue;
                }
                let text = std::mem::take(&mut buffer);
                let _ = editor.add_history_entry(text.trim_end());
                if !repl.input(&text) {
                    break;
                }
                let names = repl.names();
                if let Some(h) = editor.helper_mut() {
                    h.names = names;
                }
            }
            Err(ReadlineError::Interrupted) => buffer.clear(),
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.to_string()),
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    Ok(())
}
