//! Type inference over a function's bytecode, for one argument signature.
//!
//! Every register at every instruction gets a `Ty`: `Int`, `Float` or `Bool` means the
//! value is known to be of that type there, and compiled code keeps it unboxed in a
//! Cranelift variable; `Boxed` means "any value", kept as a `Value` in the frame's
//! registers in memory (the same window the VM would use). Facts come from the signature,
//! from constants, from the operators' result types, and from the profile where the
//! bytecode alone does not tell: the type feedback of an arithmetic instruction, the type
//! a global holds, the type a callee returns. Those are speculation, and compiled code
//! guards them (`Plan::GuardInt`, `Plan::Global`, the result check after a call).
//!
//! `decide` is the one place that chooses how an instruction is compiled; inference and
//! translation both call it with the same state, so they cannot disagree.

use std::collections::HashMap;
use std::rc::Rc;

use crate::bytecode::dataflow::{defs, successors, uses};
use crate::bytecode::op::{Op, Reg};
use crate::bytecode::proto::{Const, Proto};
use crate::function::Closure;
use crate::profile::SigKey;
use crate::value::Type;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    /// Not live here (or, while inferring a self-recursive result, not known yet).
    Dead,
    Int,
    Float,
    Bool,
    /// Any value, boxed in the frame's register window.
    Boxed,
}

impl Ty {
    pub fn join(self, other: Ty) -> Ty {
        match (self, other) {
            (Ty::Dead, t) | (t, Ty::Dead) => t,
            (a, b) if a == b => a,
            _ => Ty::Boxed,
        }
    }

    pub fn is_unboxed(self) -> bool {
        matches!(self, Ty::Int | Ty::Float | Ty::Bool)
    }

    /// The type a value of runtime type `t` has in compiled code.
    pub fn of_type(t: Type) -> Ty {
        match t {
            Type::Int => Ty::Int,
            Type::Float => Ty::Float,
            Type::Bool => Ty::Bool,
            _ => Ty::Boxed,
        }
    }

    /// The runtime type of an unboxed `Ty`.
    pub fn runtime_type(self) -> Option<Type> {
        match self {
            Ty::Int => Some(Type::Int),
            Ty::Float => Some(Type::Float),
            Ty::Bool => Some(Type::Bool),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Ty::Dead => "dead",
            Ty::Int => "int",
            Ty::Float => "float",
            Ty::Bool => "bool",
            Ty::Boxed => "any",
        }
    }
}

/// A callee known when compiling a `CALLGLOBAL`: the function the global held then.
pub struct Callee {
    pub closure: Rc<Closure>,
    pub proto: Rc<Proto>,
    /// Result types inferred for the callee's signatures when it is not compiled yet.
    pub hints: std::cell::RefCell<HashMap<SigKey, Ty>>,
}

/// How one instruction is compiled.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// Inline code on unboxed values.
    Native,
    /// Boxed operands are guarded to be ints (the profile saw only ints), then inline code.
    GuardInt,
    /// The same with floats.
    GuardFloat,
    /// The VM runs this one instruction on the boxed registers (`rt_step`).
    Step,
    /// Reads a global speculated to hold a value of this type (guarded).
    Global(Ty),
    /// A call of a known compiled-or-compilable function with unboxed arguments.
    FastCall {
        /// The callee's signature (argument types).
        key: SigKey,
        /// A direct call of the function being compiled.
        direct: bool,
        /// The result type expected (guarded after the call), `Boxed` for any.
        result: Ty,
    },
}

/// What the compiler knows besides the bytecode, fixed for one compilation.
pub struct Env<'a> {
    pub proto: &'a Proto,
    /// The closure being compiled (self-calls through its global are direct).
    pub closure: &'a Rc<Closure>,
    pub key: SigKey,
    pub argc: usize,
    pub params: Vec<Ty>,
    /// The profile's type feedback per instruction (a snapshot).
    pub feedback: Vec<u32>,
    /// Globals whose current value has an unboxed type, speculated to keep it.
    pub global_types: HashMap<u32, Ty>,
    /// Whether compiled code may read and write globals in place (see
    /// `Globals::layout_is_value`).
    pub globals_in_place: bool,
    /// `CALLGLOBAL` instructions (by pc) whose callee is known.
    pub callees: HashMap<usize, Callee>,
    /// The result type assumed for a direct self-call.
    pub self_result: Ty,
    /// For an OSR entry: the loop header where compiled code starts and the types of the
    /// VM frame's registers there (else compiled code starts at pc 0 with `params`).
    pub osr: Option<(usize, Vec<Ty>)>,
    /// Whether loops may assume small ints behind range guards (`jit::range`); off once
    /// such a guard failed in this function.
    pub range_guards: bool,
}

const INT_BIT: u32 = 1 << 2;
const FLOAT_BIT: u32 = 1 << 3;
const INT_INT: u32 = INT_BIT | INT_BIT << 8;
const FLOAT_FLOAT: u32 = FLOAT_BIT | FLOAT_BIT << 8;

impl Env<'_> {
    /// The result type to expect from calling `callee` with signature `key`.
    fn call_result(&self, callee: &Callee, key: SigKey) -> Ty {
        if Rc::ptr_eq(&callee.closure, self.closure) && key == self.key {
            return self.self_result;
        }
        if let Some(t) = callee.proto.jit.return_type(key) {
            return t;
        }
        if let Some(&t) = callee.hints.borrow().get(&key) {
            if t != Ty::Boxed {
                return t;
            }
        }
        // The profile: one return type seen so far.
        let bits = callee.proto.counters.return_types.get();
        if bits.count_ones() == 1 {
            return Ty::of_type(Type::from_index(bits.trailing_zeros() as u8).unwrap_or(Type::Nil));
        }
        Ty::Boxed
    }

    fn arith(&self, pc: usize, a: Ty, b: Ty) -> (Plan, Ty) {
        use Ty::*;
        match (a, b) {
            // Only while guessing what a self-call returns: unknown in, unknown out.
            (Dead, _) | (_, Dead) if self.self_result == Dead => (Plan::Native, Dead),
            (Int, Int) => (Plan::Native, Int),
            (Int | Float, Int | Float) => (Plan::Native, Float),
            _ => {
                let fb = self.feedback[pc];
                let int_or_boxed = |t: Ty| matches!(t, Int | Boxed | Dead);
                let float_or_boxed = |t: Ty| matches!(t, Float | Boxed | Dead);
                // Without feedback (compiled before the VM ran it), a boxed operand next to
                // an int or a float is speculated to be one too.
                let unseen = fb == 0;
                let int_guess = unseen && matches!((a, b), (Int, Boxed) | (Boxed, Int));
                let float_guess = unseen && matches!((a, b), (Float, Boxed) | (Boxed, Float));
                if (fb == INT_INT || int_guess) && int_or_boxed(a) && int_or_boxed(b) {
                    (Plan::GuardInt, Int)
                } else if (fb == FLOAT_FLOAT || float_guess)
                    && float_or_boxed(a)
                    && float_or_boxed(b)
                {
                    (Plan::GuardFloat, Float)
                } else {
                    (Plan::Step, Boxed)
                }
            }
        }
    }

    /// Integer-only operators (bitwise, int modulo): native on ints, else speculated
    /// ints or the VM.
    fn int_only(&self, pc: usize, a: Ty, b: Ty) -> (Plan, Ty) {
        match self.arith(pc, a, b) {
            (Plan::Native, Ty::Int) => (Plan::Native, Ty::Int),
            (Plan::GuardInt, t) => (Plan::GuardInt, t),
            _ => (Plan::Step, Ty::Boxed),
        }
    }

    /// Comparisons: native on numbers (and `==`/`!=` on any two unboxed values).
    fn compare(&self, pc: usize, a: Ty, b: Ty, equality: bool) -> Plan {
        use Ty::*;
        match (a, b) {
            (Int | Float, Int | Float) => Plan::Native,
            (x, y) if equality && x.is_unboxed() && y.is_unboxed() => Plan::Native,
            _ => match self.arith(pc, a, b).0 {
                p @ (Plan::GuardInt | Plan::GuardFloat) => p,
                _ => Plan::Step,
            },
        }
    }

    /// Chooses how the instruction at `pc` is compiled, given the types before it, and
    /// the types it writes.
    pub fn decide(&self, pc: usize, state: &[Ty]) -> (Plan, Vec<(Reg, Ty)>) {
        use Op::*;
        let op = self.proto.code[pc];
        let t = |r: Reg| state[r as usize];
        let one = |plan: Plan, dst: Reg, ty: Ty| (plan, vec![(dst, ty)]);
        match op {
            LoadNil { dst } => one(Plan::Native, dst, Ty::Boxed),
            LoadBool { dst, .. } => one(Plan::Native, dst, Ty::Bool),
            LoadInt { dst, .. } => one(Plan::Native, dst, Ty::Int),
            LoadConst { dst, k } => match self.proto.consts[k as usize] {
                Const::Int(_) => one(Plan::Native, dst, Ty::Int),
                Const::Float(_) => one(Plan::Native, dst, Ty::Float),
                Const::Str(_) => one(Plan::Step, dst, Ty::Boxed),
            },
            Move { dst, src } if t(src).is_unboxed() => one(Plan::Native, dst, t(src)),
            SetGlobal { src, .. } if t(src).is_unboxed() && self.globals_in_place => {
                (Plan::Native, vec![])
            }
            GetGlobal { dst, global } => match self.global_types.get(&global) {
                Some(&ty) => one(Plan::Global(ty), dst, ty),
                None => one(Plan::Step, dst, Ty::Boxed),
            },
            Add { dst, a, b } | Sub { dst, a, b } | Mul { dst, a, b } | Div { dst, a, b } => {
                let (plan, ty) = self.arith(pc, t(a), t(b));
                one(plan, dst, ty)
            }
            AddI { dst, a, .. } | SubI { dst, a, .. } | MulI { dst, a, .. } => {
                let (plan, ty) = self.arith(pc, t(a), Ty::Int);
                one(plan, dst, ty)
            }
            Mod { dst, a, b }
            | BitAnd { dst, a, b }
            | BitOr { dst, a, b }
            | BitXor { dst, a, b }
            | Shl { dst, a, b }
            | Shr { dst, a, b } => {
                let (plan, ty) = self.int_only(pc, t(a), t(b));
                one(plan, dst, ty)
            }
            ModI { dst, a, .. } => {
                let (plan, ty) = self.int_only(pc, t(a), Ty::Int);
                one(plan, dst, ty)
            }
            Neg { dst, a } if matches!(t(a), Ty::Int | Ty::Float) => one(Plan::Native, dst, t(a)),
            BitNot { dst, a } if t(a) == Ty::Int => one(Plan::Native, dst, Ty::Int),
            Not { dst, .. } => one(Plan::Native, dst, Ty::Bool),
            Eq { dst, a, b } | Ne { dst, a, b } => match self.compare(pc, t(a), t(b), true) {
                Plan::Step => one(Plan::Step, dst, Ty::Boxed),
                plan => one(plan, dst, Ty::Bool),
            },
            Lt { dst, a, b } | Le { dst, a, b } | Gt { dst, a, b } | Ge { dst, a, b } => {
                match self.compare(pc, t(a), t(b), false) {
                    Plan::Step => one(Plan::Step, dst, Ty::Boxed),
                    plan => one(plan, dst, Ty::Bool),
                }
            }
            JumpIfNotEq { a, b, .. } | JumpIfNotNe { a, b, .. } => {
                (self.compare(pc, t(a), t(b), true), vec![])
            }
            JumpIfNotLt { a, b, .. }
            | JumpIfNotLe { a, b, .. }
            | JumpIfNotGt { a, b, .. }
            | JumpIfNotGe { a, b, .. } => (self.compare(pc, t(a), t(b), false), vec![]),
            JumpIfNotEqI { a, .. } | JumpIfNotNeI { a, .. } => {
                (self.compare(pc, t(a), Ty::Int, true), vec![])
            }
            JumpIfNotLtI { a, .. }
            | JumpIfNotLeI { a, .. }
            | JumpIfNotGtI { a, .. }
            | JumpIfNotGeI { a, .. } => (self.compare(pc, t(a), Ty::Int, false), vec![]),
            Jump { .. } | JumpIfFalse { .. } | JumpIfTrue { .. } => (Plan::Native, vec![]),
            LoopEnter { .. } | LoopExit { .. } | BackEdge { .. } | ArgGiven { .. } => {
                (Plan::Native, vec![])
            }
            Return { .. } => (Plan::Native, vec![]),
            ForRangePrep { base, .. } if t(base) == Ty::Int && t(base + 1) == Ty::Int => {
                (Plan::Native, vec![(base + 1, Ty::Int)])
            }
            ForRangeNext { base, var, .. } if t(base) == Ty::Int && t(base + 1) == Ty::Int => {
                (Plan::Native, vec![(var, Ty::Int), (base, Ty::Int)])
            }
            CallGlobal { base, argc, .. } => {
                let args: Vec<Ty> = (0..argc as Reg).map(|i| t(base + 1 + i)).collect();
                if self.self_result == Ty::Dead && args.contains(&Ty::Dead) {
                    // Only while guessing what a self-call returns: not known yet.
                    return one(Plan::Step, base, Ty::Dead);
                }
                let types: Option<Vec<Type>> = args.iter().map(|a| a.runtime_type()).collect();
                let key = types.and_then(|ts| crate::profile::key_of_types(&ts));
                match (self.callees.get(&pc), key) {
                    (Some(callee), Some(key)) => {
                        let direct = Rc::ptr_eq(&callee.closure, self.closure) && key == self.key;
                        let result = self.call_result(callee, key);
                        let plan = Plan::FastCall {
                            key,
                            direct,
                            result,
                        };
                        one(plan, base, result)
                    }
                    _ => one(Plan::Step, base, Ty::Boxed),
                }
            }
            // Everything else runs in the VM, one instruction at a time; what it writes is
            // boxed.
            _ => {
                let writes = defs(&op, self.proto)
                    .into_iter()
                    .map(|r| (r, Ty::Boxed))
                    .collect();
                (Plan::Step, writes)
            }
        }
    }
}

/// Registers live before each instruction, as bitsets.
pub struct Liveness {
    words: usize,
    live_in: Vec<u64>,
}

impl Liveness {
    pub fn compute(proto: &Proto, argc: usize) -> Liveness {
        let n = proto.code.len();
        let words = (proto.num_regs as usize).div_ceil(64).max(1);
        let mut live_in = vec![0u64; n * words];
        let facts: Vec<(Vec<Reg>, Vec<Reg>, Vec<usize>)> = (0..n)
            .map(|pc| {
                let op = &proto.code[pc];
                (uses(op, proto), defs(op, proto), successors(op, pc, argc))
            })
            .collect();
        let mut changed = true;
        let mut out = vec![0u64; words];
        while changed {
            changed = false;
            for pc in (0..n).rev() {
                let (u, d, succ) = &facts[pc];
                out.iter_mut().for_each(|w| *w = 0);
                for &s in succ {
                    if s < n {
                        for w in 0..words {
                            out[w] |= live_in[s * words + w];
                        }
                    }
                }
                for &r in d {
                    out[r as usize / 64] &= !(1 << (r % 64));
                }
                for &r in u {
                    out[r as usize / 64] |= 1 << (r % 64);
                }
                let slot = &mut live_in[pc * words..(pc + 1) * words];
                if slot != out.as_slice() {
                    slot.copy_from_slice(&out);
                    changed = true;
                }
            }
        }
        Liveness { words, live_in }
    }

    /// The most registers live before any one instruction.
    pub fn max_live(&self) -> usize {
        self.live_in
            .chunks(self.words)
            .map(|ws| ws.iter().map(|w| w.count_ones() as usize).sum())
            .max()
            .unwrap_or(0)
    }

    pub fn is_live(&self, pc: usize, r: usize) -> bool {
        self.live_in
            .get(pc * self.words + r / 64)
            .is_some_and(|w| w & (1 << (r % 64)) != 0)
    }
}

/// The inferred types before every reachable instruction (`None`: unreachable), and the
/// join of the types returned.
pub struct Types {
    pub states: Vec<Option<Vec<Ty>>>,
    pub returns: Ty,
}

pub fn infer(env: &Env, live: &Liveness) -> Types {
    let proto = env.proto;
    let n = proto.code.len();
    let regs = proto.num_regs as usize;
    let mut states: Vec<Option<Vec<Ty>>> = vec![None; n];
    let mut entry = vec![Ty::Dead; regs];
    for (r, slot) in entry.iter_mut().enumerate() {
        if r < env.argc {
            *slot = env.params[r];
        } else if r < proto.num_locals as usize {
            // Locals start as nil (in memory).
            *slot = Ty::Boxed;
        }
    }
    let start = match &env.osr {
        Some((header, types)) => {
            entry = types.clone();
            *header
        }
        None => 0,
    };
    let mut work = vec![start];
    states[start] = Some(mask(entry, live, start));
    let mut returns = Ty::Dead;
    while let Some(pc) = work.pop() {
        let mut state = states[pc].clone().expect("queued states are set");
        let op = proto.code[pc];
        if let Op::Return { src } = op {
            returns = returns.join(state[src as usize]);
            continue;
        }
        let (_, writes) = env.decide(pc, &state);
        for (r, ty) in writes {
            state[r as usize] = ty;
        }
        for s in successors(&op, pc, env.argc) {
            if s >= n {
                continue;
            }
            let incoming = mask(state.clone(), live, s);
            let merged = match &states[s] {
                None => incoming,
                Some(old) => old.iter().zip(&incoming).map(|(a, b)| a.join(*b)).collect(),
            };
            if states[s].as_ref() != Some(&merged) {
                states[s] = Some(merged);
                work.push(s);
            }
        }
    }
    Types { states, returns }
}

/// Forgets the types of registers that are dead at `pc`.
fn mask(mut state: Vec<Ty>, live: &Liveness, pc: usize) -> Vec<Ty> {
    for (r, t) in state.iter_mut().enumerate() {
        if !live.is_live(pc, r) {
            *t = Ty::Dead;
        }
    }
    state
}
