//! The boundary between compiled code and Rust: the context compiled code reads, the
//! helper functions it calls, and the call into compiled code. All of the JIT's `unsafe`
//! is in this file.
//!
//! Invariants the compiled code relies on (and this file maintains):
//! - The VM's register stack never moves while it runs (reserved once, see
//!   `Vm::grow_stack`), so `regs` pointers into it stay valid; `JitCtx::stack_end` is the
//!   end of its initialized part.
//! - A `Value` is `repr(u64)`: the tag at offset 0, the payload at offset 8. Compiled code
//!   reads and writes scalars in place and moves heap values as their two words.
//! - Helpers are only called from compiled code that was entered through
//!   `Vm::call_compiled`, which points `JitCtx::vm` at the running VM.

use std::rc::Rc;

use crate::error::{Error, ErrorKind};
use crate::function::Closure;
use crate::jit::infer::Ty;
use crate::jit::translate::tag_of;
use crate::value::{clear, Value};
use crate::vm::{Vm, VALUE_BYTES};

/// What compiled code reads about the running VM.
#[repr(C)]
pub struct JitCtx {
    /// One past the last initialized value of the register stack (an address).
    pub stack_end: usize,
    /// Address of the global table's values.
    pub globals_base: usize,
    /// Native stack below which compiled code hands over to the VM.
    pub sp_limit: usize,
    /// Deopt-stress: guards left until the next one fails on purpose.
    pub stress_left: i64,
    pub stress_every: i64,
    /// The running VM (a `*mut Vm`), for helpers.
    pub vm: *mut (),
}

impl Default for JitCtx {
    fn default() -> Self {
        JitCtx {
            stack_end: 0,
            globals_base: 0,
            sp_limit: 0,
            stress_left: 0,
            stress_every: 0,
            vm: std::ptr::null_mut(),
        }
    }
}

/// Field offsets of `JitCtx`, for the code generator.
pub mod offsets {
    use super::JitCtx;
    use std::mem::offset_of;
    pub const STACK_END: i32 = offset_of!(JitCtx, stack_end) as i32;
    pub const GLOBALS_BASE: i32 = offset_of!(JitCtx, globals_base) as i32;
    pub const SP_LIMIT: i32 = offset_of!(JitCtx, sp_limit) as i32;
    pub const STRESS_LEFT: i32 = offset_of!(JitCtx, stress_left) as i32;
}

/// The result tag of compiled code that raised an error (kept in `Vm::pending_error`).
pub const TAG_ERROR: i64 = 0xff;

/// Why compiled code handed its frame to the VM: not a speculation failure (an error to
/// raise, an interrupt, deep recursion), so no deopt event.
pub const REASON_SLOW_PATH: i64 = 0;
/// `--deopt-stress` failed a guard on purpose.
pub const REASON_STRESS: i64 = 1;

/// A type guard expecting `ty` failed.
pub fn reason_expected(ty: Ty) -> i64 {
    16 + tag_of(ty)
}

fn type_name_of_tag(tag: i64) -> &'static str {
    match tag {
        0..=7 => crate::value::Type::from_index(tag as u8)
            .expect("a value tag")
            .short_name(),
        8 => "function",
        _ => "?",
    }
}

/// The text of a deopt reason: `expected int, got float`.
pub fn reason_text(reason: i64, got: i64) -> String {
    match reason {
        REASON_STRESS => "deopt-stress".to_string(),
        r if r >= 16 => format!(
            "expected {}, got {}",
            type_name_of_tag(r - 16),
            type_name_of_tag(got)
        ),
        _ => "slow path".to_string(),
    }
}

/// A `Value` as the two words compiled code passes around (returned in two registers).
#[repr(C)]
pub struct Pair {
    pub tag: u64,
    pub payload: u64,
}

/// Moves a value into its two words (ownership of a heap value goes with them).
pub fn value_to_pair(v: Value) -> Pair {
    let tag = |t: crate::value::Type| t.index() as u64;
    match v {
        Value::Nil => Pair { tag: 0, payload: 0 },
        Value::Bool(b) => Pair {
            tag: tag(crate::value::Type::Bool),
            payload: b as u64,
        },
        Value::Int(i) => Pair {
            tag: tag(crate::value::Type::Int),
            payload: i as u64,
        },
        Value::Float(f) => Pair {
            tag: tag(crate::value::Type::Float),
            payload: f.to_bits(),
        },
        Value::Builtin(b) => Pair {
            tag: 8,
            payload: b as u8 as u64,
        },
        heap => {
            // SAFETY: `Value` is `repr(u64)`, and a heap variant's payload is one pointer,
            // so all 16 bytes are initialized words. The value is forgotten, so ownership
            // of its reference count moves into the pair.
            let words: [u64; 2] = unsafe { std::mem::transmute_copy(&heap) };
            std::mem::forget(heap);
            Pair {
                tag: words[0],
                payload: words[1],
            }
        }
    }
}

/// Takes a value back out of its two words.
///
/// # Safety
/// A heap tag's pair must have come from `value_to_pair` (or from a slot's two words) and
/// not have been turned back into a value already.
pub unsafe fn pair_to_value(p: Pair) -> Value {
    match p.tag {
        0 => Value::Nil,
        1 => Value::Bool(p.payload & 0xff != 0),
        2 => Value::Int(p.payload as i64),
        3 => Value::Float(f64::from_bits(p.payload)),
        8 => Value::Builtin(crate::builtins::Builtin::ALL[p.payload as usize]),
        // SAFETY: per this function's contract these words are a heap value's tag and
        // pointer, whose reference this pair owns.
        _ => unsafe { std::mem::transmute::<[u64; 2], Value>([p.tag, p.payload]) },
    }
}

/// A compiled function's entry from Rust: `fn(ctx, closure, regs, level) -> (tag, payload)`.
type Entry = unsafe extern "C" fn(*mut JitCtx, *const Closure, *mut Value, u64) -> Pair;

impl Vm<'_> {
    /// Runs compiled code (`entry`, for `closure`'s proto and the types of the arguments
    /// already in the registers at `base`) and returns its result.
    pub(crate) fn call_compiled(
        &mut self,
        entry: usize,
        closure: &Rc<Closure>,
        base: usize,
        level: usize,
    ) -> Result<Value, Error> {
        self.jit_ctx.globals_base = self.globals.values_address();
        self.jit_ctx.sp_limit = crate::stack::floor().saturating_add(1 << 20);
        self.sync_stack_end();
        let vm: *mut Vm = self;
        // SAFETY: `entry` is the address of a finalized compiled entry with the `Entry`
        // signature (made by `Jit::compile`, whose module outlives this VM's use of it).
        let entry: Entry = unsafe { std::mem::transmute::<usize, Entry>(entry) };
        // SAFETY: `base` is in bounds (the caller made the stack long enough for the
        // frame, which `grow_stack` guarantees), `vm` is this VM, alive for the call, and
        // nothing else touches it until the call returns; `closure` is kept alive by the
        // caller. The compiled code only uses these as the module comment says.
        let pair = unsafe {
            (*vm).jit_ctx.vm = vm as *mut ();
            let ctx = &raw mut (*vm).jit_ctx;
            let regs = (*vm).stack.as_mut_ptr().add(base);
            entry(ctx, Rc::as_ptr(closure), regs, level as u64)
        };
        if pair.tag as i64 == TAG_ERROR {
            return Err(self.pending_error.take().unwrap_or_else(|| {
                Error::new(
                    ErrorKind::Builtin("internal error: compiled code failed silently".into()),
                    Default::default(),
                )
            }));
        }
        // SAFETY: compiled code returns values built by `value_to_pair` or moved out of a
        // register slot, whose ownership it hands to us.
        Ok(unsafe { pair_to_value(pair) })
    }

    /// The register index of a window pointer.
    fn base_of(&self, regs: *const Value) -> usize {
        (regs as usize - self.stack.as_ptr() as usize) / VALUE_BYTES
    }
}

/// The VM behind a context.
///
/// # Safety
/// `ctx` must be the context compiled code was entered with (see `call_compiled`), while
/// that call is running.
unsafe fn vm_of<'v>(ctx: *mut JitCtx) -> &'v mut Vm<'v> {
    // SAFETY: per the contract, `vm` points at the VM that entered compiled code; the
    // outer `&mut` is not used while compiled code (and so this helper) runs.
    unsafe { &mut *((*ctx).vm as *mut Vm<'v>) }
}

/// A new reference to the closure compiled code runs.
///
/// # Safety
/// `closure` must come from `Rc::as_ptr` of a closure that is alive.
unsafe fn closure_of(closure: *const Closure) -> Rc<Closure> {
    // SAFETY: the pointer came from a live `Rc` (the VM's callee, or one kept alive by
    // the compiled code's metadata), so adding a count and taking an `Rc` is sound.
    unsafe {
        Rc::increment_strong_count(closure);
        Rc::from_raw(closure)
    }
}

/// Boxes the unboxed registers compiled code handed over (`(reg << 8 | tag, payload)`
/// pairs, see `Translator::spill_to_buffer`) into the frame's window.
///
/// # Safety
/// `spills` must point at `count` such pairs, and the window at `base` must hold every
/// register named.
unsafe fn unspill(vm: &mut Vm, base: usize, spills: *const [u64; 2], count: u64) {
    for i in 0..count as usize {
        // SAFETY: per the contract, the buffer holds `count` pairs.
        let [head, payload] = unsafe { *spills.add(i) };
        let pair = Pair {
            tag: head & 0xff,
            payload,
        };
        // SAFETY: compiled code only spills scalars (int, float, bool), whose pairs own
        // nothing.
        let value = unsafe { pair_to_value(pair) };
        vm.stack[base + (head >> 8) as usize] = value;
    }
}

/// Runs the one instruction at `pc` of the compiled frame in the VM, its unboxed operands
/// in `spills`; returns the next pc, or -1 with the error pending.
#[allow(clippy::too_many_arguments)]
extern "C" fn rt_step(
    ctx: *mut JitCtx,
    closure: *const Closure,
    regs: *mut Value,
    level: u64,
    pc: u64,
    argc: u64,
    spills: *const [u64; 2],
    count: u64,
) -> i64 {
    // SAFETY: called only from compiled code entered through `call_compiled`.
    let vm = unsafe { vm_of(ctx) };
    // SAFETY: compiled code passes its own closure, alive while it runs.
    let closure = unsafe { closure_of(closure) };
    let base = vm.base_of(regs);
    // SAFETY: compiled code passes its spill buffer and its own registers.
    unsafe { unspill(vm, base, spills, count) };
    match vm.run_frame_from(
        closure,
        base,
        argc as usize,
        pc as usize,
        level as usize,
        true,
    ) {
        Ok(Value::Int(next)) => next,
        Ok(_) => unreachable!("a step returns the next pc"),
        Err(e) => {
            vm.pending_error = Some(e);
            -1
        }
    }
}

/// Deoptimizes: the live unboxed registers (in `spills`) go into the frame's window, the
/// VM finishes the frame from `pc`, and its result is returned.
#[allow(clippy::too_many_arguments)]
extern "C" fn rt_resume(
    ctx: *mut JitCtx,
    closure: *const Closure,
    regs: *mut Value,
    level: u64,
    pc: u64,
    argc: u64,
    reason: i64,
    got: i64,
    spills: *const [u64; 2],
    count: u64,
) -> Pair {
    // SAFETY: called only from compiled code entered through `call_compiled`.
    let vm = unsafe { vm_of(ctx) };
    // SAFETY: compiled code passes its own closure, alive while it runs.
    let closure = unsafe { closure_of(closure) };
    let base = vm.base_of(regs);
    // SAFETY: compiled code passes its spill buffer and its own registers.
    unsafe { unspill(vm, base, spills, count) };
    if reason != REASON_SLOW_PATH {
        if let Some(jit) = vm.jit.as_mut() {
            jit.record_deopt(&closure, pc as usize, reason_text(reason, got));
        }
    }
    match vm.run_frame_from(
        closure,
        base,
        argc as usize,
        pc as usize,
        level as usize,
        false,
    ) {
        Ok(v) => value_to_pair(v),
        Err(e) => {
            vm.pending_error = Some(e);
            Pair {
                tag: TAG_ERROR as u64,
                payload: 0,
            }
        }
    }
}

/// Releases what a register slot holds (compiled code is about to overwrite it).
extern "C" fn rt_drop(slot: *mut Value) {
    // SAFETY: compiled code passes a slot of its window, inside the initialized stack.
    unsafe { clear(&mut *slot) }
}

/// Returns the boxed value of register `src` and clears the frame's `n` registers.
extern "C" fn rt_return_boxed(regs: *mut Value, src: u64, n: u64) -> Pair {
    // SAFETY: compiled code passes its own window of `n` initialized registers.
    let window = unsafe { std::slice::from_raw_parts_mut(regs, n as usize) };
    let v = std::mem::take(&mut window[src as usize]);
    window.iter_mut().for_each(clear);
    value_to_pair(v)
}

/// Clears the frame's `n` registers (a stale array copy would defeat copy-on-write).
extern "C" fn rt_clear(regs: *mut Value, n: u64) {
    // SAFETY: compiled code passes its own window of `n` initialized registers.
    let window = unsafe { std::slice::from_raw_parts_mut(regs, n as usize) };
    window.iter_mut().for_each(clear);
}

/// The helpers by name, for the module's symbol table.
pub fn helper_symbols() -> Vec<(&'static str, *const u8)> {
    vec![
        ("rt_step", rt_step as *const u8),
        ("rt_resume", rt_resume as *const u8),
        ("rt_drop", rt_drop as *const u8),
        ("rt_return_boxed", rt_return_boxed as *const u8),
        ("rt_clear", rt_clear as *const u8),
    ]
}
