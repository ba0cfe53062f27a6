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
use crate::value::{clear, put, set_bool, set_float, set_int, Value};
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

/// Where compiled code finds the parts of an array: byte offsets from the pointer a
/// `Value::Array` holds (its payload, the `Rc`'s allocation) to the strong and weak counts
/// and to the `Vec`'s buffer pointer, length and capacity. Rust fixes none of these
/// layouts, so `probe` measures them once on a live array; when the measurement is not
/// conclusive, compiled code leaves arrays to the helpers.
///
/// With the layout, compiled code reads an element in place, and writes one or pushes one
/// in place exactly when `Rc::make_mut` would not copy (both counts 1) and `Vec::push`
/// would not reallocate (length below capacity); every other case goes to the helpers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArrayLayout {
    pub strong: i32,
    pub weak: i32,
    pub buffer: i32,
    pub len: i32,
    pub cap: i32,
}

/// What a loop that pushes to an array reads as the array's `Rc` when its entry found no
/// unshared array in the register (`translate::arrays`): zeroed words, so a length and a
/// capacity of 0, and every access of the loop misses to its helper before writing. It
/// covers every layout `probe` accepts (at most 4 words of counts, then the `Vec`'s 3).
pub static EMPTY_ARRAY: [u64; 8] = [0; 8];

impl ArrayLayout {
    pub fn probe() -> Option<ArrayLayout> {
        const WORD: usize = 8;
        if std::mem::size_of::<Vec<Value>>() != 3 * WORD {
            return None;
        }
        let mut items = Vec::with_capacity(7);
        items.extend([Value::Nil, Value::Nil, Value::Nil]);
        if items.capacity() != 7 {
            return None;
        }
        let buffer = items.as_ptr() as u64;
        let rc = Rc::new(items);
        let array = Value::Array(rc.clone());
        // SAFETY: `Value` is `repr(u64)` (tag word, then payload word), and every byte of
        // an array value is initialized: the tag, then the `Rc`'s pointer.
        let words: [u64; 2] = unsafe { std::mem::transmute_copy(&array) };
        let start = words[1] as usize;
        let vec_at = Rc::as_ptr(&rc) as usize;
        let head = vec_at.checked_sub(start)?;
        if head % WORD != 0 || head / WORD > 4 {
            return None;
        }
        let n = head / WORD + 3;
        // The allocation runs from `start` to the end of the `Vec` (`n` words).
        let read = || -> Vec<u64> {
            (0..n)
                // SAFETY: `start..start + n * 8` is the live `Rc` allocation of `rc`
                // (counts, then the `Vec`), 8-aligned; nothing writes it meanwhile.
                .map(|i| unsafe { std::ptr::read((start as *const u64).add(i)) })
                .collect()
        };
        let before = read();
        let extra = rc.clone();
        let strong_after = read();
        drop(extra);
        let weak = Rc::downgrade(&rc);
        let weak_after = read();
        drop(weak);
        let counter = |after: &[u64]| -> Option<i32> {
            let changed: Vec<usize> = (0..n).filter(|&i| after[i] != before[i]).collect();
            match changed[..] {
                [i] if i * WORD < head && after[i] == before[i] + 1 => Some((i * WORD) as i32),
                _ => None,
            }
        };
        let field = |value: u64| -> Option<i32> {
            let found: Vec<usize> = (head / WORD..n).filter(|&i| before[i] == value).collect();
            match found[..] {
                [i] => Some((i * WORD) as i32),
                _ => None,
            }
        };
        let layout = ArrayLayout {
            strong: counter(&strong_after)?,
            weak: counter(&weak_after)?,
            buffer: field(buffer)?,
            len: field(3)?,
            cap: field(7)?,
        };
        // Both counts read 1 for an unshared array with no weak references (what compiled
        // code tests); here `rc` and `array` share it.
        let counts_ok = before[layout.strong as usize / WORD] == 2
            && before[layout.weak as usize / WORD] == 1
            && layout.strong != layout.weak;
        counts_ok.then_some(layout)
    }
}

/// The result tag of compiled code that raised an error (kept in `Vm::pending_error`).
pub const TAG_ERROR: i64 = 0xff;

/// Why compiled code handed its frame to the VM: not a speculation failure (an error to
/// raise, an interrupt, deep recursion), so no deopt event.
pub const REASON_SLOW_PATH: i64 = 0;
/// `--deopt-stress` failed a guard on purpose.
pub const REASON_STRESS: i64 = 1;
/// A loop entry's range guard failed: a value its overflow proofs assumed small is not.
pub const REASON_RANGE: i64 = 2;
/// An accumulator loop met a negative term or an overflowing sum (`translate::accumulate`).
pub const REASON_ACCUMULATOR: i64 = 3;

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
        REASON_RANGE => format!(
            "an int outside ±{} (the loop's overflow checks were removed for that range)",
            super::range::BOUND
        ),
        REASON_ACCUMULATOR => "a negative or overflowing sum in a self-call turned into a loop \
                               (accumulator)"
            .to_string(),
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

/// One way out of compiled code into the VM (a deopt, or an instruction left to the VM),
/// as far as it is fixed when the code is compiled. Compiled code passes the site's
/// address and a spill buffer of `u64` words; the site says what the words are. Keeping
/// the fixed parts here rather than in the code (they were constants stored or passed at
/// every exit) made each exit a few stores and a call of five or six register arguments,
/// which is most of what a function's IR is: its cold exits.
pub struct ExitSite {
    /// The frame's closure, or 0 when only run time knows it (a function with captures
    /// runs in any of its closures): then it is word `EXIT_CLOSURE` of the buffer.
    pub closure: usize,
    /// The compiled function's own closure (whose code a deopt drops), or 0: then word
    /// `EXIT_OWNER`.
    pub owner: usize,
    pub pc: u64,
    /// The number of arguments the frame was called with.
    pub argc: u64,
    /// `REASON_*` or an expected type (`reason_expected`), for a deopt.
    pub reason: i64,
    /// `reg << 8 | tag` of each unboxed register handed over; the payloads are the
    /// buffer's words from `EXIT_HEADER` on, in this order.
    pub heads: Box<[u64]>,
    /// A register handed over whose tag only run time knows (a call's result): its tag
    /// and payload are words `EXIT_EXTRA_TAG` and `EXIT_EXTRA_TAG + 1`.
    pub extra: Option<u16>,
}

/// Words of an exit's spill buffer before the payloads (see `ExitSite`).
pub const EXIT_CLOSURE: usize = 0;
pub const EXIT_OWNER: usize = 1;
pub const EXIT_EXTRA_TAG: usize = 2;
pub const EXIT_HEADER: usize = 4;

impl ExitSite {
    /// The closure `address` names, or the one in buffer word `word` when it is 0.
    ///
    /// # Safety
    /// `spills` must be the site's buffer as compiled code filled it (see `ExitSite`).
    unsafe fn closure_in(address: usize, spills: *const u64, word: usize) -> *const Closure {
        if address != 0 {
            return address as *const Closure;
        }
        // SAFETY: per the contract, the buffer holds the closure in that word.
        unsafe { *spills.add(word) as *const Closure }
    }
}

/// Puts the registers compiled code handed over (see `ExitSite`) into the frame's window,
/// making the register stack long enough for the frame first (compiled code that keeps
/// everything unboxed never needed its window until now). On failure the values are
/// dropped and the error returned.
///
/// # Safety
/// `spills` must hold the payloads `site` describes: scalars, or a value whose ownership
/// the words carry (a call's result).
unsafe fn unspill(
    vm: &mut Vm,
    closure: &Closure,
    base: usize,
    spills: *const u64,
    site: &ExitSite,
) -> Result<(), ErrorKind> {
    // SAFETY: per the contract, the buffer holds one payload per head, each owned by us
    // now, and the extra register's tag and payload if the site has one.
    let word = |i: usize| unsafe { *spills.add(i) };
    // The call's result is taken first: owned by us now, it is released by `?` below if
    // the frame cannot be made room for. The scalars need no such care.
    let extra = site.extra.map(|r| {
        let pair = Pair {
            tag: word(EXIT_EXTRA_TAG),
            payload: word(EXIT_EXTRA_TAG + 1),
        };
        // SAFETY: the pair is a call's result, whose ownership compiled code hands over.
        (r as usize, unsafe { pair_to_value(pair) })
    });
    // The frame is made room for before the values are written, so that they go straight
    // into their registers: this runs on every instruction compiled code leaves to the VM,
    // and a buffer allocated here was a third of a global `push` loop's time.
    let regs = crate::vm::proto_of(closure).num_regs as usize;
    vm.grow_stack(base + regs)?;
    for (i, head) in site.heads.iter().enumerate() {
        let pair = Pair {
            tag: head & 0xff,
            payload: word(EXIT_HEADER + i),
        };
        // SAFETY: a head's tag is an unboxed type's, so the pair is a scalar.
        vm.stack[base + (head >> 8) as usize] = unsafe { pair_to_value(pair) };
    }
    if let Some((r, v)) = extra {
        vm.stack[base + r] = v;
    }
    Ok(())
}

/// What both ways into the VM start with: the VM, the frame's closure and register base,
/// with the handed-over registers boxed into the frame; `None` with the error pending when
/// the register stack cannot hold the frame.
///
/// # Safety
/// The arguments must be those compiled code (entered through `call_compiled`) passes:
/// its context, its window, the address of one of its exit sites (kept alive with the
/// code, `code::Kept::exits`) and that site's spill buffer.
unsafe fn take_frame<'v>(
    ctx: *mut JitCtx,
    regs: *mut Value,
    spills: *const u64,
    site: *const ExitSite,
) -> Option<(&'v mut Vm<'v>, &'v ExitSite, Rc<Closure>, usize)> {
    // SAFETY: per the contract, `ctx` is the running compiled code's context.
    let vm = unsafe { vm_of(ctx) };
    // SAFETY: per the contract, the site is alive as long as the code that runs.
    let site = unsafe { &*site };
    // SAFETY: per the contract, the closure (named by the site, or in the buffer) is the
    // frame's own, alive while it runs.
    let closure = unsafe { closure_of(ExitSite::closure_in(site.closure, spills, EXIT_CLOSURE)) };
    let base = vm.base_of(regs);
    // SAFETY: per the contract, the buffer holds what the site describes.
    if let Err(kind) = unsafe { unspill(vm, &closure, base, spills, site) } {
        let span = crate::vm::proto_of(&closure).spans[site.pc as usize];
        vm.pending_error = Some(Error::new(kind, span));
        return None;
    }
    Some((vm, site, closure, base))
}

/// Runs the one instruction at the site's pc of the compiled frame in the VM, its unboxed
/// operands in `spills`; returns the next pc, or -1 with the error pending.
extern "C" fn rt_step(
    ctx: *mut JitCtx,
    regs: *mut Value,
    level: u64,
    spills: *const u64,
    site: *const ExitSite,
) -> i64 {
    // SAFETY: called from compiled code with its own frame, exit site and spill buffer.
    let Some((vm, site, closure, base)) = (unsafe { take_frame(ctx, regs, spills, site) }) else {
        return -1;
    };
    match vm.run_frame_from(
        closure,
        base,
        site.argc as usize,
        site.pc as usize,
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
/// VM finishes the frame from the site's pc, and its result is returned. `got` is the tag
/// the failed guard saw (-1 if none), for the event.
extern "C" fn rt_resume(
    ctx: *mut JitCtx,
    regs: *mut Value,
    level: u64,
    got: i64,
    spills: *const u64,
    site: *const ExitSite,
) -> Pair {
    // SAFETY: called from compiled code with its own frame, exit site and spill buffer.
    let Some((vm, site, closure, base)) = (unsafe { take_frame(ctx, regs, spills, site) }) else {
        return Pair {
            tag: TAG_ERROR as u64,
            payload: 0,
        };
    };
    // SAFETY: the closure whose compiled code is running (alive while it runs); it is the
    // frame's own unless the frame is a callee inlined into that code.
    let owner = unsafe { closure_of(ExitSite::closure_in(site.owner, spills, EXIT_OWNER)) };
    let (pc, reason) = (site.pc as usize, site.reason);
    if reason == REASON_RANGE {
        crate::vm::proto_of(&closure).jit.no_range_guards.set(true);
    }
    // The next compilation makes no accumulator loops; restarts of code already running
    // (its loops may restart again before they return) are no new deopts.
    let known = reason == REASON_ACCUMULATOR
        && crate::vm::proto_of(&closure)
            .jit
            .no_accumulator
            .replace(true);
    if reason != REASON_SLOW_PATH && !known {
        if let Some(jit) = vm.jit.as_mut() {
            jit.record_deopt(&owner, &closure, pc, reason_text(reason, got));
        }
    }
    match vm.run_frame_from(closure, base, site.argc as usize, pc, level as usize, false) {
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

/// Binary operators `rt_binary` does on boxed values (the code passed from compiled code).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum BoxedOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl BoxedOp {
    const ALL: [BoxedOp; 11] = [
        BoxedOp::Add,
        BoxedOp::Sub,
        BoxedOp::Mul,
        BoxedOp::Div,
        BoxedOp::Mod,
        BoxedOp::Eq,
        BoxedOp::Ne,
        BoxedOp::Lt,
        BoxedOp::Le,
        BoxedOp::Gt,
        BoxedOp::Ge,
    ];

    fn apply(self, a: &Value, b: &Value) -> Result<Value, ErrorKind> {
        use std::cmp::Ordering::*;
        let ordered = |want: &[std::cmp::Ordering]| -> Result<Value, ErrorKind> {
            Ok(Value::Bool(
                crate::ops::compare(a, b)?.is_some_and(|o| want.contains(&o)),
            ))
        };
        match self {
            BoxedOp::Add => crate::ops::add(a, b),
            BoxedOp::Sub => crate::ops::sub(a, b),
            BoxedOp::Mul => crate::ops::mul(a, b),
            BoxedOp::Div => crate::ops::div(a, b),
            BoxedOp::Mod => crate::ops::rem(a, b),
            BoxedOp::Eq => Ok(Value::Bool(crate::ops::equals(a, b))),
            BoxedOp::Ne => Ok(Value::Bool(!crate::ops::equals(a, b))),
            BoxedOp::Lt => ordered(&[Less]),
            BoxedOp::Le => ordered(&[Less, Equal]),
            BoxedOp::Gt => ordered(&[Greater]),
            BoxedOp::Ge => ordered(&[Greater, Equal]),
        }
    }
}

// Fast helpers for common instructions on boxed values. Each does the common case and
// returns 0, or returns 1 having changed nothing, and compiled code then lets the VM run
// the instruction (which raises the error, if there is one). They take the frame's window
// and register numbers; compiled code passes registers of its own window.

/// `dst = a op b` on boxed registers (`s = s + "ab"` appends in place, as in the VM).
extern "C" fn rt_binary(regs: *mut Value, op: u64, dst: u64, a: u64, b: u64) -> i64 {
    let op = BoxedOp::ALL[op as usize];
    // SAFETY: the registers are in the caller's window; shared borrows end before the
    // write below.
    let (x, y) = unsafe { (&*regs.add(a as usize), &*regs.add(b as usize)) };
    if op == BoxedOp::Add && dst == a && matches!(x, Value::Str(_)) {
        let y = y.clone();
        // SAFETY: as above; `x` and `y` are no longer used.
        let target = unsafe { &mut *regs.add(dst as usize) };
        return match crate::ops::add_in_place(target, &y) {
            Ok(()) => 0,
            Err(_) => 1,
        };
    }
    match op.apply(x, y) {
        Ok(v) => {
            // SAFETY: as above.
            unsafe { *regs.add(dst as usize) = v };
            0
        }
        Err(_) => 1,
    }
}

/// `dst = base[index]` for an array and an int index in bounds.
extern "C" fn rt_get_index(regs: *mut Value, dst: u64, base: u64, index: i64) -> i64 {
    // SAFETY: registers of the caller's window; the borrow ends before the write.
    let v = match unsafe { &*regs.add(base as usize) } {
        Value::Array(items) if index >= 0 && (index as usize) < items.len() => {
            items[index as usize].clone()
        }
        _ => return 1,
    };
    // SAFETY: as above.
    unsafe { *regs.add(dst as usize) = v };
    0
}

/// `base[index] = value` for an array, an int index in bounds and a scalar value.
extern "C" fn rt_set_index(regs: *mut Value, base: u64, index: i64, tag: u64, payload: u64) -> i64 {
    // SAFETY: a register of the caller's window.
    match unsafe { &mut *regs.add(base as usize) } {
        Value::Array(items) if index >= 0 && (index as usize) < items.len() => {
            put_scalar(&mut Rc::make_mut(items)[index as usize], tag, payload);
            0
        }
        _ => 1,
    }
}

/// Writes a scalar's pair into a slot field by field. Building the `Value` first and then
/// copying it made a 16-byte load of a temporary written in 8- and 1-byte pieces, which
/// stalls store forwarding: that one load was 72% of `rt_set_index`'s time on sieve.
#[inline(always)]
fn put_scalar(slot: &mut Value, tag: u64, payload: u64) {
    match tag {
        1 => set_bool(slot, payload & 0xff != 0),
        2 => set_int(slot, payload as i64),
        3 => set_float(slot, f64::from_bits(payload)),
        // SAFETY: compiled code passes only scalar tags here, whose pairs own nothing.
        _ => put(slot, unsafe { pair_to_value(Pair { tag, payload }) }),
    }
}

/// `root.push(value)` for an array in a register and a scalar value; `dst` becomes nil.
extern "C" fn rt_push(regs: *mut Value, dst: u64, root: u64, tag: u64, payload: u64) -> i64 {
    // SAFETY: a register of the caller's window; the borrow ends before the next write.
    match unsafe { &mut *regs.add(root as usize) } {
        Value::Array(items) => {
            let items = Rc::make_mut(items);
            items.push(Value::Nil);
            let last = items.len() - 1;
            put_scalar(&mut items[last], tag, payload);
        }
        _ => return 1,
    }
    // SAFETY: as above.
    unsafe { clear(&mut *regs.add(dst as usize)) };
    0
}

/// `dst = *value` (a constant of the function, or another register): a clone.
extern "C" fn rt_copy(regs: *mut Value, dst: u64, value: *const Value) {
    // SAFETY: `value` is a register of the window or a constant of the function, alive
    // while its code runs; the borrow ends before the write.
    let v = unsafe { (*value).clone() };
    // SAFETY: a register of the caller's window.
    unsafe { *regs.add(dst as usize) = v };
}

/// Frees all the memory of a module whose code can no longer run: the caller
/// (`Jit::flush_code_cache`) has dropped or zeroed every address into it (code entries and
/// code-table slots), and no `Vm` holds the JIT, so no compiled frame is on the stack.
pub(crate) fn free_module(module: cranelift_jit::JITModule) {
    // SAFETY: `free_memory` unmaps the module's code and data. It is unsound only if code
    // from it runs afterwards; nothing can call into it, per the conditions above.
    unsafe { module.free_memory() }
}

/// A function's tier-up state for one signature. Its tier-1 code counts its entries in
/// `count`; past the threshold it asks for tier 2 (`rt_tier_up`), and from then on hands
/// each call it receives to `tier2_body` (its own direct self-calls included, so a deep
/// recursion started in tier 1 moves to tier 2 below). `repr(C)`: compiled code reads and
/// writes the first two fields at offsets 0 and 8.
#[repr(C)]
pub struct TierUp {
    pub count: std::cell::Cell<i64>,
    pub tier2_body: std::cell::Cell<usize>,
    /// The closure and signature the tier-1 code was compiled for; that code keeps the
    /// closure alive while it can run.
    pub closure: *const Closure,
    pub key: crate::profile::SigKey,
}

/// Called by tier-1 code whose count passed the threshold: compiles tier 2 (once) and
/// returns its body's address, or 0 when it cannot be had (then the count is parked so
/// that tier 1 stops asking).
extern "C" fn rt_tier_up(ctx: *mut JitCtx, tier_up: *const TierUp) -> u64 {
    // SAFETY: called from compiled code, whose context points at the running VM.
    let vm = unsafe { vm_of(ctx) };
    // SAFETY: the code that calls this holds an `Rc` of the `TierUp` it passes.
    let tier_up = unsafe { &*tier_up };
    if tier_up.tier2_body.get() == 0 {
        // SAFETY: the closure is kept alive by the calling code (see `TierUp::closure`).
        let closure = unsafe { closure_of(tier_up.closure) };
        let body = vm.tier_up(&closure, tier_up.key);
        tier_up.tier2_body.set(body);
        if body == 0 {
            tier_up.count.set(i64::MIN);
        }
    }
    tier_up.tier2_body.get() as u64
}

/// The helpers by name, for the module's symbol table.
pub fn helper_symbols() -> Vec<(&'static str, *const u8)> {
    vec![
        ("rt_step", rt_step as *const u8),
        ("rt_resume", rt_resume as *const u8),
        ("rt_drop", rt_drop as *const u8),
        ("rt_return_boxed", rt_return_boxed as *const u8),
        ("rt_clear", rt_clear as *const u8),
        ("rt_binary", rt_binary as *const u8),
        ("rt_get_index", rt_get_index as *const u8),
        ("rt_set_index", rt_set_index as *const u8),
        ("rt_push", rt_push as *const u8),
        ("rt_copy", rt_copy as *const u8),
        ("rt_tier_up", rt_tier_up as *const u8),
    ]
}

#[cfg(test)]
mod tests {
    use super::ArrayLayout;

    /// The probe finds five distinct words: the two counts before the `Vec`, its three
    /// fields after them.
    #[test]
    fn the_array_layout_is_measured() {
        let l = ArrayLayout::probe().expect("a conclusive probe on this platform");
        let mut offsets = [l.strong, l.weak, l.buffer, l.len, l.cap];
        offsets.sort();
        assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{l:?}");
        assert!(l.strong < l.buffer && l.weak < l.buffer, "{l:?}");
        assert!(offsets.iter().all(|o| o % 8 == 0), "{l:?}");
    }
}
