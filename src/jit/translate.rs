//! Bytecode to Cranelift IR, for one function and one argument signature.
//!
//! The compiled function works on the same register window a VM frame of it would use
//! (`regs`, inside the VM's register stack). Registers whose type is known (see `infer`)
//! live unboxed in Cranelift variables and are written to the window ("spilled") only
//! when something else needs them there: an instruction left to the VM (`rt_step`), or a
//! deoptimization (`rt_resume`), which hands the frame to the VM at the same bytecode
//! instruction. So every exit from fast code lands in a frame the VM can run as is.
//!
//! Calling convention of a compiled body:
//! `fn(ctx, closure, regs, level, unboxed args..) -> (tag, payload)`, where `level` is the
//! frame's call depth, the unboxed arguments are those of type int (i64), float (f64) and
//! bool (i8), boxed arguments are already in the window, and the result is a `Value`'s tag
//! and payload, or `TAG_ERROR` when an error is pending in the VM.

use cranelift_codegen::ir::condcodes::{CondCode, FloatCC, IntCC};
use cranelift_codegen::ir::types::{F64, I64, I8};
use cranelift_codegen::ir::{
    AbiParam, Block, FuncRef, InstBuilder, InstructionData, MemFlagsData, Opcode, SigRef,
    Signature, StackSlot, StackSlotData, StackSlotKind, Value as ClValue, ValueDef,
};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::{FunctionBuilder, Variable};
use std::rc::Rc;

use crate::bytecode::dataflow::{successors, uses};
use crate::bytecode::op::{Op, Reg};
use crate::bytecode::proto::Const;
use crate::jit::infer::{Env, Liveness, Plan, Ty, Types};
use crate::jit::range::{self, Check, Ranges};
use crate::jit::runtime::{self, offsets, TAG_ERROR};
use crate::value::Type;

pub use accumulate::{accumulated_calls, depth_measure, threaded_terms};

mod accumulate;
mod arith;
mod arrays;
mod calls;
mod deopt;
mod entry;
mod layout;

/// Helper functions as seen from the function being built.
pub struct HelperRefs {
    pub step: FuncRef,
    pub resume: FuncRef,
    pub drop_slot: FuncRef,
    pub return_boxed: FuncRef,
    pub clear: FuncRef,
    pub binary: FuncRef,
    pub get_index: FuncRef,
    pub set_index: FuncRef,
    pub push: FuncRef,
    pub copy: FuncRef,
    pub tier_up: FuncRef,
}

/// What a fast call site needs that `infer` does not know: where the callee is.
#[derive(Clone, Copy)]
pub enum CallTarget {
    Direct(FuncRef),
    /// The address of the code-table slot for (callee, signature) and the closure pointer.
    Slot {
        slot: usize,
        sig: SigRef,
    },
}

#[derive(Clone, Copy)]
pub struct FastCallSite {
    pub target: CallTarget,
    pub closure: usize,
    /// The callee's register count (its window must be initialized before the call).
    pub callee_regs: u16,
}

/// What the translator knows about one function it translates, the compiled function
/// itself or a callee inlined into it; all of it is worked out before translation starts.
pub struct Analysis<'a> {
    pub env: Env<'a>,
    pub types: Types,
    pub live: Liveness,
    /// The overflow checks loop bounds prove away, and the loop-entry guards the proofs
    /// need (`jit::range`).
    pub ranges: Ranges,
    /// Fast call sites by pc (see `FastCallSite`).
    pub calls: std::collections::HashMap<usize, FastCallSite>,
    /// Call sites whose callee is translated inline: pc -> index of the callee's analysis
    /// (in the list the translator is given).
    pub inline: std::collections::HashMap<usize, usize>,
    /// Whether the frame ever keeps a value in its window (then it is cleared on return).
    pub uses_window: bool,
    /// Self-calls (by pc) that loop back to the start with a running sum (tier 2,
    /// `accumulate`).
    pub accumulated: Vec<usize>,
    /// A parameter that bounds the recursion's depth, with its bound (`accumulate`).
    pub measure: Option<(Reg, i64)>,
    /// Self-calls whose result goes into the sum of an accumulated call as it returns:
    /// (their pc, the accumulated call's pc) (`accumulate`).
    pub threaded: Vec<(usize, usize)>,
}

impl<'a> Analysis<'a> {
    pub fn new(
        env: Env<'a>,
        types: Types,
        live: Liveness,
        calls: std::collections::HashMap<usize, FastCallSite>,
    ) -> Self {
        let mut uses_window = false;
        for (pc, state) in types.states.iter().enumerate() {
            if let Some(state) = state {
                let plan = env.decide(pc, state).0;
                if plan == Plan::Step
                    || state.contains(&Ty::Boxed)
                    || matches!(env.proto.code[pc], Op::LoadNil { .. })
                {
                    uses_window = true;
                }
            }
        }
        let ranges = range::analyze(&env, &types);
        Analysis {
            env,
            types,
            live,
            ranges,
            calls,
            inline: std::collections::HashMap::new(),
            uses_window,
            accumulated: Vec::new(),
            measure: None,
            threaded: Vec::new(),
        }
    }
}

pub struct Settings {
    pub max_depth: usize,
    pub interrupt_flag: usize,
    pub epoch: u64,
    pub epoch_addr: usize,
    pub deopt_stress: u32,
    /// How many levels of direct self-calls are inlined (bounded unrolling of
    /// self-recursion; 0 in tier 1).
    pub inline_depth: usize,
    /// Where arrays keep their parts, if measured (`runtime::ArrayLayout`): then array
    /// reads, writes and pushes are done in place when they can be.
    pub array: Option<runtime::ArrayLayout>,
    /// Tier-1 code that counts its calls: the address of its `runtime::TierUp` and the
    /// threshold past which it moves to tier 2.
    pub tier_up: Option<(usize, i64)>,
}

/// What belongs to one activation being translated: the outermost function, or a
/// self-call inlined into it, which works on the callee's window (`regs`), one level
/// deeper, with its own blocks and variables, and leaves by jumping to the call's
/// continuation (`exit`) instead of returning.
struct FrameParts<'a> {
    an: &'a Analysis<'a>,
    closure: ClValue,
    blocks: Vec<Option<Block>>,
    vars: Vec<[Variable; 3]>,
    regs: ClValue,
    level: ClValue,
    hoisted: std::collections::HashMap<usize, (usize, Variable, Variable, bool)>,
    arrays: arrays::ArrayHoisting,
    exit: Option<Block>,
    typed_exit: Option<(Block, Ty)>,
    restart: Option<Vec<ClValue>>,
    deopt_exit: Option<Block>,
    accumulator: Option<accumulate::Accumulator>,
}

const TAG_NIL: i64 = 0;

pub fn tag_of(ty: Ty) -> i64 {
    match ty {
        Ty::Bool => Type::Bool.index() as i64,
        Ty::Int => Type::Int.index() as i64,
        Ty::Float => Type::Float.index() as i64,
        _ => unreachable!("only unboxed types have a fixed tag"),
    }
}

pub fn cl_type(ty: Ty) -> cranelift_codegen::ir::Type {
    match ty {
        Ty::Int => I64,
        Ty::Float => F64,
        Ty::Bool => I8,
        _ => unreachable!("only unboxed types live in variables"),
    }
}

/// The signature of a compiled body for these argument types.
pub fn body_signature(params: &[Ty], call_conv: CallConv) -> Signature {
    let mut sig = Signature::new(call_conv);
    for _ in 0..4 {
        sig.params.push(AbiParam::new(I64));
    }
    for p in params.iter().filter(|p| p.is_unboxed()) {
        sig.params.push(AbiParam::new(cl_type(*p)));
    }
    sig.returns.push(AbiParam::new(I64));
    sig.returns.push(AbiParam::new(I64));
    sig
}

/// One Cranelift variable per register and unboxed type (int, float, bool) for one
/// activation.
fn register_vars(b: &mut FunctionBuilder, regs: usize) -> Vec<[Variable; 3]> {
    (0..regs)
        .map(|_| [b.declare_var(I64), b.declare_var(F64), b.declare_var(I8)])
        .collect()
}

fn flags() -> MemFlagsData {
    MemFlagsData::trusted()
}

pub struct Translator<'a, 'b> {
    pub b: FunctionBuilder<'b>,
    /// The compiled function's analysis first, then those of the callees inlined into it.
    analyses: &'a [Analysis<'a>],
    /// The analysis of the activation being translated.
    an: &'a Analysis<'a>,
    pub helpers: HelperRefs,
    pub settings: &'a Settings,
    blocks: Vec<Option<Block>>,
    vars: Vec<[Variable; 3]>,
    ctx: ClValue,
    /// The closure of the activation being translated (handed to the VM's helpers).
    closure: ClValue,
    /// The compiled function's own closure: a deopt anywhere in its code, inlined callees
    /// included, drops that code.
    owner: ClValue,
    regs: ClValue,
    level: ClValue,
    fn_params: Vec<ClValue>,
    /// The buffer unboxed registers are handed to helpers in (made on first use), and how
    /// many registers it holds (the most that are ever live at once).
    spill_slot: Option<StackSlot>,
    spill_capacity: usize,
    /// Loop-invariant int multiplications computed once at their loop's entry:
    /// pc -> (the `LOOPENTER` pc, product and overflow variables, whether an OSR entry
    /// jumps into that loop, and then computes them too).
    hoisted: std::collections::HashMap<usize, (usize, Variable, Variable, bool)>,
    /// Arrays a loop's entry checks and reads once (`arrays`).
    arrays: arrays::ArrayHoisting,
    /// How many array accesses and arrays that was, over every activation translated.
    pub hoisted_array_accesses: usize,
    pub hoisted_arrays: usize,
    /// Where the activation being translated leaves: `None` returns from the function;
    /// an inlined call jumps to its continuation with `(tag, payload)`.
    exit: Option<Block>,
    /// In an inlined call whose caller expects an unboxed type: where a return of that
    /// type goes with the unboxed value, skipping the caller's check of the result's tag.
    typed_exit: Option<(Block, Ty)>,
    /// In a peeled activation (`calls::fast_call`): the arguments it was called with. Its
    /// first self-call makes the real call of the activation itself, with these.
    restart: Option<Vec<ClValue>>,
    /// The activation's one call of `rt_resume`, which its deopts jump to (`shared_deopt`).
    deopt_exit: Option<Block>,
    /// In an activation that loops at its accumulated self-calls: the running sum and
    /// level (`accumulate`).
    accumulator: Option<accumulate::Accumulator>,
    /// What restarting a compiled call with accumulator loops needs (`accumulate`).
    restart_point: Option<accumulate::Restart>,
    /// Set by an if-converted branch (`convert_if`): where translation goes on.
    continue_at: Option<usize>,
    /// Inlined self-calls around the activation being translated.
    inline_level: usize,
    /// The checks before an inlined self-call (epoch, depth) run once at the entry instead
    /// (`calls_only_itself`).
    call_checks_at_entry: bool,
    /// The same for the callees inlined at the top level of a function that inlines only
    /// leaves (`inlines_only_leaves`), OSR entries included.
    leaf_checks_at_entry: bool,
    /// Self-calls inlined so far (for `:ir` and the events).
    pub inlined: usize,
    /// Real self-calls peeled so far (their callee's start translated inline).
    pub peeled: usize,
    /// Accumulated self-calls translated as back edges so far.
    pub accumulated: usize,
    /// Other callees inlined so far: (callee name, line of the call).
    pub inlined_callees: Vec<(String, u32)>,
    /// Back edges translated with their loop's test, and branches if-converted, so far
    /// (`layout`).
    pub rotated_loops: usize,
    pub if_converted: usize,
    /// Every exit to the VM in the code (their addresses are in it: they must live as long).
    pub exits: Vec<Box<runtime::ExitSite>>,
}

impl<'a, 'b> Translator<'a, 'b> {
    pub fn new(
        mut b: FunctionBuilder<'b>,
        analyses: &'a [Analysis<'a>],
        helpers: HelperRefs,
        settings: &'a Settings,
    ) -> Self {
        let an = &analyses[0];
        let env = &an.env;
        let regs = env.proto.num_regs as usize;
        let vars = register_vars(&mut b, regs);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let params = b.block_params(entry).to_vec();
        // A function without captures behaves the same in every closure of it, so the VM
        // can be handed the one compiled against: the parameter is then dead, which frees
        // a register across calls.
        let closure = if env.proto.captures.is_empty() {
            b.ins().iconst(I64, Rc::as_ptr(env.closure) as i64)
        } else {
            params[1]
        };
        let spill_capacity = analyses
            .iter()
            .map(|a| a.live.max_live().min(a.env.proto.num_regs as usize))
            .max()
            .unwrap_or(0);
        Translator {
            b,
            analyses,
            an,
            helpers,
            settings,
            blocks: vec![None; env.proto.code.len() + 1],
            vars,
            ctx: params[0],
            closure,
            owner: closure,
            regs: params[2],
            level: params[3],
            fn_params: params,
            spill_slot: None,
            spill_capacity,
            hoisted: std::collections::HashMap::new(),
            arrays: Default::default(),
            hoisted_array_accesses: 0,
            hoisted_arrays: 0,
            exit: None,
            typed_exit: None,
            restart: None,
            deopt_exit: None,
            accumulator: None,
            restart_point: None,
            continue_at: None,
            inline_level: 0,
            call_checks_at_entry: settings.inline_depth > 0
                && env.osr.is_none()
                && calls::calls_only_itself(an),
            leaf_checks_at_entry: !an.inline.is_empty() && calls::inlines_only_leaves(an, analyses),
            inlined: 0,
            peeled: 0,
            accumulated: 0,
            inlined_callees: Vec::new(),
            rotated_loops: 0,
            if_converted: 0,
            exits: Vec::new(),
        }
    }

    /// Switches to translating another activation; returns the one that was current.
    fn swap_frame(&mut self, frame: FrameParts<'a>) -> FrameParts<'a> {
        FrameParts {
            an: std::mem::replace(&mut self.an, frame.an),
            closure: std::mem::replace(&mut self.closure, frame.closure),
            blocks: std::mem::replace(&mut self.blocks, frame.blocks),
            vars: std::mem::replace(&mut self.vars, frame.vars),
            regs: std::mem::replace(&mut self.regs, frame.regs),
            level: std::mem::replace(&mut self.level, frame.level),
            hoisted: std::mem::replace(&mut self.hoisted, frame.hoisted),
            arrays: std::mem::replace(&mut self.arrays, frame.arrays),
            exit: std::mem::replace(&mut self.exit, frame.exit),
            typed_exit: std::mem::replace(&mut self.typed_exit, frame.typed_exit),
            restart: std::mem::replace(&mut self.restart, frame.restart),
            deopt_exit: std::mem::replace(&mut self.deopt_exit, frame.deopt_exit),
            accumulator: std::mem::replace(&mut self.accumulator, frame.accumulator),
        }
    }

    /// Leaves the activation with `(tag, payload)`: returns from the function, or, in an
    /// inlined call, continues after the call.
    fn leave(&mut self, result: &[ClValue]) {
        match self.exit {
            None => {
                self.b.ins().return_(result);
            }
            Some(cont) => {
                let args = [result[0].into(), result[1].into()];
                self.b.ins().jump(cont, &args);
            }
        }
    }

    fn var(&self, r: Reg, ty: Ty) -> Variable {
        let v = &self.vars[r as usize];
        match ty {
            Ty::Int => v[0],
            Ty::Float => v[1],
            Ty::Bool => v[2],
            _ => unreachable!("only unboxed types live in variables"),
        }
    }

    fn get(&mut self, r: Reg, ty: Ty) -> ClValue {
        let var = self.var(r, ty);
        self.b.use_var(var)
    }

    fn set(&mut self, r: Reg, ty: Ty, v: ClValue) {
        let var = self.var(r, ty);
        self.b.def_var(var, v);
    }

    fn iconst(&mut self, v: i64) -> ClValue {
        self.b.ins().iconst(I64, v)
    }

    fn slot_offset(r: Reg) -> i32 {
        r as i32 * 16
    }

    fn load_tag(&mut self, r: Reg) -> ClValue {
        self.b
            .ins()
            .load(I64, flags(), self.regs, Self::slot_offset(r))
    }

    fn load_payload(&mut self, r: Reg, ty: cranelift_codegen::ir::Type) -> ClValue {
        self.b
            .ins()
            .load(ty, flags(), self.regs, Self::slot_offset(r) + 8)
    }

    /// The payload of an unboxed value as the 8 bytes a `Value` holds.
    fn payload_bits(&mut self, ty: Ty, v: ClValue) -> ClValue {
        match ty {
            Ty::Int => v,
            Ty::Float => self.b.ins().bitcast(I64, MemFlagsData::new(), v),
            Ty::Bool => self.b.ins().uextend(I64, v),
            _ => unreachable!(),
        }
    }

    /// Unboxes a `(tag, payload)` known to be of type `ty`.
    fn unbox_bits(&mut self, ty: Ty, payload: ClValue) -> ClValue {
        match ty {
            Ty::Int => payload,
            Ty::Float => self.b.ins().bitcast(F64, MemFlagsData::new(), payload),
            Ty::Bool => self.b.ins().ireduce(I8, payload),
            _ => unreachable!(),
        }
    }

    /// Stores a value into register `r`'s slot, releasing what the slot held.
    fn store_boxed(&mut self, r: Reg, tag: ClValue, payload: ClValue) {
        let old = self.load_tag(r);
        // Heap tags are 4..=7 (string, array, range, function).
        let shifted = self.b.ins().iadd_imm_s(old, -4);
        let is_heap = self.b.ins().icmp_imm_u(IntCC::UnsignedLessThan, shifted, 4);
        let drop_block = self.b.create_block();
        let store_block = self.b.create_block();
        self.b.set_cold_block(drop_block);
        self.b
            .ins()
            .brif(is_heap, drop_block, &[], store_block, &[]);
        self.b.switch_to_block(drop_block);
        let slot = self
            .b
            .ins()
            .iadd_imm_s(self.regs, Self::slot_offset(r) as i64);
        self.b.ins().call(self.helpers.drop_slot, &[slot]);
        self.b.ins().jump(store_block, &[]);
        self.b.switch_to_block(store_block);
        self.b
            .ins()
            .store(flags(), tag, self.regs, Self::slot_offset(r));
        self.b
            .ins()
            .store(flags(), payload, self.regs, Self::slot_offset(r) + 8);
    }

    fn block_for(&mut self, pc: usize) -> Block {
        if let Some(b) = self.blocks[pc] {
            return b;
        }
        let b = self.b.create_block();
        self.blocks[pc] = Some(b);
        b
    }

    /// Jumps to `target` from a point whose types are `out`: registers the target keeps
    /// boxed are spilled on the way.
    fn edge(&mut self, out: &[Ty], target: usize) {
        let target_state = self.state(target).to_vec();
        for (r, (from, to)) in out.iter().zip(&target_state).enumerate() {
            if *to == Ty::Boxed && from.is_unboxed() && self.an.live.is_live(target, r) {
                self.spill(r as Reg, *from);
            }
        }
        let block = self.block_for(target);
        self.b.ins().jump(block, &[]);
    }

    /// Branches on `cond` to `target` (true) or `pc + 1` (false).
    fn branch(&mut self, cond: ClValue, out: &[Ty], pc: usize, target: usize) {
        self.branch_on(cond, true, out, pc, target);
    }

    /// Branches to `target` when `cond` is `when`, else to `pc + 1`.
    fn branch_on(&mut self, cond: ClValue, when: bool, out: &[Ty], pc: usize, target: usize) {
        let yes = self.b.create_block();
        let no = self.b.create_block();
        // Cranelift lays out a branch's second successor right after it (the reverse
        // postorder of its DFS visits the first successor first), so the fallthrough goes
        // second: a loop body follows its header's test with no taken jump.
        let jump = if when {
            cond
        } else {
            self.b.ins().icmp_imm_s(IntCC::Equal, cond, 0)
        };
        self.b.ins().brif(jump, yes, &[], no, &[]);
        self.b.switch_to_block(yes);
        self.edge(out, target);
        self.b.switch_to_block(no);
        self.edge(out, pc + 1);
    }

    /// Lets the VM run the instruction at `pc` (operands spilled first); returns the next pc.
    fn step(&mut self, pc: usize, state: &[Ty]) -> ClValue {
        let op = self.an.env.proto.code[pc];
        let mut operands: Vec<(Reg, Ty)> = uses(&op, self.an.env.proto)
            .into_iter()
            .map(|r| (r, state[r as usize]))
            .filter(|(_, ty)| ty.is_unboxed())
            .collect();
        operands.sort_by_key(|o| o.0);
        operands.dedup();
        let (spills, site) = self.exit_site(pc, &operands, None, runtime::REASON_SLOW_PATH);
        let level = self.level();
        let args = [self.ctx, self.regs, level, spills, site];
        let call = self.b.ins().call(self.helpers.step, &args);
        let next = self.b.inst_results(call)[0];
        let failed = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, next, 0);
        self.return_error_if(failed);
        next
    }

    /// Translates every reachable instruction.
    pub fn body(&mut self) {
        let code = &self.an.env.proto.code;
        let n = code.len();
        let mut leaders = vec![false; n + 1];
        leaders[0] = true;
        if let Some((header, _)) = &self.an.env.osr {
            leaders[*header] = true;
        }
        for (pc, op) in code.iter().enumerate() {
            let succ = successors(op, pc, self.an.env.argc);
            if succ != [pc + 1] {
                for s in succ {
                    leaders[s.min(n)] = true;
                }
                leaders[(pc + 1).min(n)] = true;
            }
        }
        let mut open = false;
        let mut next = 0;
        while next < n {
            let pc = next;
            next += 1;
            if self.an.types.states[pc].is_none() {
                continue;
            }
            if leaders[pc] || !open {
                let block = self.block_for(pc);
                if open {
                    self.b.ins().jump(block, &[]);
                }
                self.b.switch_to_block(block);
            }
            open = self.instruction(pc);
            if !open {
                continue;
            }
            // An if-converted branch continues after the instructions it translated.
            let pc = match self.continue_at.take() {
                Some(end) => {
                    debug_assert!(end > pc, "if-conversion continues forward");
                    next = end;
                    end - 1
                }
                None => pc,
            };
            // Falling through to the next instruction: an edge like any other when the
            // next one starts a block, or when the types differ. (They can: a register's
            // type at `pc + 1` is the join of every type the inference ever gave it there,
            // and a plan is not monotone in its operand types, so the instruction may now
            // produce something more precise than that join, e.g. a guarded float where an
            // earlier round saw a step writing a boxed value.)
            let out = self.out_state(pc);
            let next_state = self.an.types.states.get(pc + 1).cloned().flatten();
            if leaders[pc + 1] || next_state.as_ref() != Some(&out) {
                if next_state.is_some() {
                    self.edge(&out, pc + 1);
                }
                open = false;
            }
        }
    }

    /// The types after the instruction at `pc`.
    fn out_state(&self, pc: usize) -> Vec<Ty> {
        let mut state = self.state(pc).to_vec();
        for (r, ty) in self.an.env.decide(pc, &state).1 {
            state[r as usize] = ty;
        }
        state
    }

    /// Emits one instruction; returns whether control falls through to `pc + 1`.
    fn instruction(&mut self, pc: usize) -> bool {
        use Op::*;
        let op = self.an.env.proto.code[pc];
        let state = self.state(pc).to_vec();
        let (plan, _) = self.an.env.decide(pc, &state);
        let out = self.out_state(pc);
        let t = |r: Reg| state[r as usize];
        if plan == Plan::Step && self.fast_boxed(pc, &op, &state) {
            return true;
        }
        if plan == Plan::Step && !matches!(op, Return { .. }) {
            let next = self.step(pc, &state);
            let succ = successors(&op, pc, self.an.env.argc);
            if succ.len() == 2 {
                let target = op.target().expect("a branch") as usize;
                let taken = self.b.ins().icmp_imm_s(IntCC::Equal, next, target as i64);
                self.branch(taken, &out, pc, target);
                return false;
            }
            if succ.is_empty() {
                // `FAIL`: the step raised its error.
                self.return_error();
                return false;
            }
            return succ == [pc + 1];
        }
        match op {
            LoadNil { dst } => {
                let tag = self.iconst(TAG_NIL);
                let zero = self.iconst(0);
                self.store_boxed(dst, tag, zero);
            }
            LoadBool { dst, value } => {
                let v = self.b.ins().iconst(I8, value as i64);
                self.set(dst, Ty::Bool, v);
            }
            LoadInt { dst, value } => {
                let v = self.iconst(value as i64);
                self.set(dst, Ty::Int, v);
            }
            LoadConst { dst, k } => match self.an.env.proto.consts[k as usize] {
                Const::Int(i) => {
                    let v = self.iconst(i);
                    self.set(dst, Ty::Int, v);
                }
                Const::Float(f) => {
                    let v = self.b.ins().f64const(f);
                    self.set(dst, Ty::Float, v);
                }
                Const::Str(_) => unreachable!("strings are stepped"),
            },
            Move { dst, src } => {
                let v = self.get(src, t(src));
                self.set(dst, t(src), v);
            }
            GetGlobal { dst, global } => {
                let Plan::Global(ty) = plan else {
                    unreachable!("globals are speculated or stepped")
                };
                let base = self
                    .b
                    .ins()
                    .load(I64, flags(), self.ctx, offsets::GLOBALS_BASE);
                let offset = global as i32 * 16;
                let tag = self.b.ins().load(I64, flags(), base, offset);
                if self.settings.deopt_stress > 0 {
                    let fail = self.cold_deopt(pc, runtime::REASON_STRESS, None);
                    self.stress(fail);
                }
                let fail = self.cold_deopt(pc, runtime::reason_expected(ty), Some(tag));
                let ok = self.b.ins().icmp_imm_s(IntCC::Equal, tag, tag_of(ty));
                let cont = self.b.create_block();
                self.b.ins().brif(ok, cont, &[], fail, &[]);
                self.b.switch_to_block(cont);
                let v = self.b.ins().load(cl_type(ty), flags(), base, offset + 8);
                self.set(dst, ty, v);
            }
            SetGlobal { global, src } => {
                // A scalar over a scalar is two stores; anything else (defining the global,
                // overwriting a heap value or a function) is the VM's job.
                let base = self
                    .b
                    .ins()
                    .load(I64, flags(), self.ctx, offsets::GLOBALS_BASE);
                let offset = global as i32 * 16;
                let old = self.b.ins().load(I64, flags(), base, offset);
                let scalar = self.b.ins().icmp_imm_u(IntCC::UnsignedLessThan, old, 4);
                let fast = self.b.create_block();
                let slow = self.b.create_block();
                let cont = self.b.create_block();
                self.b.set_cold_block(slow);
                self.b.ins().brif(scalar, fast, &[], slow, &[]);
                self.b.switch_to_block(fast);
                let v = self.get(src, t(src));
                let bits = self.payload_bits(t(src), v);
                let tag = self.iconst(tag_of(t(src)));
                self.b.ins().store(flags(), tag, base, offset);
                self.b.ins().store(flags(), bits, base, offset + 8);
                self.b.ins().jump(cont, &[]);
                self.b.switch_to_block(slow);
                self.step(pc, &state);
                self.b.ins().jump(cont, &[]);
                self.b.switch_to_block(cont);
            }
            Add { dst, a, b }
            | Sub { dst, a, b }
            | Mul { dst, a, b }
            | Div { dst, a, b }
            | Mod { dst, a, b }
            | BitAnd { dst, a, b }
            | BitOr { dst, a, b }
            | BitXor { dst, a, b }
            | Shl { dst, a, b } => self.binary(pc, &op, &plan, dst, (a, t(a)), (Some(b), t(b)), 0),
            Shr { dst, a, b } => self.binary(pc, &op, &plan, dst, (a, t(a)), (Some(b), t(b)), 0),
            AddI { dst, a, imm }
            | SubI { dst, a, imm }
            | MulI { dst, a, imm }
            | ModI { dst, a, imm } => {
                self.binary(pc, &op, &plan, dst, (a, t(a)), (None, Ty::Int), imm as i64)
            }
            Neg { dst, a } => {
                let v = self.get(a, t(a));
                let r = if t(a) == Ty::Int {
                    self.b.ins().ineg(v)
                } else {
                    self.b.ins().fneg(v)
                };
                self.set(dst, t(a), r);
            }
            BitNot { dst, a } => {
                let v = self.get(a, Ty::Int);
                let r = self.b.ins().bnot(v);
                self.set(dst, Ty::Int, r);
            }
            Not { dst, a } => {
                let truthy = self.truthy(a, t(a));
                let r = self.b.ins().bxor_imm_u(truthy, 1);
                self.set(dst, Ty::Bool, r);
            }
            Eq { dst, a, b }
            | Ne { dst, a, b }
            | Lt { dst, a, b }
            | Le { dst, a, b }
            | Gt { dst, a, b }
            | Ge { dst, a, b } => {
                let r = self.compare(pc, &op, &plan, (a, t(a)), (Some(b), t(b)), 0, true);
                self.set(dst, Ty::Bool, r);
            }
            JumpIfNotLt { a, b, target }
            | JumpIfNotLe { a, b, target }
            | JumpIfNotGt { a, b, target }
            | JumpIfNotGe { a, b, target }
            | JumpIfNotEq { a, b, target }
            | JumpIfNotNe { a, b, target } => {
                let fails = self.compare(pc, &op, &plan, (a, t(a)), (Some(b), t(b)), 0, false);
                if self.convert_if(pc, fails, true, target as usize) {
                    return true;
                }
                // Jump when the comparison does not hold.
                self.branch(fails, &out, pc, target as usize);
                return false;
            }
            JumpIfNotLtI { a, imm, target }
            | JumpIfNotLeI { a, imm, target }
            | JumpIfNotGtI { a, imm, target }
            | JumpIfNotGeI { a, imm, target }
            | JumpIfNotEqI { a, imm, target }
            | JumpIfNotNeI { a, imm, target } => {
                let imm = imm as i64;
                let fails = self.compare(pc, &op, &plan, (a, t(a)), (None, Ty::Int), imm, false);
                if self.convert_if(pc, fails, true, target as usize) {
                    return true;
                }
                self.branch(fails, &out, pc, target as usize);
                return false;
            }
            Jump { target } => {
                self.edge(&out, target as usize);
                return false;
            }
            JumpIfFalse { cond, target } | JumpIfTrue { cond, target } => {
                let truthy = self.truthy(cond, t(cond));
                let jump_when_truthy = matches!(op, JumpIfTrue { .. });
                if self.convert_if(pc, truthy, jump_when_truthy, target as usize) {
                    return true;
                }
                self.branch_on(truthy, jump_when_truthy, &out, pc, target as usize);
                return false;
            }
            LoopEnter { .. } => {
                let checks = self.an.ranges.checks_at(pc).to_vec();
                if !checks.is_empty() {
                    let fail = self.cold_deopt(pc, runtime::REASON_RANGE, None);
                    self.range_guard(&checks, fail);
                }
                // Compute the loop's invariant products here; their overflow is still
                // raised at the instruction itself, in order.
                self.compute_hoisted(|h| h.0 == pc);
                self.read_hoisted_arrays(|enter, _| enter == pc);
            }
            LoopExit { .. } => {}
            BackEdge { target, .. } => {
                // Poll the interrupt flag; when set, the VM's BACKEDGE raises it.
                let flag = self.iconst(self.settings.interrupt_flag as i64);
                // An atomic load: a plain one in a loop without stores would be taken as
                // redundant and read once, and Ctrl-C would never be seen.
                let set = self.b.ins().atomic_load(I8, flags(), flag);
                let fail = self.cold_deopt(pc, runtime::REASON_SLOW_PATH, None);
                let cont = self.b.create_block();
                self.b.ins().brif(set, fail, &[], cont, &[]);
                self.b.switch_to_block(cont);
                if self.settings.deopt_stress > 0 {
                    let fail = self.cold_deopt(pc, runtime::REASON_STRESS, None);
                    self.stress(fail);
                }
                let header = target as usize;
                if self.rotates(pc, header, &out) {
                    self.rotated_loops += 1;
                    // The loop's test, translated again here: the back edge branches to
                    // the body or out of the loop itself, where a jump back to the test
                    // would be one more taken branch per iteration.
                    return self.instruction(header);
                }
                self.edge(&out, header);
                return false;
            }
            ArgGiven { .. } => {
                let succ = successors(&op, pc, self.an.env.argc);
                self.edge(&out, succ[0]);
                return false;
            }
            ForRangePrep { base, inclusive } => {
                if inclusive {
                    let end = self.get(base + 1, Ty::Int);
                    let one = self.iconst(1);
                    let (sum, over) = self.b.ins().sadd_overflow(end, one);
                    let max = self.iconst(i64::MAX);
                    let end = self.b.ins().select(over, max, sum);
                    self.set(base + 1, Ty::Int, end);
                }
            }
            ForRangeNext { base, var, exit } => {
                let i = self.get(base, Ty::Int);
                let end = self.get(base + 1, Ty::Int);
                let done = self.b.ins().icmp(IntCC::SignedGreaterThanOrEqual, i, end);
                let body = self.b.create_block();
                let leave = self.b.create_block();
                self.b.ins().brif(done, leave, &[], body, &[]);
                self.b.switch_to_block(leave);
                self.edge(&state, exit as usize);
                self.b.switch_to_block(body);
                self.set(var, Ty::Int, i);
                let next = self.b.ins().iadd_imm_s(i, 1);
                self.set(base, Ty::Int, next);
            }
            CallGlobal { base, argc, .. } => {
                let Plan::FastCall { result, .. } = plan else {
                    unreachable!("calls are fast or stepped")
                };
                if self.accumulates_at(pc) {
                    return self.accumulate(pc, base, argc, result, &state);
                } else {
                    self.fast_call(pc, base, argc, result, &state);
                }
            }
            Return { src } => {
                self.ret(src, t(src));
                return false;
            }
            _ => unreachable!("{} is stepped", op.name()),
        }
        true
    }

    pub fn finish(mut self, config: cranelift_codegen::isa::TargetFrontendConfig) {
        self.b.seal_all_blocks();
        self.b.finalize(config);
    }
}
