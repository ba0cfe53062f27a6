//! The engine facade: one `Session` owns everything that lives across inputs (sources,
//! globals, limits, output). `ruchy run`, `ruchy -e`, the REPL and `ruchydbg` all go
//! through it; none of them evaluates anything itself.

use std::io::Write;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::bytecode::compile::compile_script;
use crate::bytecode::proto::Proto;
use crate::error::Error;
use crate::globals::Globals;
use crate::interp::Interp;
use crate::jit::{Jit, JitOptions};
use crate::limits::Limits;
use crate::profile::report::{all_protos, Report, Thresholds};
use crate::syntax::ast::Function;
use crate::syntax::parser::parse_program;
use crate::syntax::resolve::{defines_main, resolve_program, script_calls_main};
use crate::syntax::source::SourceMap;
use crate::value::Value;
use crate::vm::Vm;

/// Which engine runs the code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// The tree-walking interpreter (the reference semantics).
    Ast,
    /// The bytecode VM.
    Vm,
    /// Every function compiled by the JIT at its first call.
    Jit,
    /// The VM with hot functions and loops moved to the JIT.
    Auto,
}

impl Tier {
    pub fn parse(s: &str) -> Option<Tier> {
        Some(match s {
            "ast" | "interp" => Tier::Ast,
            "vm" => Tier::Vm,
            "jit" => Tier::Jit,
            "auto" => Tier::Auto,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Tier::Ast => "ast",
            Tier::Vm => "vm",
            Tier::Jit => "jit",
            Tier::Auto => "auto",
        }
    }

    /// The tiers built so far; asking for another one is a usage error that says so.
    pub fn available(self) -> Result<(), String> {
        match self {
            Tier::Ast | Tier::Vm | Tier::Jit | Tier::Auto => Ok(()),
        }
    }

    /// The tier used when none is asked for.
    pub fn default_tier() -> Tier {
        Tier::Auto
    }
}

#[derive(Clone)]
pub struct Options {
    pub tier: Tier,
    pub max_depth: usize,
    /// The VM's profile counters (on unless measuring what they cost).
    pub counters: bool,
    /// Timing of functions and loops (`--profile`).
    pub timing: bool,
    pub jit: JitOptions,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tier: Tier::default_tier(),
            max_depth: crate::limits::DEFAULT_MAX_DEPTH,
            counters: true,
            timing: false,
            jit: JitOptions {
                call_threshold: crate::jit::DEFAULT_CALL_THRESHOLD,
                osr_threshold: crate::jit::DEFAULT_OSR_THRESHOLD,
                ..JitOptions::default()
            },
        }
    }
}

/// Scripts (REPL inputs) kept for their profiles even when nothing refers to them.
const KEEP_RECENT_SCRIPTS: usize = 32;

pub struct Session {
    pub sources: SourceMap,
    pub globals: Globals,
    pub limits: Limits,
    pub tier: Tier,
    /// Every script compiled to bytecode in this session, for profiles and disassembly.
    pub scripts: Vec<Rc<Proto>>,
    pub counters: bool,
    pub timing: bool,
    /// Wall time spent running code while timing was on.
    pub run_time: Duration,
    /// Time spent compiling (lexing, parsing, resolving, bytecode), always measured, so
    /// benchmarks can keep it apart from run time.
    pub compile_time: Duration,
    /// The JIT (one module for the whole session), for the tiers that compile.
    pub jit: Option<Jit>,
    /// The VM's register stack, kept across inputs: a VM is made per input, and the stack's
    /// initialized part (with its register window, see `vm::REG_WINDOW`) is reused.
    vm_stack: crate::alloc::RegisterStack,
    out: Box<dyn Write>,
}

impl Session {
    pub fn new(options: &Options, out: Box<dyn Write>) -> Result<Session, String> {
        options.tier.available()?;
        let limits = Limits {
            max_depth: options.max_depth,
            ..Limits::default()
        };
        let jit = match options.tier {
            Tier::Jit => {
                let jit_options = JitOptions {
                    call_threshold: 0,
                    osr_threshold: 0,
                    ..options.jit.clone()
                };
                Some(Jit::new(jit_options, &limits)?)
            }
            Tier::Auto => Some(Jit::new(options.jit.clone(), &limits)?),
            Tier::Ast | Tier::Vm => None,
        };
        Ok(Session {
            sources: SourceMap::default(),
            globals: Globals::new(),
            limits,
            jit,
            tier: options.tier,
            scripts: Vec::new(),
            counters: options.counters,
            timing: options.timing,
            run_time: Duration::ZERO,
            compile_time: Duration::ZERO,
            vm_stack: crate::vm::new_stack(),
            out,
        })
    }

    /// Lexes, parses and resolves one source into a script function.
    pub fn compile(&mut self, name: &str, text: &str) -> Result<Rc<Function>, Error> {
        let started = Instant::now();
        let id = self.sources.add(name, text);
        let mut script = parse_program(text, id, name)?;
        resolve_program(&mut script, &mut self.globals)?;
        self.compile_time += started.elapsed();
        Ok(Rc::new(script))
    }

    /// Compiles one source to bytecode (for `ruchydbg bytecode` and the REPL's `:bytecode`).
    pub fn compile_bytecode(&mut self, name: &str, text: &str) -> Result<Rc<Proto>, Error> {
        let script = self.compile(name, text)?;
        compile_script(&script, &self.sources)
    }

    /// Evaluates one source (a program or a REPL input); returns its value.
    pub fn eval(&mut self, name: &str, text: &str) -> Result<Value, Error> {
        let script = self.compile(name, text)?;
        self.run_script(&script)
    }

    fn run_script(&mut self, script: &Rc<Function>) -> Result<Value, Error> {
        let result = match self.tier {
            Tier::Ast => {
                let mut interp = Interp::new(&mut self.globals, &mut *self.out, &self.limits);
                interp.run_script(script)
            }
            _ => {
                let started = Instant::now();
                let proto = compile_script(script, &self.sources)?;
                self.compile_time += started.elapsed();
                self.scripts.push(proto.clone());
                self.prune_scripts();
                if let Some(jit) = &mut self.jit {
                    // No VM exists between inputs, so no compiled code is running: the
                    // one moment the code cache can be flushed. (If a fresh module cannot
                    // be made, the old one stays and keeps working.)
                    if jit.over_budget() {
                        let _ = jit.flush_code_cache();
                    }
                }
                let started = Instant::now();
                let mut vm = Vm::new(
                    &mut self.globals,
                    &mut *self.out,
                    &self.limits,
                    &mut self.vm_stack,
                );
                vm.set_counting(self.counters);
                vm.set_timing(self.timing);
                if let Some(jit) = &mut self.jit {
                    vm.set_jit(jit);
                }
                let result = vm.run_script(&proto);
                if self.timing {
                    self.run_time += started.elapsed();
                }
                result
            }
        };
        self.flush();
        result
    }

    /// Forgets scripts that nothing refers to any more (every function they defined was
    /// redefined or dropped), except the most recent ones, so that a long REPL session's
    /// memory is bounded by what it still uses. Their profiles go with them.
    fn prune_scripts(&mut self) {
        fn in_use(p: &Rc<Proto>) -> bool {
            p.children
                .iter()
                .any(|c| Rc::strong_count(c) > 1 || in_use(c))
        }
        if self.scripts.len() <= KEEP_RECENT_SCRIPTS {
            return;
        }
        let recent = self.scripts.len() - KEEP_RECENT_SCRIPTS;
        let mut index = 0;
        self.scripts.retain(|s| {
            index += 1;
            index > recent || in_use(s)
        });
    }

    /// Calls a function value (the program's `main`) in the session's tier.
    fn call(&mut self, f: &Value, span: crate::syntax::source::Span) -> Result<Value, Error> {
        let result = match self.tier {
            Tier::Ast => {
                let mut interp = Interp::new(&mut self.globals, &mut *self.out, &self.limits);
                interp.call_value_with(f, Vec::new(), span)
            }
            _ => {
                let started = Instant::now();
                let mut vm = Vm::new(
                    &mut self.globals,
                    &mut *self.out,
                    &self.limits,
                    &mut self.vm_stack,
                );
                vm.set_counting(self.counters);
                vm.set_timing(self.timing);
                if let Some(jit) = &mut self.jit {
                    vm.set_jit(jit);
                }
                let result = vm.call_value(f, Vec::new(), span);
                if self.timing {
                    self.run_time += started.elapsed();
                }
                result
            }
        };
        self.flush();
        result
    }

    /// Runs a program file: its top level, then `main()` once if the file defines `main`
    /// and its top level did not call it.
    pub fn run_program(&mut self, name: &str, text: &str) -> Result<Value, Error> {
        let script = self.compile(name, text)?;
        let value = self.run_script(&script)?;
        if defines_main(&script) && !script_calls_main(&script) {
            let id = self.globals.lookup("main").expect("main was interned");
            if let Some(main) = self.globals.get(id).cloned() {
                return self.call(&main, script.span);
            }
        }
        Ok(value)
    }

    /// The profile of everything run so far in this session.
    pub fn profile_report(&self, thresholds: Thresholds) -> Report {
        Report::build(
            &self.scripts,
            self.timing,
            self.run_time,
            thresholds,
            self.jit.is_some(),
        )
    }

    /// Forgets every count and time gathered so far.
    pub fn reset_profile(&mut self) {
        for p in all_protos(&self.scripts) {
            p.counters.reset();
        }
        self.run_time = Duration::ZERO;
    }

    pub fn render_error(&self, err: &Error, color: bool) -> String {
        err.render(&self.sources, color)
    }

    pub fn flush(&mut self) {
        let _ = self.out.flush();
    }
}
