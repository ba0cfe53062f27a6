//! Tier 1: the Cranelift JIT. Compiles a function's bytecode for one argument signature
//! (`infer` types the registers, `translate` emits the IR, `runtime` is the boundary with
//! Rust), keeps the code per (function, signature) in a code table inside each `Proto`,
//! and logs every event (compiled, deopt, blacklisted) for `--trace-jit`, the REPL and
//! `ruchydbg`.

pub mod code;
pub mod infer;
pub mod range;
pub mod runtime;
pub mod translate;

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::rc::{Rc, Weak};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cranelift_codegen::ir::types::I64;
use cranelift_codegen::ir::{AbiParam, InstBuilder, MemFlagsData, Signature, UserFuncName};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, FuncId, Linkage, Module};

use crate::bytecode::op::Op;
use crate::bytecode::proto::Proto;
use crate::function::{Closure, Code};
use crate::globals::Globals;
use crate::limits::Limits;
use crate::profile::{signature_text, signature_types, SigKey};
use crate::value::Value;
pub use code::{describe_code, tier_of, CodeEntry, FunctionJit};
use infer::{Callee, Env, Liveness, Plan, Ty, Types};
use translate::{
    body_signature, Analysis, CallTarget, FastCallSite, HelperRefs, Settings, Translator,
};

/// The default `--jit-threshold` and `--osr-threshold` of `--tier auto`.
pub const DEFAULT_CALL_THRESHOLD: u64 = 1000;
pub const DEFAULT_OSR_THRESHOLD: u64 = 1000;
/// The default `--tier2-threshold`: calls of tier-1 code before tier 2.
pub const DEFAULT_TIER2_THRESHOLD: u64 = 10_000;

/// Levels of direct self-calls tier 2 translates inline (bounded unrolling of
/// self-recursion): fib's body is then emitted 1 + 2 + 4 = 7 times, measured fastest
/// (0: 90 ms for fib(35), 1: 60 ms, 2: 50 ms, 3: 50 ms and twice the code).
pub const TIER2_UNROLL: usize = 2;
/// The longest callee (in bytecode instructions) translated inline into its caller.
pub const INLINE_MAX_OPS: usize = 40;

impl Default for JitOptions {
    /// `--tier jit`: everything compiled at its first call, no OSR needed.
    fn default() -> Self {
        JitOptions {
            call_threshold: 0,
            osr_threshold: 0,
            deopt_stress: 0,
            keep_ir: false,
            trace: false,
            tier2_threshold: DEFAULT_TIER2_THRESHOLD,
        }
    }
}

/// Deopts a function may have; one more blacklists it.
pub const MAX_DEOPTS: u32 = 3;

#[derive(Clone, Debug)]
pub struct JitOptions {
    /// Calls after which a function is compiled (0: at its first call, `--tier jit`).
    pub call_threshold: u64,
    /// Back edges after which a running loop is entered in compiled code (0: never).
    pub osr_threshold: u64,
    /// Every Nth guard fails on purpose (0: off).
    pub deopt_stress: u32,
    /// Keep the IR text of each compiled function (for `ruchydbg ir` and `:ir`).
    pub keep_ir: bool,
    /// Print each event to stderr as it happens.
    pub trace: bool,
    /// Calls of a function's tier-1 code (per signature) after which it is compiled at
    /// tier 2; 0 compiles tier 2 at once, `u64::MAX` never.
    pub tier2_threshold: u64,
}

#[derive(Clone, Debug)]
pub enum EventKind {
    Compiled {
        signature: String,
        time: Duration,
        bytes: usize,
        /// 1, or 2 for the optimizing tier.
        tier: u8,
        /// Self-calls translated inline (tier 2).
        inlined: usize,
        /// Other callees translated inline: (name, line of the call).
        inlined_callees: Vec<(String, u32)>,
    },
    Deopt {
        line: u32,
        reason: String,
        count: u32,
    },
    Blacklisted {
        deopts: u32,
    },
    NotCompiled {
        signature: String,
        reason: String,
    },
    /// A loop entered in compiled code mid-run.
    Osr {
        line: u32,
        iterations: u64,
    },
    CompiledOsr {
        line: u32,
        time: Duration,
        bytes: usize,
        inlined_callees: Vec<(String, u32)>,
    },
    /// All compiled code dropped and its module freed (see `Jit::flush_code_cache`).
    Flushed {
        versions: usize,
        bytes: usize,
    },
}

#[derive(Clone, Debug)]
pub struct Event {
    pub function: String,
    pub kind: EventKind,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let name = &self.function;
        match &self.kind {
            EventKind::Compiled {
                signature,
                time,
                bytes,
                tier: 1,
                ..
            } => write!(
                f,
                "[jit] compiled {name}{signature} in {} us, {bytes} bytes",
                time.as_micros()
            ),
            EventKind::Compiled {
                signature,
                time,
                bytes,
                inlined,
                ..
            } => write!(
                f,
                "[jit] compiled {name}{signature} at tier 2 ({inlined} self-calls inlined) in {} us, {bytes} bytes",
                time.as_micros()
            ),
            EventKind::Deopt {
                line,
                reason,
                count,
            } if *count <= MAX_DEOPTS => write!(
                f,
                "[jit] deopt {name} at line {line}: {reason} (deopt {count} of {MAX_DEOPTS})"
            ),
            EventKind::Deopt {
                line,
                reason,
                count,
            } => write!(
                f,
                "[jit] deopt {name} at line {line}: {reason} (deopt {count}, over the limit of {MAX_DEOPTS})"
            ),
            EventKind::Blacklisted { deopts } => {
                write!(f, "[jit] blacklisted {name} after {deopts} deopts")
            }
            EventKind::NotCompiled { signature, reason } => {
                write!(f, "[jit] not compiled {name}{signature}: {reason}")
            }
            EventKind::Osr { line, iterations } => write!(
                f,
                "[jit] OSR into {name} at line {line} after {iterations} iterations"
            ),
            EventKind::Flushed { versions, bytes } => write!(
                f,
                "[jit] code cache flushed: {versions} compiled versions dropped, about {} KB freed",
                bytes / 1024
            ),
            EventKind::CompiledOsr {
                line, time, bytes, ..
            } => write!(
                f,
                "[jit] compiled {name} (OSR entry at line {line}) in {} us, {bytes} bytes",
                time.as_micros()
            ),
        }?;
        match &self.kind {
            EventKind::Compiled {
                inlined_callees, ..
            }
            | EventKind::CompiledOsr {
                inlined_callees, ..
            } if !inlined_callees.is_empty() => {
                write!(f, "; inlined {}", inlined_text(inlined_callees))
            }
            _ => Ok(()),
        }
    }
}

/// "poly (line 12), scaled (line 12)": callees translated inline, with the line of each call.
pub fn inlined_text(callees: &[(String, u32)]) -> String {
    let parts: Vec<String> = callees
        .iter()
        .map(|(name, line)| format!("{name} (line {line})"))
        .collect();
    parts.join(", ")
}

const HELPERS: usize = 11;

pub struct Jit {
    module: JITModule,
    ctx: Context,
    builder_ctx: FunctionBuilderContext,
    helper_ids: [FuncId; HELPERS],
    pub options: JitOptions,
    pub events: Vec<Event>,
    max_depth: usize,
    interrupt: Arc<AtomicBool>,
    globals_in_place: bool,
    /// Machine code bytes compiled so far.
    pub code_bytes: usize,
    /// Every function given code since the last flush (see `flush_code_cache`).
    compiled: Vec<Weak<Proto>>,
    /// About how much memory the module holds since the last flush: each compile finalizes
    /// on fresh pages, and the kept IR text counts too.
    module_bytes: usize,
    /// Code-cache flushes so far.
    pub flushes: u32,
    /// Whether a `Vm` holds this JIT (then compiled code may be on the native stack, and
    /// the code must not be freed).
    pub(crate) vm_attached: bool,
    /// Where arrays keep their parts, measured once (`runtime::ArrayLayout::probe`).
    array_layout: Option<runtime::ArrayLayout>,
}

/// When the module's memory passes this, the next flush point (a REPL input, or any
/// `Session::eval`) drops all compiled code and frees the module: functions compile again
/// when hot. Cranelift cannot free one function's code, so this is what bounds the memory
/// of a long session that keeps redefining functions.
pub const CODE_CACHE_BUDGET: usize = 32 << 20;

/// Events kept for `:deopts` and the tests (the older half goes when full).
const MAX_EVENTS: usize = 10_000;

/// The page size compiled code is finalized on (each compile starts a new page).
const CODE_PAGE: usize = 4096;

/// What the JIT holds now, for the REPL's `:memory`.
pub struct CodeStats {
    pub functions: usize,
    pub versions: usize,
    pub code_bytes: usize,
    pub module_bytes: usize,
    pub flushes: u32,
}

/// The event of a compiled version (tier 1 or 2).
fn compiled_event(code: &CodeEntry) -> EventKind {
    EventKind::Compiled {
        signature: code.signature.clone(),
        time: code.compile_time,
        bytes: code.code_bytes,
        tier: code.tier,
        inlined: code.inlined,
        inlined_callees: code.inlined_callees.clone(),
    }
}

/// The reason a function is left to the VM, if it cannot be compiled at all.
pub fn unsupported(proto: &Proto) -> Option<String> {
    if proto.num_cells > 0 || !proto.captured_params.is_empty() {
        return Some("it has variables captured by closures (kept in the VM)".into());
    }
    if proto.code.len() > 50_000 {
        return Some("it is too long (over 50000 instructions)".into());
    }
    None
}

impl Jit {
    pub fn new(options: JitOptions, limits: &Limits) -> Result<Jit, String> {
        let (module, helper_ids) = build_module()?;
        let ctx = module.make_context();
        Ok(Jit {
            module,
            ctx,
            builder_ctx: FunctionBuilderContext::new(),
            helper_ids,
            options,
            events: Vec::new(),
            max_depth: limits.max_depth,
            interrupt: limits.interrupt.clone(),
            globals_in_place: Globals::layout_is_value(),
            code_bytes: 0,
            compiled: Vec::new(),
            module_bytes: 0,
            flushes: 0,
            vm_attached: false,
            array_layout: runtime::ArrayLayout::probe(),
        })
    }

    /// Accounts for new code of `proto`: bytes compiled, the module's memory, and the
    /// functions a flush must visit.
    fn note_compiled(&mut self, proto: &Rc<Proto>, code: &CodeEntry) {
        self.code_bytes += code.code_bytes;
        let text = code.ir.as_ref().map_or(0, String::len)
            + code.machine_code.as_ref().map_or(0, String::len);
        self.module_bytes += code.code_bytes.div_ceil(CODE_PAGE) * CODE_PAGE + text;
        if !self
            .compiled
            .iter()
            .any(|p| std::ptr::eq(p.as_ptr(), Rc::as_ptr(proto)))
        {
            self.compiled.push(Rc::downgrade(proto));
        }
    }

    /// Whether the module has grown past `CODE_CACHE_BUDGET`.
    pub fn over_budget(&self) -> bool {
        self.module_bytes > CODE_CACHE_BUDGET
    }

    pub fn code_stats(&self) -> CodeStats {
        let mut stats = CodeStats {
            functions: 0,
            versions: 0,
            code_bytes: 0,
            module_bytes: self.module_bytes,
            flushes: self.flushes,
        };
        for proto in self.compiled.iter().filter_map(Weak::upgrade) {
            let versions: Vec<Rc<CodeEntry>> = proto
                .jit
                .entries()
                .into_iter()
                .chain(proto.jit.osr_entries().into_iter().filter_map(|o| o.1))
                .collect();
            stats.functions += usize::from(!versions.is_empty());
            stats.versions += versions.len();
            stats.code_bytes += versions.iter().map(|v| v.code_bytes).sum::<usize>();
        }
        stats
    }

    /// Drops every function's compiled code and frees the whole module, starting a fresh
    /// one; profiles, deopt counts and blacklists stay, so hot functions compile again.
    /// Refuses (returns false) while a `Vm` holds the JIT, as compiled frames may be
    /// running then.
    pub fn flush_code_cache(&mut self) -> Result<bool, String> {
        if self.vm_attached {
            return Ok(false);
        }
        let (module, helper_ids) = build_module()?;
        let stats = self.code_stats();
        for proto in self.compiled.drain(..).filter_map(|p| p.upgrade()) {
            proto.jit.forget_code();
        }
        let old = std::mem::replace(&mut self.module, module);
        self.helper_ids = helper_ids;
        self.ctx = self.module.make_context();
        // Every address into the old module was held by a `CodeEntry` or a code-table slot
        // of a function in `compiled`, and `forget_code` dropped or zeroed them all.
        runtime::free_module(old);
        self.module_bytes = 0;
        self.flushes += 1;
        self.event(
            "",
            EventKind::Flushed {
                versions: stats.versions,
                bytes: stats.module_bytes,
            },
        );
        Ok(true)
    }

    fn event(&mut self, function: &str, kind: EventKind) {
        let e = Event {
            function: function.to_string(),
            kind,
        };
        if self.options.trace {
            eprintln!("{e}");
        }
        // A long session keeps the most recent events only.
        if self.events.len() >= MAX_EVENTS {
            self.events.drain(..MAX_EVENTS / 2);
        }
        self.events.push(e);
    }

    /// Counts a deopt of `closure`'s function; past `MAX_DEOPTS` it is blacklisted.
    /// Records a deopt in `closure`'s frame at `pc`, which was running in `owner`'s
    /// compiled code (the same function, unless `closure` was inlined into it).
    pub fn record_deopt(
        &mut self,
        owner: &Rc<Closure>,
        closure: &Rc<Closure>,
        pc: usize,
        reason: String,
    ) {
        let Code::Bytecode(proto) = &closure.code else {
            return;
        };
        // The code that failed is the owner's: dropping it lets the owner compile anew
        // (after three deopts the callee is blacklisted, and no longer inlined).
        if let Code::Bytecode(owner_proto) = &owner.code {
            if !Rc::ptr_eq(owner, closure) {
                owner_proto.jit.drop_code();
            }
        }
        let count = proto.jit.deopts.get() + 1;
        proto.jit.deopts.set(count);
        let line = proto.lines.get(pc).copied().unwrap_or(0);
        self.event(
            &proto.name,
            EventKind::Deopt {
                line,
                reason,
                count,
            },
        );
        // The code's assumptions failed: drop it, so the next hot call compiles anew with
        // what the VM has seen since; past the limit, the function stays in the VM.
        proto.jit.drop_code();
        if count > MAX_DEOPTS && !proto.jit.blacklisted.get() {
            proto.jit.blacklisted.set(true);
            self.event(&proto.name, EventKind::Blacklisted { deopts: count });
        }
    }

    /// Compiles `closure`'s function for the argument signature `key`; returns the address
    /// of its entry. On failure the reason is recorded and the function stays in the VM
    /// for that signature.
    pub fn compile(
        &mut self,
        closure: &Rc<Closure>,
        key: SigKey,
        globals: &Globals,
    ) -> Result<usize, String> {
        let Code::Bytecode(proto) = &closure.code else {
            return Err("not bytecode".into());
        };
        let proto = proto.clone();
        let tier = if self.options.tier2_threshold == 0 {
            2
        } else {
            1
        };
        let result = self.compile_proto(closure, &proto, key, globals, None, tier);
        match &result {
            Ok(entry) => {
                let e = entry.clone();
                proto.jit.slot(key).set(e.1);
                self.event(&proto.name, compiled_event(&e.0));
                self.note_compiled(&proto, &e.0);
                proto.jit.entries.borrow_mut().push(e.0);
            }
            Err(reason) => {
                proto.jit.failed.borrow_mut().push((key, reason.clone()));
                self.event(
                    &proto.name,
                    EventKind::NotCompiled {
                        signature: signature_text(key),
                        reason: reason.clone(),
                    },
                );
            }
        }
        result.map(|(entry, _)| entry.entry)
    }

    fn environment<'a>(
        &self,
        closure: &'a Rc<Closure>,
        proto: &'a Proto,
        key: SigKey,
        globals: &Globals,
    ) -> Env<'a> {
        let params: Vec<Ty> = signature_types(key).into_iter().map(Ty::of_type).collect();
        let mut global_types = HashMap::new();
        let mut callees = HashMap::new();
        for (pc, op) in proto.code.iter().enumerate() {
            match *op {
                Op::GetGlobal { global, .. } if self.globals_in_place => {
                    let ty = match globals.get(global) {
                        Some(Value::Int(_)) => Ty::Int,
                        Some(Value::Float(_)) => Ty::Float,
                        Some(Value::Bool(_)) => Ty::Bool,
                        _ => continue,
                    };
                    global_types.insert(global, ty);
                }
                Op::CallGlobal { global, argc, .. } => {
                    let Some(Value::Func(c)) = globals.get(global) else {
                        continue;
                    };
                    let Code::Bytecode(p) = &c.code else {
                        continue;
                    };
                    let n = argc as usize;
                    if unsupported(p).is_none()
                        && n >= p.min_args
                        && n <= p.max_args
                        && !p.jit.blacklisted.get()
                    {
                        callees.insert(
                            pc,
                            Callee {
                                closure: c.clone(),
                                proto: p.clone(),
                                hints: Default::default(),
                            },
                        );
                    }
                }
                _ => {}
            }
        }
        Env {
            proto,
            closure,
            key,
            argc: params.len(),
            params,
            feedback: proto.counters.feedback.iter().map(Cell::get).collect(),
            global_types,
            globals_in_place: self.globals_in_place,
            callees,
            self_result: Ty::Dead,
            osr: None,
            range_guards: !proto.jit.no_range_guards.get(),
        }
    }

    /// Compiles `closure`'s function at tier 2 for signature `key`, whose tier-1 code got
    /// hot; the tier-2 version replaces it in the code table. Returns the tier-2 body's
    /// address, or 0 when it cannot be had.
    pub fn compile_tier2(
        &mut self,
        closure: &Rc<Closure>,
        key: SigKey,
        globals: &Globals,
    ) -> usize {
        let proto = crate::vm::proto_of(closure).clone();
        if proto.jit.blacklisted.get() {
            return 0;
        }
        match self.compile_proto(closure, &proto, key, globals, None, 2) {
            Ok((entry, body)) if entry.tier == 2 => {
                proto.jit.slot(key).set(body);
                self.event(&proto.name, compiled_event(&entry));
                self.note_compiled(&proto, &entry);
                proto.jit.replace_with_tier2(entry);
                body
            }
            Ok(_) => 0,
            Err(reason) => {
                self.event(
                    &proto.name,
                    EventKind::NotCompiled {
                        signature: format!("{} at tier 2", signature_text(key)),
                        reason,
                    },
                );
                0
            }
        }
    }

    /// Compiles an OSR entry of `closure`'s function at the loop header `header`, for the
    /// types of the VM frame's registers `window` there (with `argc` arguments passed).
    pub fn compile_osr(
        &mut self,
        closure: &Rc<Closure>,
        header: usize,
        argc: usize,
        window: &[Value],
        globals: &Globals,
    ) -> Option<usize> {
        let Code::Bytecode(proto) = &closure.code else {
            return None;
        };
        let proto = proto.clone();
        let live = Liveness::compute(&proto, argc);
        let types: Vec<Ty> = window
            .iter()
            .enumerate()
            .map(|(r, v)| {
                if live.is_live(header, r) {
                    Ty::of_type(v.type_of())
                } else {
                    Ty::Dead
                }
            })
            .collect();
        let arg_types: Vec<crate::value::Type> =
            window[..argc].iter().map(Value::type_of).collect();
        let key = crate::profile::key_of_types(&arg_types)?;
        let line = proto.lines[header];
        match self.compile_proto(closure, &proto, key, globals, Some((header, types)), 1) {
            Ok((entry, _)) => {
                self.event(
                    &proto.name,
                    EventKind::CompiledOsr {
                        line,
                        time: entry.compile_time,
                        bytes: entry.code_bytes,
                        inlined_callees: entry.inlined_callees.clone(),
                    },
                );
                let address = entry.entry;
                self.note_compiled(&proto, &entry);
                proto.jit.osr.borrow_mut().push((header, Some(entry)));
                Some(address)
            }
            Err(reason) => {
                proto.jit.osr.borrow_mut().push((header, None));
                self.event(
                    &proto.name,
                    EventKind::NotCompiled {
                        signature: format!(" (OSR entry at line {line})"),
                        reason,
                    },
                );
                None
            }
        }
    }

    /// Logs an entry into compiled code by OSR.
    pub fn record_osr(&mut self, proto: &Proto, header: usize, iterations: u64) {
        let line = proto.lines[header];
        self.event(&proto.name, EventKind::Osr { line, iterations });
    }

    /// Infers types, first guessing what a self-call returns from the other returns, then
    /// checking the guess (falling back to "any").
    fn infer(env: &mut Env, live: &Liveness) -> Types {
        let first = infer::infer(env, live);
        let guess = first.returns;
        if !guess.is_unboxed() {
            env.self_result = Ty::Boxed;
            return infer::infer(env, live);
        }
        env.self_result = guess;
        let second = infer::infer(env, live);
        if second.returns == guess {
            return second;
        }
        env.self_result = Ty::Boxed;
        infer::infer(env, live)
    }

    /// What `callee` returns for signature `key`, by inferring its types (its own callees
    /// count as returning anything, unless compiled). Only a hint: the call checks it.
    fn callee_result(&self, callee: &Callee, key: SigKey, globals: &Globals) -> Ty {
        if unsupported(&callee.proto).is_some() {
            return Ty::Boxed;
        }
        let mut env = self.environment(&callee.closure, &callee.proto, key, globals);
        env.callees.clear();
        let live = Liveness::compute(&callee.proto, env.argc);
        match Self::infer(&mut env, &live).returns {
            Ty::Dead => Ty::Boxed,
            t => t,
        }
    }

    /// The call sites of `env`'s function whose callee is translated inline: a small
    /// function without loops or calls of its own (so inlining never nests and the
    /// callee's frame is the only one a deopt inside it must hand to the VM), and not the
    /// function itself (self-recursion is unrolled at tier 2 instead).
    fn inline_targets(&self, env: &Env, types: &Types, globals: &Globals) -> Vec<InlineTarget> {
        let mut targets = Vec::new();
        for (pc, state) in types.states.iter().enumerate() {
            let Some(state) = state else { continue };
            let (
                Plan::FastCall {
                    key, direct: false, ..
                },
                _,
            ) = env.decide(pc, state)
            else {
                continue;
            };
            let callee = &env.callees[&pc];
            let proto = &callee.proto;
            let small = proto.code.len() <= INLINE_MAX_OPS
                && callee.closure.captures.is_empty()
                && !proto.jit.blacklisted.get()
                && !Rc::ptr_eq(&callee.closure, env.closure)
                && !proto.code.iter().any(|op| {
                    matches!(
                        op,
                        Op::LoopEnter { .. } | Op::CallGlobal { .. } | Op::Call { .. }
                    )
                });
            if small {
                targets.push(InlineTarget {
                    pc,
                    key,
                    closure: callee.closure.clone(),
                    proto: proto.clone(),
                });
            }
        }
        let _ = globals;
        targets
    }

    /// The analysis of a callee to translate inline, or `None` if it makes calls after all
    /// (a method call, say, that infers as a fast call).
    fn inline_analysis<'a>(
        &self,
        target: &'a InlineTarget,
        globals: &Globals,
    ) -> Option<Analysis<'a>> {
        let mut env = self.environment(&target.closure, &target.proto, target.key, globals);
        let live = Liveness::compute(&target.proto, env.argc);
        let types = Self::infer(&mut env, &live);
        let calls = types.states.iter().enumerate().any(|(pc, state)| {
            state
                .as_ref()
                .is_some_and(|st| matches!(env.decide(pc, st).0, Plan::FastCall { .. }))
        });
        (!calls).then(|| Analysis::new(env, types, live, HashMap::new()))
    }

    fn compile_proto(
        &mut self,
        closure: &Rc<Closure>,
        proto: &Proto,
        key: SigKey,
        globals: &Globals,
        osr: Option<(usize, Vec<Ty>)>,
        tier: u8,
    ) -> Result<(Rc<CodeEntry>, usize), String> {
        let started = Instant::now();
        if let Some(reason) = unsupported(proto) {
            return Err(reason);
        }
        let mut env = self.environment(closure, proto, key, globals);
        let osr_header = osr.as_ref().map(|o| o.0);
        if osr.is_some() {
            // Not the function's normal entry: its self-calls go through the code table.
            env.key = 0;
            env.osr = osr;
        }
        if env.argc < proto.min_args || env.argc > proto.max_args {
            return Err("wrong number of arguments".into());
        }
        let live = Liveness::compute(proto, env.argc);
        let mut types = Self::infer(&mut env, &live);
        // Callees not compiled yet: infer what they return for the signatures called with,
        // then infer again with those results (a few rounds, as results type more calls).
        for _ in 0..3 {
            let mut learned = false;
            for (pc, state) in types.states.iter().enumerate() {
                let Some(state) = state else { continue };
                let (
                    Plan::FastCall {
                        key, direct: false, ..
                    },
                    _,
                ) = env.decide(pc, state)
                else {
                    continue;
                };
                let callee = &env.callees[&pc];
                if callee.proto.jit.return_type(key).is_some()
                    || callee.hints.borrow().contains_key(&key)
                {
                    continue;
                }
                let t = self.callee_result(callee, key, globals);
                callee.hints.borrow_mut().insert(key, t);
                learned |= t != Ty::Boxed;
            }
            if !learned {
                break;
            }
            env.self_result = Ty::Dead;
            types = Self::infer(&mut env, &live);
        }

        // Tier 2 unrolls self-recursion; a function without direct self-calls gains
        // nothing from it and stays at tier 1. Tier-1 code of one that has them counts its
        // calls, to move to tier 2 when hot.
        let self_calls = types.states.iter().enumerate().any(|(pc, state)| {
            state.as_ref().is_some_and(|st| {
                matches!(env.decide(pc, st).0, Plan::FastCall { direct: true, .. })
            })
        });
        let tier = if tier == 2 && self_calls { 2 } else { 1 };
        let counts = tier == 1
            && self_calls
            && osr_header.is_none()
            && (1..u64::MAX).contains(&self.options.tier2_threshold);
        let tier_up = counts.then(|| crate::vm::proto_of(closure).jit.tier_up(key, closure));

        let call_conv = self.module.isa().default_call_conv();
        let mut entry_sig = Signature::new(call_conv);
        entry_sig.params = (0..4).map(|_| AbiParam::new(I64)).collect();
        entry_sig.returns = (0..2).map(|_| AbiParam::new(I64)).collect();
        let body_sig = match osr_header {
            Some(_) => entry_sig.clone(),
            None => body_signature(&env.params, call_conv),
        };
        let body_id = self
            .module
            .declare_anonymous_function(&body_sig)
            .map_err(|e| e.to_string())?;
        // The entry from Rust (an OSR variant is called from Rust directly).
        let entry_id = match osr_header {
            Some(_) => None,
            None => Some(
                self.module
                    .declare_anonymous_function(&entry_sig)
                    .map_err(|e| e.to_string())?,
            ),
        };

        // Small leaf callees are translated into the caller (`inline_targets`).
        let inline_targets = self.inline_targets(&env, &types, globals);
        let mut analyses = Vec::with_capacity(1 + inline_targets.len());
        let returns = types.returns;
        let param_types = env.params.clone();
        analyses.push(Analysis::new(env, types, live, HashMap::new()));
        for target in &inline_targets {
            let callee = self.inline_analysis(target, globals);
            if let Some(callee) = callee {
                let index = analyses.len();
                analyses[0].inline.insert(target.pc, index);
                analyses.push(callee);
            }
        }

        let settings = Settings {
            max_depth: self.max_depth,
            interrupt_flag: Arc::as_ptr(&self.interrupt) as usize,
            epoch: crate::globals::function_epoch(),
            epoch_addr: &crate::globals::FUNCTION_EPOCH as *const _ as usize,
            deopt_stress: self.options.deopt_stress,
            array: self.array_layout,
            inline_depth: if tier == 2 { TIER2_UNROLL } else { 0 },
            tier_up: tier_up.as_ref().map(|t| {
                (
                    Rc::as_ptr(t) as usize,
                    self.options.tier2_threshold.min(i64::MAX as u64) as i64,
                )
            }),
        };
        // The code may hand its own closure to the VM (see `Translator::new`).
        let mut keep_closures = vec![closure.clone()];
        let mut keep_slots = Vec::new();

        // The body.
        let inlined;
        let inlined_callees;
        let range_counts;
        self.module.clear_context(&mut self.ctx);
        self.ctx.func.signature = body_sig.clone();
        self.ctx.func.name = UserFuncName::user(0, body_id.as_u32());
        self.ctx.set_disasm(self.options.keep_ir);
        {
            let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.builder_ctx);
            let refs: Vec<_> = self
                .helper_ids
                .iter()
                .map(|id| self.module.declare_func_in_func(*id, b.func))
                .collect();
            let helpers = HelperRefs {
                step: refs[0],
                resume: refs[1],
                drop_slot: refs[2],
                return_boxed: refs[3],
                clear: refs[4],
                binary: refs[5],
                get_index: refs[6],
                set_index: refs[7],
                push: refs[8],
                copy: refs[9],
                tier_up: refs[10],
            };
            let mut calls = HashMap::new();
            let (env, types) = (&analyses[0].env, &analyses[0].types);
            for (pc, state) in types.states.iter().enumerate() {
                let Some(state) = state else { continue };
                let (Plan::FastCall { key, direct, .. }, _) = env.decide(pc, state) else {
                    continue;
                };
                let callee = &env.callees[&pc];
                let target = if direct {
                    CallTarget::Direct(self.module.declare_func_in_func(body_id, b.func))
                } else {
                    let slot = callee.proto.jit.slot(key);
                    let params: Vec<Ty> =
                        signature_types(key).into_iter().map(Ty::of_type).collect();
                    let sig = b.import_signature(body_signature(&params, call_conv));
                    let address = Rc::as_ptr(&slot) as usize;
                    keep_slots.push(slot);
                    CallTarget::Slot { slot: address, sig }
                };
                keep_closures.push(callee.closure.clone());
                calls.insert(
                    pc,
                    FastCallSite {
                        target,
                        closure: Rc::as_ptr(&callee.closure) as usize,
                        callee_regs: callee.proto.num_regs,
                    },
                );
            }
            analyses[0].calls = calls;
            let ranges = &analyses[0].ranges;
            range_counts = (ranges.unchecked.len(), ranges.guards.len());
            let mut t = Translator::new(b, &analyses, helpers, &settings);
            match osr_header {
                Some(header) => t.entry_osr(header),
                None => t.entry(&param_types),
            }
            t.body();
            inlined = t.inlined;
            inlined_callees = std::mem::take(&mut t.inlined_callees);
            t.finish(self.module.target_config());
        }
        let result = self.module.define_function(body_id, &mut self.ctx);
        if let Err(e) = result {
            let text = format!("{e:?}");
            self.module.clear_context(&mut self.ctx);
            return Err(format!("code generation failed: {text}"));
        }
        let code_bytes = self
            .ctx
            .compiled_code()
            .map_or(0, |c| c.code_info().total_size as usize);
        let ir = self
            .options
            .keep_ir
            .then(|| self.ctx.func.display().to_string());
        let machine_code = self
            .ctx
            .compiled_code()
            .and_then(|c| c.vcode.clone())
            .filter(|_| self.options.keep_ir);

        // The entry from Rust: loads the unboxed arguments from the registers.
        if let Some(entry_id) = entry_id {
            self.module.clear_context(&mut self.ctx);
            self.ctx.func.signature = entry_sig;
            self.ctx.func.name = UserFuncName::user(0, entry_id.as_u32());
            {
                let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.builder_ctx);
                let block = b.create_block();
                b.append_block_params_for_function_params(block);
                b.switch_to_block(block);
                let params = b.block_params(block).to_vec();
                let mut args = params.clone();
                for (i, ty) in param_types.iter().enumerate() {
                    if ty.is_unboxed() {
                        let v = b.ins().load(
                            translate::cl_type(*ty),
                            MemFlagsData::trusted(),
                            params[2],
                            i as i32 * 16 + 8,
                        );
                        args.push(v);
                    }
                }
                let body = self.module.declare_func_in_func(body_id, b.func);
                let call = b.ins().call(body, &args);
                let results = b.inst_results(call).to_vec();
                b.ins().return_(&results);
                b.seal_all_blocks();
                b.finalize(self.module.target_config());
            }
            if let Err(e) = self.module.define_function(entry_id, &mut self.ctx) {
                self.module.clear_context(&mut self.ctx);
                return Err(format!("code generation failed: {e:?}"));
            }
        }
        self.module.clear_context(&mut self.ctx);
        self.module
            .finalize_definitions()
            .map_err(|e| format!("finalizing: {e}"))?;
        let body = self.module.get_finalized_function(body_id) as usize;
        let entry = entry_id.map_or(body, |id| self.module.get_finalized_function(id) as usize);
        let code = CodeEntry {
            key,
            entry,
            returns,
            signature: signature_text(key),
            ir,
            machine_code,
            code_bytes,
            compile_time: started.elapsed(),
            osr_line: osr_header.map(|h| proto.lines[h]),
            tier,
            inlined,
            inlined_callees,
            checks_removed: range_counts.0,
            guarded_loops: range_counts.1,
            _keep: code::Kept {
                closures: keep_closures,
                slots: keep_slots,
                tier_up,
            },
        };
        Ok((Rc::new(code), body))
    }
}

/// A callee to translate inline at call site `pc`, called with signature `key`.
struct InlineTarget {
    pc: usize,
    key: SigKey,
    closure: Rc<Closure>,
    proto: Rc<Proto>,
}

/// A fresh `JITModule` for this machine, with the runtime helpers declared in it.
fn build_module() -> Result<(JITModule, [FuncId; HELPERS]), String> {
    let mut flags = settings::builder();
    let set = |f: &mut settings::Builder, k: &str, v: &str| {
        f.set(k, v)
            .map_err(|e| format!("cranelift setting {k}: {e}"))
    };
    set(&mut flags, "opt_level", "speed")?;
    set(&mut flags, "use_colocated_libcalls", "false")?;
    set(&mut flags, "is_pic", "false")?;
    set(
        &mut flags,
        "enable_verifier",
        if cfg!(debug_assertions) {
            "true"
        } else {
            "false"
        },
    )?;
    let isa = cranelift_native::builder()
        .map_err(|e| format!("this machine is not supported by Cranelift: {e}"))?
        .finish(settings::Flags::new(flags))
        .map_err(|e| format!("cranelift: {e}"))?;
    let mut jb = JITBuilder::with_isa(isa, default_libcall_names());
    for (name, address) in runtime::helper_symbols() {
        jb.symbol(name, address);
    }
    let mut module = JITModule::new(jb);
    let ptr = |n: usize| (0..n).map(|_| AbiParam::new(I64)).collect::<Vec<_>>();
    let sig = |module: &JITModule, params: usize, returns: usize| {
        let mut s = module.make_signature();
        s.params = ptr(params);
        s.returns = ptr(returns);
        s
    };
    let decls: [(&str, usize, usize); HELPERS] = [
        ("rt_step", 8, 1),
        ("rt_resume", 11, 2),
        ("rt_drop", 1, 0),
        ("rt_return_boxed", 3, 2),
        ("rt_clear", 2, 0),
        ("rt_binary", 5, 1),
        ("rt_get_index", 4, 1),
        ("rt_set_index", 5, 1),
        ("rt_push", 5, 1),
        ("rt_copy", 3, 0),
        ("rt_tier_up", 2, 1),
    ];
    let mut ids = Vec::new();
    for (name, params, returns) in decls {
        let s = sig(&module, params, returns);
        let id = module
            .declare_function(name, Linkage::Import, &s)
            .map_err(|e| format!("declaring {name}: {e}"))?;
        ids.push(id);
    }
    let ids = ids.try_into().expect("one id per helper");
    Ok((module, ids))
}
