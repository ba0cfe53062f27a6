//! Tier 1: the Cranelift JIT. Compiles a function's bytecode for one argument signature
//! (`infer` types the registers, `translate` emits the IR, `runtime` is the boundary with
//! Rust), keeps the code per (function, signature) in a code table inside each `Proto`,
//! and logs every event (compiled, deopt, blacklisted) for `--trace-jit`, the REPL and
//! `ruchydbg`.

pub mod code;
mod compile;
pub mod events;
pub mod infer;
pub mod range;
pub mod runtime;
pub mod translate;

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

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
use compile::build_module;
use events::compiled_event;
pub use events::{inlined_text, Event, EventKind};
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
/// At most this many copies of a body (itself and its inlined self-calls) at tier 2: a
/// function with more self-calls is unrolled less deep (tak, with four: one level, five
/// copies; two levels would be 21 copies, 60 KB of code and 17 ms of compiling).
pub const TIER2_MAX_BODIES: usize = 8;
/// Levels unrolled when each body has one self-call left inline: fib, once its second
/// call is an accumulator loop (`translate::accumulate`).
pub const TIER2_UNROLL_LINEAR: usize = 3;

/// How many levels of self-calls tier 2 translates inline for a function with
/// `self_calls` direct self-call sites: `TIER2_UNROLL`, or fewer to stay within
/// `TIER2_MAX_BODIES` copies of the body.
pub fn unroll_depth(self_calls: usize, accumulates: bool) -> usize {
    if self_calls == 1 && accumulates {
        // One inlined call per level, each a loop: the copies grow by one a level.
        return TIER2_UNROLL_LINEAR.min(TIER2_MAX_BODIES - 1);
    }
    let (mut depth, mut bodies, mut level) = (0, 1, 1);
    while depth < TIER2_UNROLL && self_calls > 0 {
        level *= self_calls;
        if bodies + level > TIER2_MAX_BODIES {
            break;
        }
        bodies += level;
        depth += 1;
    }
    depth
}
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
        let result = self.compile_guarded(closure, &proto, key, globals, None, tier);
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
        match self.compile_guarded(closure, &proto, key, globals, None, 2) {
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
        match self.compile_guarded(closure, &proto, key, globals, Some((header, types)), 1) {
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
}
