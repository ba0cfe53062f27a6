//! Tier 0.5: the bytecode VM.
//!
//! One register stack holds every frame's registers; a frame is a window of it starting at
//! `base`. A Ruchy call pushes a `Frame` and continues in the same Rust loop, so recursion
//! depth costs heap, not native stack: `d(100000)` runs, and the limit is `--max-depth`.
//!
//! Int and float fast paths are inlined here; everything else goes through `ops` and
//! `builtins`, the same code the tree-walker runs, so the tiers cannot drift apart.

mod entry;
mod place;

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;
use std::time::Instant;

use crate::alloc::RegisterStack;
use crate::builtins::{self, Builtin};
use crate::bytecode::op::{Op, Reg};
use crate::bytecode::proto::{PlaceOp, PlaceRoot, Proto, TemplatePart};
use crate::error::{ArithOp, Error, ErrorKind};
use crate::function::{Closure, Code};
use crate::globals::Globals;
use crate::jit::runtime::JitCtx;
use crate::jit::Jit;
use crate::limits::Limits;
use crate::ops;
use crate::profile::timing::Timing;
use crate::profile::{call_keys, signature_key, type_bit};
use crate::syntax::ast::Capture;
use crate::value::{clear, is_heap, put, set_bool, set_float, set_int, Upvalue, Value};

/// A suspended caller. The slots of `Vm::frames` are reused (fields overwritten in place,
/// which is cheaper than building and copying a whole frame); `depth` says how many are
/// live.
/// The feedback bit of an int (an immediate operand).
const INT_BIT: u32 = 1 << 2;
const FLOAT_BIT: u32 = 1 << 3;
/// Feedback of an int-int and a float-float instruction.
const INT_INT: u32 = INT_BIT | INT_BIT << 8;
const FLOAT_FLOAT: u32 = FLOAT_BIT | FLOAT_BIT << 8;

/// Builds the error of the instruction before `pc`, out of line: the dispatch loop's error
/// paths stay small.
#[cold]
#[inline(never)]
fn error_at(kind: ErrorKind, proto: &Proto, pc: usize) -> Error {
    Error::new(kind, proto.spans[pc - 1])
}

struct Frame {
    closure: Option<Rc<Closure>>,
    /// Where to continue (saved while a callee runs).
    pc: usize,
    base: usize,
    cell_base: usize,
    argc: usize,
    /// Stack index of the caller's register that receives the result.
    ret: usize,
    /// Whether its registers may hold a heap value (they are cleared on return if so).
    heap: bool,
}

/// Values the register stack can hold (256 MiB of address space, committed as used).
pub(crate) const STACK_CAPACITY: usize = 1 << 24;
pub(crate) const VALUE_BYTES: usize = std::mem::size_of::<Value>();

/// How many values past a running frame's base are always initialized: one per possible
/// register number. A frame's registers are then a `[Value; REG_WINDOW]` and a `Reg` (a
/// `u16`) indexes it with no bounds check, which removed a fifth of the instructions of a
/// tight loop. Registers past the frame's own (`num_regs`) are never named by its code.
pub(crate) const REG_WINDOW: usize = Reg::MAX as usize + 1;

/// An empty register stack for `Vm::new`, reserved once and never reallocated: compiled
/// code holds raw pointers into it (see `Vm::grow_stack`). Only the pages really used are
/// committed.
pub fn new_stack() -> RegisterStack {
    RegisterStack::with_capacity(STACK_CAPACITY)
}

pub struct Vm<'a> {
    pub(crate) globals: &'a mut Globals,
    pub(crate) out: &'a mut dyn Write,
    pub(crate) limits: &'a Limits,
    /// The register stack. Its first `used_end` values are what frames use or used (stale
    /// values there are released when the entry frame that left them returns); the values
    /// after that are nil, at least `REG_WINDOW` of them.
    pub(crate) stack: &'a mut RegisterStack,
    pub(crate) used_end: usize,
    frames: Vec<Frame>,
    /// Live suspended frames in `frames`.
    pub(crate) depth: usize,
    /// Frames of compiled code below the running VM frame (they are not in `frames`): a
    /// frame's call depth is `depth + level_offset`.
    pub(crate) level_offset: usize,
    cells: Vec<Upvalue>,
    /// The session's JIT, when compiled code may run.
    pub(crate) jit: Option<&'a mut Jit>,
    /// Back edges of a loop after which it is entered in compiled code (0: never).
    pub(crate) osr_threshold: u64,
    /// The error raised inside compiled code, until its caller collects it.
    pub(crate) pending_error: Option<Error>,
    /// What compiled code reads about this VM (see `jit::runtime`).
    pub(crate) jit_ctx: JitCtx,
    /// Whether the profile counters run (they are always on except to measure their cost).
    counting: bool,
    /// Timing state, when timing is switched on.
    timing: Option<Box<Timing>>,
}

pub(crate) fn proto_of(c: &Closure) -> &Rc<Proto> {
    match &c.code {
        Code::Bytecode(p) => p,
        Code::Ast(_) => unreachable!("the VM only creates bytecode closures"),
    }
}

impl<'a> Vm<'a> {
    /// Runs the entry frame from `start_pc` until it returns (with `depth` back at
    /// `entry_depth`). `COUNT` compiles the profile counters in or out of the dispatch loop.
    ///
    /// With `STEP`, runs just the one instruction at `start_pc` (a call included, to its
    /// return) and returns `Value::Int(next pc)`: compiled code does this for instructions
    /// it leaves to the VM, so both tiers share one implementation of them.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn execute<const COUNT: bool, const FEEDBACK: bool, const STEP: bool>(
        &mut self,
        entry_depth: usize,
        entry: Rc<Closure>,
        entry_base: usize,
        entry_cell_base: usize,
        entry_argc: usize,
        start_pc: usize,
    ) -> Result<Value, Error> {
        // The running frame's state lives in these locals; `self.frames` holds only the
        // suspended callers. Calls and returns move closures, never clone them.
        let mut next = entry;
        let (mut base, mut pc, mut cell_base, mut argc, mut ret) = (
            entry_base,
            start_pc,
            entry_cell_base,
            entry_argc,
            entry_base - 1,
        );
        // Whether the running frame's registers may hold a heap value (see `store!`).
        let mut next_heap = true;
        'frames: loop {
            let closure = next;
            let mut heap = next_heap;
            let proto: &Proto = proto_of(&closure);
            let code = &proto.code[..];

            // The frame's registers, as a window of `REG_WINDOW` values: indexing by a
            // register number needs no bounds check. The frame's own are the first `num_regs`.
            let num_regs = proto.num_regs as usize;
            let regs: &mut [Value; REG_WINDOW] = (&mut self.stack[base..base + REG_WINDOW])
                .try_into()
                .expect("the stack extends REG_WINDOW values past a running frame's base");
            macro_rules! reg {
                ($r:expr) => {
                    regs[$r as usize]
                };
            }
            // Every register write that may store a heap value: notes it, so that a frame
            // whose registers never held one can skip clearing them on return.
            macro_rules! store {
                ($r:expr, $v:expr) => {{
                    let v: Value = $v;
                    if is_heap(&v) {
                        heap = true;
                    }
                    regs[$r as usize] = v;
                }};
            }
            // Raise an error at the current instruction.
            // Back edges are counted in these locals and added to the loop's counter when
            // another loop's back edge comes, at a loop's entry or exit, and whenever this
            // frame stops running (call, return, error): an increment of a memory counter
            // on every iteration was a loop-carried dependency costing 20% on tight loops.
            let mut edge_loop: u16 = 0;
            let mut edge_count: u64 = 0;
            macro_rules! flush_edges {
                () => {
                    if COUNT {
                        proto.counters.add_iterations(edge_loop, &mut edge_count);
                    }
                };
            }
            macro_rules! fail {
                ($kind:expr) => {{
                    flush_edges!();
                    return Err(error_at($kind, proto, pc));
                }};
            }
            macro_rules! check {
                ($e:expr) => {
                    match $e {
                        Ok(v) => v,
                        Err(kind) => fail!(kind),
                    }
                };
            }
            // Type feedback of a two-operand instruction (left type bits, right << 8).
            macro_rules! fb {
                ($a:expr, $b:expr) => {
                    if FEEDBACK {
                        let bits = type_bit(&reg!($a)) | type_bit(&reg!($b)) << 8;
                        proto.counters.feedback(pc - 1, bits);
                    }
                };
            }
            // The same with an int immediate on the right.
            macro_rules! fb_imm {
                ($a:expr) => {
                    if FEEDBACK {
                        let bits = type_bit(&reg!($a)) | INT_BIT << 8;
                        proto.counters.feedback(pc - 1, bits);
                    }
                };
            }
            // Feedback known from the fast path's types: a constant, no type lookups.
            macro_rules! fb_const {
                ($bits:expr) => {
                    if FEEDBACK {
                        proto.counters.feedback(pc - 1, $bits);
                    }
                };
            }
            // Arithmetic with an int fast path (checked), a float fast path, then `ops` (or
            // `$other`, given, for any other operands).
            macro_rules! arith {
                ($dst:expr, $a:expr, $b:expr, $checked:ident, $fop:tt, $slow:path) => {
                    arith!($dst, $a, $b, $checked, $fop, $slow, {
                        fb!($a, $b);
                        let v = check!($slow(&reg!($a), &reg!($b)));
                        store!($dst, v);
                    })
                };
                ($dst:expr, $a:expr, $b:expr, $checked:ident, $fop:tt, $slow:path, $other:block) => {{
                    match (&reg!($a), &reg!($b)) {
                        (Value::Int(x), Value::Int(y)) => {
                            fb_const!(INT_INT);
                            match x.$checked(*y) {
                            Some(r) => set_int(&mut reg!($dst), r),
                            None => {
                                let v = check!($slow(&reg!($a), &reg!($b)));
                                store!($dst, v);
                            }
                            }
                        }
                        (Value::Float(x), Value::Float(y)) => {
                            fb_const!(FLOAT_FLOAT);
                            let r = x $fop y;
                            set_float(&mut reg!($dst), r)
                        }
                        _ => $other,
                    }
                }};
            }
            macro_rules! compare {
                ($a:expr, $b:expr, $op:tt, $ord:pat) => {{
                    match (&reg!($a), &reg!($b)) {
                        (Value::Int(x), Value::Int(y)) => {
                            fb_const!(INT_INT);
                            x $op y
                        }
                        (Value::Float(x), Value::Float(y)) => {
                            fb_const!(FLOAT_FLOAT);
                            x $op y
                        }
                        (x, y) => {
                            fb!($a, $b);
                            matches!(check!(ops::compare(x, y)), Some($ord))
                        }
                    }
                }};
            }
            macro_rules! compare_imm {
                ($a:expr, $imm:expr, $op:tt, $ord:pat) => {{
                    match &reg!($a) {
                        Value::Int(x) => {
                            fb_const!(INT_INT);
                            *x $op $imm as i64
                        }
                        x => {
                            fb_imm!($a);
                            matches!(
                                check!(ops::compare(x, &Value::Int($imm as i64))),
                                Some($ord)
                            )
                        }
                    }
                }};
            }

            // Ends the running frame: back to the caller's frame, or out of `execute` for the
            // entry frame. The registers have been cleared already. `int` moves an int result
            // by its payload, `value` any other: an int never becomes a whole 16-byte value on
            // the way, since reading one right after writing its 8-byte payload stalls store
            // forwarding (it was a fifth of fib's time).
            macro_rules! finish_frame {
                (int $i:expr) => {{
                    let i: i64 = $i;
                    finish_frame!(@ Value::Int(i), false, |slot| set_int(slot, i))
                }};
                (value $v:expr) => {{
                    let v: Value = $v;
                    let result_heap = is_heap(&v);
                    finish_frame!(@ v, result_heap, |slot| put(slot, v))
                }};
                (@ $entry_result:expr, $result_heap:expr, |$slot:ident| $write:expr) => {{
                    self.cells.truncate(cell_base);
                    if self.depth == entry_depth {
                        flush_edges!();
                        return Ok($entry_result);
                    }
                    if COUNT {
                        if let Some(t) = &mut self.timing {
                            t.leave(self.depth);
                        }
                    }
                    let result_heap: bool = $result_heap;
                    {
                        let $slot = &mut self.stack[ret];
                        $write;
                    }
                    self.depth -= 1;
                    let caller = &mut self.frames[self.depth];
                    next = caller.closure.take().expect("a suspended caller");
                    next_heap = caller.heap || result_heap;
                    (base, pc, cell_base, argc, ret) = (
                        caller.base,
                        caller.pc,
                        caller.cell_base,
                        caller.argc,
                        caller.ret,
                    );
                    flush_edges!();
                    continue 'frames;
                }};
            }

            // Enters a bytecode function whose arguments sit after `callee_at`: checks,
            // suspends the running frame, and continues in the callee.
            macro_rules! enter {
                ($callee:expr, $callee_at:expr, $argc:expr) => {{
                    let callee: Rc<Closure> = $callee;
                    let callee_at: usize = $callee_at;
                    let n = $argc as usize;
                    let callee_proto = proto_of(&callee);
                    if n < callee_proto.min_args || n > callee_proto.max_args {
                        let (min, max) = (callee_proto.min_args, callee_proto.max_args);
                        fail!(ErrorKind::Arity { min, max, got: n });
                    }
                    if self.depth + self.level_offset >= self.limits.max_depth {
                        fail!(ErrorKind::RecursionLimit);
                    }
                    if self.limits.interrupted() {
                        fail!(ErrorKind::Interrupted);
                    }
                    let new_base = callee_at + 1;
                    let needed = new_base + callee_proto.num_regs as usize;
                    if self.used_end < needed {
                        check!(self.grow_stack(needed));
                    }
                    if FEEDBACK {
                        let (key, site) = call_keys(&self.stack[new_base..new_base + n]);
                        callee_proto.counters.record_signature(key);
                        proto.counters.feedback(pc - 1, site);
                    } else if COUNT {
                        let key = signature_key(&self.stack[new_base..new_base + n]);
                        callee_proto.counters.record_signature(key);
                    }
                    // Compiled code for these argument types runs the whole call natively.
                    if self.jit.is_some() {
                        if let Some(code) = self.compiled_entry(&callee, new_base, n) {
                            flush_edges!();
                            let level = self.depth + self.level_offset + 1;
                            let v = self.call_compiled(code, &callee, new_base, level)?;
                            let result_heap = is_heap(&v);
                            put(&mut self.stack[callee_at], v);
                            next = closure;
                            next_heap = heap || result_heap;
                            continue 'frames;
                        }
                    }
                    if COUNT {
                        if let Some(t) = &mut self.timing {
                            t.enter(callee_proto);
                        }
                    }
                    // Parameters that were not passed, and every other local, start as nil:
                    // the window may still hold the caller's dead temporaries.
                    for slot in
                        &mut self.stack[new_base + n..new_base + callee_proto.num_locals as usize]
                    {
                        clear(slot);
                    }
                    let new_cell_base = self.push_cells(callee_proto.num_cells);
                    flush_edges!();
                    let callee_heap = self.stack[new_base..new_base + n].iter().any(is_heap);
                    self.suspend(closure, pc, base, cell_base, argc, ret, heap);
                    next = callee;
                    next_heap = callee_heap;
                    (base, pc, cell_base, argc, ret) = (new_base, 0, new_cell_base, n, callee_at);
                    continue 'frames;
                }};
            }

            loop {
                if STEP && pc != start_pc && self.depth == entry_depth {
                    flush_edges!();
                    return Ok(Value::Int(pc as i64));
                }
                let op = code[pc];
                pc += 1;
                match op {
                    Op::LoadNil { dst } => reg!(dst) = Value::Nil,
                    Op::LoadBool { dst, value } => set_bool(&mut reg!(dst), value),
                    Op::LoadInt { dst, value } => set_int(&mut reg!(dst), value as i64),
                    Op::LoadConst { dst, k } => store!(dst, proto.const_values[k as usize].clone()),
                    Op::Move { dst, src } => match reg!(src) {
                        Value::Int(i) => set_int(&mut reg!(dst), i),
                        Value::Float(f) => set_float(&mut reg!(dst), f),
                        ref other => {
                            let v = other.clone();
                            store!(dst, v);
                        }
                    },
                    Op::GetGlobal { dst, global } => match self.globals.get(global) {
                        Some(v) => {
                            let v = v.clone();
                            put(&mut reg!(dst), v);
                        }
                        None => fail!(ErrorKind::UndefinedVariable(
                            self.globals.name(global).to_string()
                        )),
                    },
                    Op::SetGlobal { global, src } => {
                        let v = reg!(src).clone();
                        self.globals.set(global, v);
                    }
                    Op::GetUpval { dst, upval } => {
                        let v = closure.captures[upval as usize].borrow().clone();
                        store!(dst, v);
                    }
                    Op::SetUpval { upval, src } => {
                        let v = reg!(src).clone();
                        *closure.captures[upval as usize].borrow_mut() = v;
                    }
                    Op::GetCell { dst, cell } => {
                        let v = self.cells[cell_base + cell as usize].borrow().clone();
                        store!(dst, v);
                    }
                    Op::SetCell { cell, src } => {
                        let v = reg!(src).clone();
                        *self.cells[cell_base + cell as usize].borrow_mut() = v;
                    }
                    Op::NewCell { cell, src } => {
                        let v = reg!(src).clone();
                        self.cells[cell_base + cell as usize] = Rc::new(RefCell::new(v));
                    }
                    Op::Closure { dst, func } => {
                        let child = &proto.children[func as usize];
                        let captures = child
                            .captures
                            .iter()
                            .map(|c| match *c {
                                Capture::Cell(c) => self.cells[cell_base + c as usize].clone(),
                                Capture::Upvalue(u) => closure.captures[u as usize].clone(),
                            })
                            .collect();
                        let f = Value::Func(Rc::new(Closure {
                            code: Code::Bytecode(child.clone()),
                            captures,
                        }));
                        store!(dst, f);
                    }
                    Op::NewArray { dst, first, count } => {
                        let start = first as usize;
                        let items = regs[start..start + count as usize].to_vec();
                        store!(dst, Value::array(items));
                    }
                    Op::NewRange {
                        dst,
                        start,
                        end,
                        inclusive,
                    } => {
                        let v = check!(crate::interp::make_range(
                            &reg!(start),
                            &reg!(end),
                            inclusive
                        ));
                        store!(dst, v);
                    }
                    Op::FString {
                        dst,
                        first,
                        template,
                    } => {
                        let mut out = String::new();
                        let mut hole = first as usize;
                        for part in &proto.templates[template as usize] {
                            match part {
                                TemplatePart::Lit(s) => out.push_str(s),
                                TemplatePart::Hole(spec) => {
                                    builtins::format_hole(&mut out, &regs[hole], spec);
                                    hole += 1;
                                }
                            }
                        }
                        store!(dst, Value::Str(Rc::new(out)));
                    }

                    Op::Add { dst, a, b } => arith!(dst, a, b, checked_add, +, ops::add, {
                        // `s = s + x` on an unshared string appends in place (tested after
                        // the number paths, which it would slow down).
                        if dst == a && matches!(reg!(a), Value::Str(_)) {
                            let y = reg!(b).clone();
                            check!(ops::add_in_place(&mut reg!(dst), &y));
                        } else {
                            fb!(a, b);
                            let v = check!(ops::add(&reg!(a), &reg!(b)));
                            store!(dst, v);
                        }
                    }),
                    Op::Sub { dst, a, b } => arith!(dst, a, b, checked_sub, -, ops::sub),
                    Op::Mul { dst, a, b } => arith!(dst, a, b, checked_mul, *, ops::mul),
                    Op::Div { dst, a, b } => {
                        fb!(a, b);
                        match (&reg!(a), &reg!(b)) {
                            (Value::Int(x), Value::Int(y)) => {
                                let r = check!(ops::int_div(*x, *y));
                                set_int(&mut reg!(dst), r)
                            }
                            (Value::Float(x), Value::Float(y)) => {
                                let r = x / y;
                                set_float(&mut reg!(dst), r)
                            }
                            (x, y) => {
                                let v = check!(ops::div(x, y));
                                store!(dst, v);
                            }
                        }
                    }
                    Op::Mod { dst, a, b } => {
                        fb!(a, b);
                        match (&reg!(a), &reg!(b)) {
                            (Value::Int(x), Value::Int(y)) => {
                                let r = check!(ops::int_rem(*x, *y));
                                set_int(&mut reg!(dst), r)
                            }
                            (x, y) => {
                                let v = check!(ops::rem(x, y));
                                store!(dst, v);
                            }
                        }
                    }
                    Op::Pow { dst, a, b } => {
                        fb!(a, b);
                        let v = check!(ops::pow(&reg!(a), &reg!(b)));
                        store!(dst, v);
                    }
                    Op::BitAnd { dst, a, b } => check!(bitwise(regs, ArithOp::BitAnd, dst, a, b)),
                    Op::BitOr { dst, a, b } => check!(bitwise(regs, ArithOp::BitOr, dst, a, b)),
                    Op::BitXor { dst, a, b } => check!(bitwise(regs, ArithOp::BitXor, dst, a, b)),
                    Op::Shl { dst, a, b } => check!(bitwise(regs, ArithOp::Shl, dst, a, b)),
                    Op::Shr { dst, a, b } => check!(bitwise(regs, ArithOp::Shr, dst, a, b)),
                    Op::Eq { dst, a, b } => {
                        fb!(a, b);
                        let v = match (&reg!(a), &reg!(b)) {
                            (Value::Int(x), Value::Int(y)) => x == y,
                            (x, y) => ops::equals(x, y),
                        };
                        set_bool(&mut reg!(dst), v);
                    }
                    Op::Ne { dst, a, b } => {
                        fb!(a, b);
                        let v = match (&reg!(a), &reg!(b)) {
                            (Value::Int(x), Value::Int(y)) => x != y,
                            (x, y) => !ops::equals(x, y),
                        };
                        set_bool(&mut reg!(dst), v);
                    }
                    Op::Lt { dst, a, b } => {
                        let v = compare!(a, b, <, std::cmp::Ordering::Less);
                        set_bool(&mut reg!(dst), v);
                    }
                    Op::Le { dst, a, b } => {
                        let v = compare!(a, b, <=, std::cmp::Ordering::Less | std::cmp::Ordering::Equal);
                        set_bool(&mut reg!(dst), v);
                    }
                    Op::Gt { dst, a, b } => {
                        let v = compare!(a, b, >, std::cmp::Ordering::Greater);
                        set_bool(&mut reg!(dst), v);
                    }
                    Op::Ge { dst, a, b } => {
                        let v = compare!(a, b, >=, std::cmp::Ordering::Greater | std::cmp::Ordering::Equal);
                        set_bool(&mut reg!(dst), v);
                    }
                    Op::AddI { dst, a, imm } => match &reg!(a) {
                        Value::Int(x) => {
                            fb_const!(INT_INT);
                            match x.checked_add(imm as i64) {
                                Some(r) => set_int(&mut reg!(dst), r),
                                None => fail!(ErrorKind::Overflow(ArithOp::Add)),
                            }
                        }
                        Value::Str(_) if dst == a => {
                            fb_imm!(a);
                            check!(ops::add_in_place(&mut reg!(dst), &Value::Int(imm as i64)));
                        }
                        x => {
                            let v = check!(ops::add(x, &Value::Int(imm as i64)));
                            fb_imm!(a);
                            store!(dst, v);
                        }
                    },
                    Op::SubI { dst, a, imm } => match &reg!(a) {
                        Value::Int(x) => {
                            fb_const!(INT_INT);
                            match x.checked_sub(imm as i64) {
                                Some(r) => set_int(&mut reg!(dst), r),
                                None => fail!(ErrorKind::Overflow(ArithOp::Sub)),
                            }
                        }
                        x => {
                            let v = check!(ops::sub(x, &Value::Int(imm as i64)));
                            fb_imm!(a);
                            store!(dst, v);
                        }
                    },
                    Op::MulI { dst, a, imm } => match &reg!(a) {
                        Value::Int(x) => {
                            fb_const!(INT_INT);
                            match x.checked_mul(imm as i64) {
                                Some(r) => set_int(&mut reg!(dst), r),
                                None => fail!(ErrorKind::Overflow(ArithOp::Mul)),
                            }
                        }
                        x => {
                            let v = check!(ops::mul(x, &Value::Int(imm as i64)));
                            fb_imm!(a);
                            store!(dst, v);
                        }
                    },
                    Op::ModI { dst, a, imm } => match &reg!(a) {
                        Value::Int(x) => {
                            fb_const!(INT_INT);
                            let r = check!(ops::int_rem(*x, imm as i64));
                            set_int(&mut reg!(dst), r)
                        }
                        x => {
                            let v = check!(ops::rem(x, &Value::Int(imm as i64)));
                            fb_imm!(a);
                            store!(dst, v);
                        }
                    },
                    Op::Neg { dst, a } => {
                        let v = check!(ops::unary(crate::syntax::ast::UnOp::Neg, &reg!(a)));
                        store!(dst, v);
                    }
                    Op::Not { dst, a } => {
                        let v = !reg!(a).is_truthy();
                        reg!(dst) = Value::Bool(v);
                    }
                    Op::BitNot { dst, a } => {
                        let v = check!(ops::unary(crate::syntax::ast::UnOp::BitNot, &reg!(a)));
                        store!(dst, v);
                    }

                    Op::Jump { target } => pc = target as usize,
                    Op::JumpIfFalse { cond, target } => {
                        if !reg!(cond).is_truthy() {
                            pc = target as usize;
                        }
                    }
                    Op::JumpIfTrue { cond, target } => {
                        if reg!(cond).is_truthy() {
                            pc = target as usize;
                        }
                    }
                    Op::JumpIfNotLt { a, b, target } => {
                        if !compare!(a, b, <, std::cmp::Ordering::Less) {
                            pc = target as usize;
                        }
                    }
                    Op::JumpIfNotLe { a, b, target } => {
                        if !compare!(a, b, <=, std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
                        {
                            pc = target as usize;
                        }
                    }
                    Op::JumpIfNotGt { a, b, target } => {
                        if !compare!(a, b, >, std::cmp::Ordering::Greater) {
                            pc = target as usize;
                        }
                    }
                    Op::JumpIfNotGe { a, b, target } => {
                        if !compare!(a, b, >=, std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
                        {
                            pc = target as usize;
                        }
                    }
                    Op::JumpIfNotEq { a, b, target } => {
                        fb!(a, b);
                        let eq = match (&reg!(a), &reg!(b)) {
                            (Value::Int(x), Value::Int(y)) => x == y,
                            (x, y) => ops::equals(x, y),
                        };
                        if !eq {
                            pc = target as usize;
                        }
                    }
                    Op::JumpIfNotNe { a, b, target } => {
                        fb!(a, b);
                        let eq = match (&reg!(a), &reg!(b)) {
                            (Value::Int(x), Value::Int(y)) => x == y,
                            (x, y) => ops::equals(x, y),
                        };
                        if eq {
                            pc = target as usize;
                        }
                    }
                    Op::JumpIfNotLtI { a, imm, target } => {
                        if !compare_imm!(a, imm, <, std::cmp::Ordering::Less) {
                            pc = target as usize;
                        }
                    }
                    Op::JumpIfNotLeI { a, imm, target } => {
                        if !compare_imm!(a, imm, <=, std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
                        {
                            pc = target as usize;
                        }
                    }
                    Op::JumpIfNotGtI { a, imm, target } => {
                        if !compare_imm!(a, imm, >, std::cmp::Ordering::Greater) {
                            pc = target as usize;
                        }
                    }
                    Op::JumpIfNotGeI { a, imm, target } => {
                        if !compare_imm!(a, imm, >=, std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
                        {
                            pc = target as usize;
                        }
                    }
                    Op::JumpIfNotEqI { a, imm, target } => {
                        fb_imm!(a);
                        let eq = match &reg!(a) {
                            Value::Int(x) => *x == imm as i64,
                            x => ops::equals(x, &Value::Int(imm as i64)),
                        };
                        if !eq {
                            pc = target as usize;
                        }
                    }
                    Op::JumpIfNotNeI { a, imm, target } => {
                        fb_imm!(a);
                        let eq = match &reg!(a) {
                            Value::Int(x) => *x == imm as i64,
                            x => ops::equals(x, &Value::Int(imm as i64)),
                        };
                        if eq {
                            pc = target as usize;
                        }
                    }

                    Op::LoopEnter { id } => {
                        flush_edges!();
                        if COUNT {
                            let l = &proto.counters.loops[id as usize];
                            l.entries.set(l.entries.get() + 1);
                            if let Some(t) = &mut self.timing {
                                let start = (Instant::now(), l.iterations.get());
                                let me = proto_of(&closure).clone();
                                t.loops.push((self.depth, me, id, start.0, start.1));
                            }
                        }
                    }
                    Op::LoopExit { id } => {
                        flush_edges!();
                        if COUNT {
                            if let Some(t) = &mut self.timing {
                                let mine = t.loops.last().is_some_and(|l| {
                                    l.0 == self.depth && l.2 == id && std::ptr::eq(&*l.1, proto)
                                });
                                if mine {
                                    let (_, _, _, start, at_entry) =
                                        t.loops.pop().expect("checked above");
                                    let l = &proto.counters.loops[id as usize];
                                    l.timed.set(l.timed.get() + start.elapsed());
                                    l.timed_iterations.set(
                                        l.timed_iterations.get() + l.iterations.get() - at_entry,
                                    );
                                }
                            }
                        }
                    }
                    Op::BackEdge { target, id } => {
                        if COUNT {
                            if id != edge_loop {
                                flush_edges!();
                                edge_loop = id;
                            }
                            edge_count += 1;
                            // On-stack replacement: a hot loop continues in compiled code,
                            // which finishes the whole frame.
                            if self.osr_threshold != 0 {
                                let loop_counters = &proto.counters.loops[id as usize];
                                let total = loop_counters.iterations.get() + edge_count;
                                if total >= self.osr_threshold {
                                    let header = target as usize;
                                    let entry = crate::tiering::osr_entry(
                                        self.jit.as_deref_mut(),
                                        self.globals,
                                        &regs[..num_regs],
                                        &closure,
                                        argc,
                                        header,
                                        total,
                                    );
                                    if let Some(entry) = entry {
                                        flush_edges!();
                                        let level = self.depth + self.level_offset;
                                        let v = self.call_compiled(entry, &closure, base, level)?;
                                        let window = base..base + num_regs;
                                        self.stack[window].iter_mut().for_each(clear);
                                        finish_frame!(value v);
                                    }
                                }
                            }
                        }
                        if self.limits.interrupted() {
                            fail!(ErrorKind::Interrupted);
                        }
                        pc = target as usize;
                    }
                    Op::ForRangePrep { base: b, inclusive } => match (&reg!(b), &reg!(b + 1)) {
                        (Value::Int(_), Value::Int(end)) => {
                            if inclusive {
                                let end = end.saturating_add(1);
                                store!(b + 1, Value::Int(end));
                            }
                        }
                        (s, e) => fail!(ErrorKind::Builtin(format!(
                            "Range bounds must be integers, got {} and {}",
                            s.type_of().name(),
                            e.type_of().name()
                        ))),
                    },
                    Op::ForRangeNext { base: b, var, exit } => {
                        let (Value::Int(i), Value::Int(end)) = (&reg!(b), &reg!(b + 1)) else {
                            unreachable!("FORRANGEPREP checked the bounds")
                        };
                        let (i, end) = (*i, *end);
                        if i >= end {
                            pc = exit as usize;
                        } else {
                            set_int(&mut reg!(var), i);
                            set_int(&mut reg!(b), i + 1);
                        }
                    }
                    Op::ForIterPrep { base: b } => {
                        let (start, end) = match &reg!(b) {
                            Value::Range(r) => (r.start, r.end_exclusive()),
                            Value::Array(a) => (0, a.len() as i64),
                            _ => fail!(ErrorKind::Builtin(
                                "For loop requires an iterable".to_string()
                            )),
                        };
                        store!(b + 1, Value::Int(start));
                        store!(b + 2, Value::Int(end));
                    }
                    Op::ForIterNext { base: b, var, exit } => {
                        let (Value::Int(i), Value::Int(end)) = (&reg!(b + 1), &reg!(b + 2)) else {
                            unreachable!("FORITERPREP set the bounds")
                        };
                        let (i, end) = (*i, *end);
                        if i >= end {
                            pc = exit as usize;
                        } else {
                            let v = match &reg!(b) {
                                Value::Array(a) => a[i as usize].clone(),
                                _ => Value::Int(i),
                            };
                            store!(var, v);
                            set_int(&mut reg!(b + 1), i + 1);
                        }
                    }

                    Op::Call { base: cb, argc: n } => {
                        let cb = cb as usize;
                        let callee_at = base + cb;
                        let callee = match &regs[cb] {
                            // The result will overwrite the callee's register: move it out.
                            Value::Func(_) => match std::mem::take(&mut regs[cb]) {
                                Value::Func(c) => c,
                                _ => unreachable!("matched a function"),
                            },
                            Value::Builtin(b) => {
                                let b: Builtin = *b;
                                let args = &regs[cb + 1..cb + 1 + n as usize];
                                let v = check!(b.call(args, self.out));
                                store!(cb, v);
                                continue;
                            }
                            other => fail!(ErrorKind::NotCallable(other.type_of())),
                        };
                        enter!(callee, callee_at, n);
                    }
                    Op::CallGlobal {
                        base: cb,
                        argc: n,
                        global,
                    } => {
                        let cb = cb as usize;
                        let callee_at = base + cb;
                        let callee = match self.globals.get(global) {
                            Some(Value::Func(c)) => c.clone(),
                            Some(Value::Builtin(b)) => {
                                let b: Builtin = *b;
                                let args = &regs[cb + 1..cb + 1 + n as usize];
                                let v = check!(b.call(args, self.out));
                                store!(cb, v);
                                continue;
                            }
                            Some(other) => fail!(ErrorKind::NotCallable(other.type_of())),
                            None => {
                                let name = self.globals.name(global).to_string();
                                let span = proto.callee_span(pc - 1);
                                flush_edges!();
                                return Err(Error::new(ErrorKind::UndefinedVariable(name), span));
                            }
                        };
                        enter!(callee, callee_at, n);
                    }
                    Op::Return { src } => {
                        if COUNT {
                            let (c, bit) = (&proto.counters, type_bit(&reg!(src)));
                            if c.return_types.get() & bit == 0 {
                                c.return_types.set(c.return_types.get() | bit);
                            }
                        }
                        // Clear the registers (only if one ever held a heap value): a stale
                        // copy of an array would make the caller's next write copy it.
                        if let Value::Int(i) = reg!(src) {
                            if heap {
                                regs[..num_regs].iter_mut().for_each(clear);
                            }
                            finish_frame!(int i);
                        }
                        let v = std::mem::take(&mut reg!(src));
                        if heap {
                            regs[..num_regs].iter_mut().for_each(clear);
                        }
                        finish_frame!(value v);
                    }
                    Op::ArgGiven { param, target } => {
                        if argc > param as usize {
                            pc = target as usize;
                        }
                    }

                    Op::GetIndex {
                        dst,
                        base: b,
                        index,
                    } => match (&reg!(b), &reg!(index)) {
                        (Value::Array(items), Value::Int(i))
                            if *i >= 0 && (*i as usize) < items.len() =>
                        {
                            match items[*i as usize] {
                                Value::Int(v) => set_int(&mut reg!(dst), v),
                                Value::Bool(v) => set_bool(&mut reg!(dst), v),
                                ref other => {
                                    let v = other.clone();
                                    store!(dst, v);
                                }
                            }
                        }
                        (x, i) => {
                            let v = check!(ops::index_get(x, i));
                            store!(dst, v);
                        }
                    },
                    Op::SetIndex {
                        base: b,
                        index,
                        src,
                    } => {
                        // Fast path: an int index in bounds and a scalar value, written into
                        // the array in place (copied first only if it is shared).
                        if let (Value::Int(i), v) = (&reg!(index), &reg!(src)) {
                            if !is_heap(v) {
                                let (i, v) = (*i, v.clone());
                                if let Value::Array(items) = &mut reg!(b) {
                                    if i >= 0 && (i as usize) < items.len() {
                                        let slot = &mut Rc::make_mut(items)[i as usize];
                                        match v {
                                            Value::Int(x) => set_int(slot, x),
                                            Value::Bool(x) => set_bool(slot, x),
                                            Value::Float(x) => set_float(slot, x),
                                            other => *slot = other,
                                        }
                                        continue;
                                    }
                                }
                            }
                        }
                        let i = reg!(index).clone();
                        let v = reg!(src).clone();
                        let slot = check!(ops::index_slot(&mut reg!(b), &i));
                        *slot = v;
                    }
                    Op::PlaceUpdate {
                        dst,
                        place,
                        first,
                        src,
                    } => {
                        let p = &proto.places[place as usize];
                        // Fast path: `xs.push(v)` on an array in a register.
                        if let (PlaceRoot::Reg(r), 0, PlaceOp::Push) = (p.root, p.depth, p.op) {
                            if matches!(reg!(r), Value::Array(_)) {
                                let v = reg!(src).clone();
                                if let Value::Array(items) = &mut reg!(r) {
                                    Rc::make_mut(items).push(v);
                                }
                                clear(&mut reg!(dst));
                                continue;
                            }
                        }
                        let v = check!(place::update(
                            &mut regs[..num_regs],
                            &mut self.cells,
                            self.globals,
                            p,
                            cell_base,
                            &closure,
                            first,
                            src
                        ));
                        store!(dst, v);
                    }
                    Op::CallMethod {
                        base: b,
                        argc: n,
                        method,
                    } => {
                        let Value::Str(name) = &proto.const_values[method as usize] else {
                            unreachable!("method names are string constants")
                        };
                        let start = b as usize;
                        let args = regs[start + 1..start + 1 + n as usize].to_vec();
                        let v = if builtins::is_mutating_method(name) {
                            let mut recv = regs[start].clone();
                            check!(builtins::call_mut_method(&mut recv, name, &args))
                        } else {
                            check!(builtins::call_method(&regs[start], name, &args))
                        };
                        store!(start, v);
                    }
                    Op::Fail { message } => {
                        let text = proto.const_values[message as usize].plain().to_string();
                        fail!(ErrorKind::Builtin(text));
                    }
                }
            }
        }
    }
}

fn bitwise(regs: &mut [Value], op: ArithOp, dst: u16, a: u16, b: u16) -> Result<(), ErrorKind> {
    let v = ops::bitwise(op, &regs[a as usize], &regs[b as usize])?;
    regs[dst as usize] = v;
    Ok(())
}
