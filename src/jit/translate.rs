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

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::types::{F64, I64, I8};
use cranelift_codegen::ir::{
    AbiParam, Block, FuncRef, InstBuilder, MemFlagsData, SigRef, Signature, StackSlot,
    StackSlotData, StackSlotKind, Value as ClValue,
};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::{FunctionBuilder, Variable};
use std::rc::Rc;

use crate::bytecode::dataflow::{successors, uses};
use crate::bytecode::op::{Op, Reg};
use crate::bytecode::proto::Const;
use crate::jit::infer::{Env, Liveness, Plan, Ty, Types};
use crate::jit::runtime::{self, offsets, TAG_ERROR};
use crate::value::Type;

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

pub struct Settings {
    pub max_depth: usize,
    pub interrupt_flag: usize,
    pub epoch: u64,
    pub epoch_addr: usize,
    pub deopt_stress: u32,
    /// How many levels of direct self-calls are inlined (bounded unrolling of
    /// self-recursion; 0 in tier 1).
    pub inline_depth: usize,
    /// Tier-1 code that counts its calls: the address of its `runtime::TierUp` and the
    /// threshold past which it moves to tier 2.
    pub tier_up: Option<(usize, i64)>,
}

/// What belongs to one activation being translated: the outermost function, or a
/// self-call inlined into it, which works on the callee's window (`regs`), one level
/// deeper, with its own blocks and variables, and leaves by jumping to the call's
/// continuation (`exit`) instead of returning.
struct FrameParts {
    blocks: Vec<Option<Block>>,
    vars: Vec<[Variable; 3]>,
    regs: ClValue,
    level: ClValue,
    hoisted: std::collections::HashMap<usize, (usize, Variable, Variable, bool)>,
    exit: Option<Block>,
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

fn flags() -> MemFlagsData {
    MemFlagsData::trusted()
}

pub struct Translator<'a, 'b> {
    pub b: FunctionBuilder<'b>,
    pub env: &'a Env<'a>,
    pub types: &'a Types,
    pub live: &'a Liveness,
    pub helpers: HelperRefs,
    pub calls: std::collections::HashMap<usize, FastCallSite>,
    pub settings: &'a Settings,
    blocks: Vec<Option<Block>>,
    vars: Vec<[Variable; 3]>,
    ctx: ClValue,
    closure: ClValue,
    regs: ClValue,
    level: ClValue,
    fn_params: Vec<ClValue>,
    /// The buffer unboxed registers are handed to helpers in (made on first use), and how
    /// many registers it holds (the most that are ever live at once).
    spill_slot: Option<StackSlot>,
    spill_capacity: usize,
    /// Whether the frame ever keeps a value in its window (then it is cleared on return).
    uses_window: bool,
    /// Loop-invariant int multiplications computed once at their loop's entry:
    /// pc -> (the `LOOPENTER` pc, product and overflow variables, whether an OSR entry
    /// jumps into that loop, and then computes them too).
    hoisted: std::collections::HashMap<usize, (usize, Variable, Variable, bool)>,
    /// Where the activation being translated leaves: `None` returns from the function;
    /// an inlined call jumps to its continuation with `(tag, payload)`.
    exit: Option<Block>,
    /// Inlined self-calls around the activation being translated.
    inline_level: usize,
    /// Self-calls inlined so far (for `:ir` and the events).
    pub inlined: usize,
}

impl<'a, 'b> Translator<'a, 'b> {
    pub fn new(
        mut b: FunctionBuilder<'b>,
        env: &'a Env<'a>,
        types: &'a Types,
        live: &'a Liveness,
        helpers: HelperRefs,
        calls: std::collections::HashMap<usize, FastCallSite>,
        settings: &'a Settings,
    ) -> Self {
        let regs = env.proto.num_regs as usize;
        let vars = (0..regs)
            .map(|_| [b.declare_var(I64), b.declare_var(F64), b.declare_var(I8)])
            .collect();
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
        Translator {
            b,
            env,
            types,
            live,
            helpers,
            calls,
            settings,
            blocks: vec![None; env.proto.code.len() + 1],
            vars,
            ctx: params[0],
            // A function without captures behaves the same in every closure of it, so the
            // VM can be handed the one compiled against: the parameter is then dead and
            // frees a register across calls.
            closure,
            regs: params[2],
            level: params[3],
            fn_params: params,
            spill_slot: None,
            spill_capacity: live.max_live().min(regs),
            uses_window,
            hoisted: std::collections::HashMap::new(),
            exit: None,
            inline_level: 0,
            inlined: 0,
        }
    }

    /// Switches to translating another activation; returns the one that was current.
    fn swap_frame(&mut self, frame: FrameParts) -> FrameParts {
        FrameParts {
            blocks: std::mem::replace(&mut self.blocks, frame.blocks),
            vars: std::mem::replace(&mut self.vars, frame.vars),
            regs: std::mem::replace(&mut self.regs, frame.regs),
            level: std::mem::replace(&mut self.level, frame.level),
            hoisted: std::mem::replace(&mut self.hoisted, frame.hoisted),
            exit: std::mem::replace(&mut self.exit, frame.exit),
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

    /// Writes the unboxed value of `r` (of type `ty`) into its slot.
    fn spill(&mut self, r: Reg, ty: Ty) {
        let v = self.get(r, ty);
        let bits = self.payload_bits(ty, v);
        let tag = self.iconst(tag_of(ty));
        self.store_boxed(r, tag, bits);
    }

    /// Writes unboxed registers for a helper into the spill buffer, as `(reg << 8 | tag,
    /// payload)` pairs: straight-line stores, where boxing them into the window inline
    /// would need a branch and a call per register. The helper boxes them. Returns the
    /// buffer's address and the count.
    fn spill_to_buffer(
        &mut self,
        regs: &[(Reg, Ty)],
        extra: Option<(Reg, ClValue, ClValue)>,
    ) -> (ClValue, ClValue) {
        let slot = *self.spill_slot.get_or_insert_with(|| {
            let bytes = (self.spill_capacity + 1) as u32 * 16;
            self.b.create_sized_stack_slot(StackSlotData::new(
                StackSlotKind::ExplicitSlot,
                bytes,
                3,
            ))
        });
        for (i, &(r, ty)) in regs.iter().enumerate() {
            let v = self.get(r, ty);
            let bits = self.payload_bits(ty, v);
            let head = self.iconst((r as i64) << 8 | tag_of(ty));
            self.b.ins().stack_store(I64, head, slot, i as i32 * 16);
            self.b.ins().stack_store(I64, bits, slot, i as i32 * 16 + 8);
        }
        // A value of any type (a call's result): its tag is only known at run time.
        if let Some((r, tag, payload)) = extra {
            let at = regs.len() as i32 * 16;
            let head = self.b.ins().bor_imm_u(tag, (r as i64) << 8);
            self.b.ins().stack_store(I64, head, slot, at);
            self.b.ins().stack_store(I64, payload, slot, at + 8);
        }
        let address = self.b.ins().stack_addr(I64, slot, 0);
        let count = self.iconst((regs.len() + extra.is_some() as usize) as i64);
        (address, count)
    }

    /// The live unboxed registers of `state` at `pc` (except `skip`).
    fn live_unboxed(&self, state: &[Ty], pc: usize, skip: Option<Reg>) -> Vec<(Reg, Ty)> {
        state
            .iter()
            .enumerate()
            .map(|(r, ty)| (r as Reg, *ty))
            .filter(|(r, ty)| {
                ty.is_unboxed() && self.live.is_live(pc, *r as usize) && Some(*r) != skip
            })
            .collect()
    }

    /// In the current block: hands the frame to the VM at `pc` and returns what it
    /// returns. `reason` is `runtime::REASON_*` (with the expected type), `got` the tag seen.
    fn deopt(&mut self, state: &[Ty], pc: usize, reason: i64, got: ClValue) {
        self.deopt_with(state, pc, None, reason, got);
    }

    /// `deopt`, also handing over a value of any type for one register.
    fn deopt_with(
        &mut self,
        state: &[Ty],
        pc: usize,
        extra: Option<(Reg, ClValue, ClValue)>,
        reason: i64,
        got: ClValue,
    ) {
        let live = self.live_unboxed(state, pc, extra.map(|e| e.0));
        let (spills, count) = self.spill_to_buffer(&live, extra);
        let pc_v = self.iconst(pc as i64);
        let reason_v = self.iconst(reason);
        let argc = self.iconst(self.env.argc as i64);
        let call = self.b.ins().call(
            self.helpers.resume,
            &[
                self.ctx,
                self.closure,
                self.regs,
                self.level,
                pc_v,
                argc,
                reason_v,
                got,
                spills,
                count,
            ],
        );
        let r = self.b.inst_results(call).to_vec();
        self.leave(&r);
    }

    /// A cold block that deoptimizes at `pc` (state before `pc`); returns the block.
    fn cold_deopt(&mut self, pc: usize, reason: i64, got: Option<ClValue>) -> Block {
        let block = self.b.create_block();
        self.b.set_cold_block(block);
        let here = self.b.current_block().expect("in a block");
        self.b.switch_to_block(block);
        let got = got.unwrap_or_else(|| self.b.ins().iconst(I64, -1));
        let state = self.state(pc).to_vec();
        self.deopt(&state, pc, reason, got);
        self.b.switch_to_block(here);
        block
    }

    fn state(&self, pc: usize) -> &[Ty] {
        self.types.states[pc].as_deref().expect("reachable")
    }

    fn return_error(&mut self) {
        let tag = self.iconst(TAG_ERROR);
        let zero = self.iconst(0);
        self.leave(&[tag, zero]);
    }

    /// Counts a guard in deopt-stress mode: every Nth guard fails on purpose.
    fn stress(&mut self, fail: Block) {
        let every = self.settings.deopt_stress as i64;
        if every == 0 {
            return;
        }
        let left = self
            .b
            .ins()
            .load(I64, flags(), self.ctx, offsets::STRESS_LEFT);
        let next = self.b.ins().iadd_imm_s(left, -1);
        let hit = self
            .b
            .ins()
            .icmp_imm_s(IntCC::SignedLessThanOrEqual, next, 0);
        let reset = self.iconst(every);
        let stored = self.b.ins().select(hit, reset, next);
        self.b
            .ins()
            .store(flags(), stored, self.ctx, offsets::STRESS_LEFT);
        let cont = self.b.create_block();
        self.b.ins().brif(hit, fail, &[], cont, &[]);
        self.b.switch_to_block(cont);
    }

    /// Loads boxed register `r` as an unboxed `ty`, deoptimizing at `pc` if it is not.
    fn guard_unbox(&mut self, r: Reg, ty: Ty, pc: usize) -> ClValue {
        let tag = self.load_tag(r);
        let reason = runtime::reason_expected(ty);
        let fail = self.cold_deopt(pc, reason, Some(tag));
        let ok = self.b.ins().icmp_imm_s(IntCC::Equal, tag, tag_of(ty));
        let cont = self.b.create_block();
        self.b.ins().brif(ok, cont, &[], fail, &[]);
        self.b.switch_to_block(cont);
        self.load_payload(r, cl_type(ty))
    }

    /// An operand as `ty`: from its variable, or guarded out of its slot.
    fn operand(&mut self, r: Reg, have: Ty, want: Ty, pc: usize) -> ClValue {
        match (have, want) {
            (h, w) if h == w => self.get(r, h),
            (Ty::Int, Ty::Float) => {
                let v = self.get(r, Ty::Int);
                self.b.ins().fcvt_from_sint(F64, v)
            }
            _ => self.guard_unbox(r, want, pc),
        }
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
            if *to == Ty::Boxed && from.is_unboxed() && self.live.is_live(target, r) {
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
        if when {
            self.b.ins().brif(cond, yes, &[], no, &[]);
        } else {
            self.b.ins().brif(cond, no, &[], yes, &[]);
        }
        self.b.switch_to_block(yes);
        self.edge(out, target);
        self.b.switch_to_block(no);
        self.edge(out, pc + 1);
    }

    /// Lets the VM run the instruction at `pc` (operands spilled first); returns the next pc.
    fn step(&mut self, pc: usize, state: &[Ty]) -> ClValue {
        let op = self.env.proto.code[pc];
        let mut operands: Vec<(Reg, Ty)> = uses(&op, self.env.proto)
            .into_iter()
            .map(|r| (r, state[r as usize]))
            .filter(|(_, ty)| ty.is_unboxed())
            .collect();
        operands.sort_by_key(|o| o.0);
        operands.dedup();
        let (spills, count) = self.spill_to_buffer(&operands, None);
        let pc_v = self.iconst(pc as i64);
        let argc = self.iconst(self.env.argc as i64);
        let call = self.b.ins().call(
            self.helpers.step,
            &[
                self.ctx,
                self.closure,
                self.regs,
                self.level,
                pc_v,
                argc,
                spills,
                count,
            ],
        );
        let next = self.b.inst_results(call)[0];
        let failed = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, next, 0);
        let err = self.b.create_block();
        let cont = self.b.create_block();
        self.b.set_cold_block(err);
        self.b.ins().brif(failed, err, &[], cont, &[]);
        self.b.switch_to_block(err);
        self.return_error();
        self.b.switch_to_block(cont);
        next
    }

    /// Emits the entry: stack checks, locals that start as nil, the parameters.
    pub fn entry(&mut self, params: &[Ty]) {
        self.plan_hoisting();

        // Unboxed parameters.
        let mut next_param = 4;
        let fn_params = self.fn_params.clone();
        for (i, ty) in params.iter().enumerate() {
            if ty.is_unboxed() {
                let v = fn_params[next_param];
                next_param += 1;
                self.set(i as Reg, *ty, v);
            }
        }
        self.nil_locals();
        if let Some((address, threshold)) = self.settings.tier_up {
            self.count_toward_tier2(address, threshold);
        }
        // Deep native recursion continues in the VM, whose frames are on the heap.
        let sp = self.b.ins().get_stack_pointer(I64);
        let limit = self.b.ins().load(I64, flags(), self.ctx, offsets::SP_LIMIT);
        let low = self.b.ins().icmp(IntCC::UnsignedLessThan, sp, limit);
        let to_vm = self.cold_deopt(0, runtime::REASON_SLOW_PATH, None);
        let start = self.block_for(0);
        self.b.ins().brif(low, to_vm, &[], start, &[]);
    }

    /// Tier 1's call counter: past `threshold` calls, the call is handed to the tier-2
    /// body (compiled by `rt_tier_up` the first time) with the same arguments, and its
    /// result returned.
    fn count_toward_tier2(&mut self, address: usize, threshold: i64) {
        let tier_up = self.iconst(address as i64);
        let count = self.b.ins().load(I64, flags(), tier_up, 0);
        let count = self.b.ins().iadd_imm_s(count, 1);
        self.b.ins().store(flags(), count, tier_up, 0);
        let hot = self
            .b
            .ins()
            .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, count, threshold);
        let ask = self.b.create_block();
        let stay = self.b.create_block();
        self.b.set_cold_block(ask);
        self.b.ins().brif(hot, ask, &[], stay, &[]);
        self.b.switch_to_block(ask);
        let call = self
            .b
            .ins()
            .call(self.helpers.tier_up, &[self.ctx, tier_up]);
        let body = self.b.inst_results(call)[0];
        let go = self.b.create_block();
        self.b.set_cold_block(go);
        self.b.ins().brif(body, go, &[], stay, &[]);
        self.b.switch_to_block(go);
        let sig = self.b.func.signature.clone();
        let sig = self.b.import_signature(sig);
        let args = self.fn_params.clone();
        let call = self.b.ins().call_indirect(sig, body, &args);
        let results = self.b.inst_results(call).to_vec();
        self.b.ins().return_(&results);
        self.b.switch_to_block(stay);
    }

    /// Locals read before they are written start as nil, as in the VM.
    fn nil_locals(&mut self) {
        for r in self.env.argc..self.env.proto.num_locals as usize {
            if self.live.is_live(0, r) {
                let tag = self.iconst(TAG_NIL);
                let zero = self.iconst(0);
                self.store_boxed(r as Reg, tag, zero);
            }
        }
    }

    /// Emits the entry of an OSR variant: the VM frame's registers of unboxed type are
    /// loaded from the window (guarded; a mismatch leaves the frame to the VM at the loop
    /// header, where it already was), then the loop header.
    pub fn entry_osr(&mut self, header: usize) {
        self.plan_hoisting();
        let state = self.state(header).to_vec();
        for (r, ty) in state.iter().enumerate() {
            if !ty.is_unboxed() {
                continue;
            }
            let r = r as Reg;
            let tag = self.load_tag(r);
            let ok = self.b.ins().icmp_imm_s(IntCC::Equal, tag, tag_of(*ty));
            let fail = self.b.create_block();
            let cont = self.b.create_block();
            self.b.set_cold_block(fail);
            self.b.ins().brif(ok, cont, &[], fail, &[]);
            self.b.switch_to_block(fail);
            // Nothing is unboxed yet: the window holds the whole frame.
            self.deopt(&[], header, runtime::reason_expected(*ty), tag);
            self.b.switch_to_block(cont);
            let v = self.load_payload(r, cl_type(*ty));
            self.set(r, *ty, v);
        }
        self.compute_hoisted(|h| h.3);
        let start = self.block_for(header);
        self.b.ins().jump(start, &[]);
    }

    /// Computes the hoisted products `which` selects, from the operands' variables here.
    fn compute_hoisted(&mut self, which: impl Fn(&(usize, Variable, Variable, bool)) -> bool) {
        let mine: Vec<(usize, Variable, Variable)> = self
            .hoisted
            .iter()
            .filter(|(_, h)| which(h))
            .map(|(at, h)| (*at, h.1, h.2))
            .collect();
        for (at, product, overflow) in mine {
            let (a, b) = match self.env.proto.code[at] {
                Op::Mul { a, b, .. } => (a, Some(b)),
                Op::MulI { a, .. } => (a, None),
                _ => unreachable!("only products are hoisted"),
            };
            let x = self.get(a, Ty::Int);
            let y = match (b, self.env.proto.code[at]) {
                (Some(b), _) => self.get(b, Ty::Int),
                (None, Op::MulI { imm, .. }) => self.iconst(imm as i64),
                _ => unreachable!("a product has a second operand"),
            };
            let (r, over) = self.b.ins().smul_overflow(x, y);
            self.b.def_var(product, r);
            self.b.def_var(overflow, over);
        }
    }

    /// Finds int products whose operands no instruction of a loop writes, and assigns
    /// each to the outermost such loop: its entry computes them once (`LOOPENTER`).
    fn plan_hoisting(&mut self) {
        use std::collections::HashSet;
        let code = &self.env.proto.code;
        // (entry pc, header, back edge pc) of every loop, outermost first.
        let mut loops = Vec::new();
        for (pc, op) in code.iter().enumerate() {
            if let Op::BackEdge { id, target } = *op {
                let header = target as usize;
                if header > 0 && code[header - 1] == (Op::LoopEnter { id }) {
                    loops.push((header - 1, header, pc));
                }
            }
        }
        loops.sort_by_key(|l| std::cmp::Reverse(l.2 - l.1));
        let osr_header = self.env.osr.as_ref().map(|o| o.0);
        for (enter, header, back) in loops {
            // A loop an OSR entry jumps into does not pass its entry this time: the OSR
            // entry computes its products too, from the types it starts with.
            let midway = osr_header.filter(|h| (header..=back).contains(h));
            let Some(entry_state) = (match midway {
                Some(h) => self.types.states[h].as_deref(),
                None => self.types.states[enter].as_deref(),
            }) else {
                continue;
            };
            let entry_state = entry_state.to_vec();
            let written: HashSet<Reg> = (header..=back)
                .flat_map(|pc| crate::bytecode::dataflow::defs(&code[pc], self.env.proto))
                .collect();
            for (pc, op) in code.iter().enumerate().take(back + 1).skip(header) {
                if self.hoisted.contains_key(&pc) {
                    continue;
                }
                let Some(state) = self.types.states[pc].as_deref() else {
                    continue;
                };
                let operands = match *op {
                    Op::Mul { a, b, .. } => vec![a, b],
                    Op::MulI { a, .. } => vec![a],
                    _ => continue,
                };
                let invariant = operands.iter().all(|r| {
                    !written.contains(r)
                        && state[*r as usize] == Ty::Int
                        && entry_state[*r as usize] == Ty::Int
                });
                if invariant && self.env.decide(pc, state).0 == Plan::Native {
                    let product = self.b.declare_var(I64);
                    let overflow = self.b.declare_var(I8);
                    self.hoisted
                        .insert(pc, (enter, product, overflow, midway.is_some()));
                }
            }
        }
    }

    /// Translates every reachable instruction.
    pub fn body(&mut self) {
        let code = &self.env.proto.code;
        let n = code.len();
        let mut leaders = vec![false; n + 1];
        leaders[0] = true;
        if let Some((header, _)) = &self.env.osr {
            leaders[*header] = true;
        }
        for (pc, op) in code.iter().enumerate() {
            let succ = successors(op, pc, self.env.argc);
            if succ != [pc + 1] {
                for s in succ {
                    leaders[s.min(n)] = true;
                }
                leaders[(pc + 1).min(n)] = true;
            }
        }
        let mut open = false;
        for pc in 0..n {
            if self.types.states[pc].is_none() {
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
            // Falling through to the next instruction: an edge like any other when the
            // next one starts a block, or when the types differ. (They can: a register's
            // type at `pc + 1` is the join of every type the inference ever gave it there,
            // and a plan is not monotone in its operand types, so the instruction may now
            // produce something more precise than that join, e.g. a guarded float where an
            // earlier round saw a step writing a boxed value.)
            let out = self.out_state(pc);
            let next_state = self.types.states.get(pc + 1).cloned().flatten();
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
        for (r, ty) in self.env.decide(pc, &state).1 {
            state[r as usize] = ty;
        }
        state
    }

    /// Emits one instruction; returns whether control falls through to `pc + 1`.
    fn instruction(&mut self, pc: usize) -> bool {
        use Op::*;
        let op = self.env.proto.code[pc];
        let state = self.state(pc).to_vec();
        let (plan, _) = self.env.decide(pc, &state);
        let out = self.out_state(pc);
        let t = |r: Reg| state[r as usize];
        if plan == Plan::Step && self.fast_boxed(pc, &op, &state) {
            return true;
        }
        if plan == Plan::Step && !matches!(op, Return { .. }) {
            let next = self.step(pc, &state);
            let succ = successors(&op, pc, self.env.argc);
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
            LoadConst { dst, k } => match self.env.proto.consts[k as usize] {
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
                let r = self.compare(pc, &op, &plan, (a, t(a)), (Some(b), t(b)), 0);
                self.set(dst, Ty::Bool, r);
            }
            JumpIfNotLt { a, b, target }
            | JumpIfNotLe { a, b, target }
            | JumpIfNotGt { a, b, target }
            | JumpIfNotGe { a, b, target }
            | JumpIfNotEq { a, b, target }
            | JumpIfNotNe { a, b, target } => {
                let holds = self.compare(pc, &op, &plan, (a, t(a)), (Some(b), t(b)), 0);
                // Jump when the comparison does not hold.
                self.branch_on(holds, false, &out, pc, target as usize);
                return false;
            }
            JumpIfNotLtI { a, imm, target }
            | JumpIfNotLeI { a, imm, target }
            | JumpIfNotGtI { a, imm, target }
            | JumpIfNotGeI { a, imm, target }
            | JumpIfNotEqI { a, imm, target }
            | JumpIfNotNeI { a, imm, target } => {
                let holds = self.compare(pc, &op, &plan, (a, t(a)), (None, Ty::Int), imm as i64);
                self.branch_on(holds, false, &out, pc, target as usize);
                return false;
            }
            Jump { target } => {
                self.edge(&out, target as usize);
                return false;
            }
            JumpIfFalse { cond, target } | JumpIfTrue { cond, target } => {
                let truthy = self.truthy(cond, t(cond));
                let jump_when_truthy = matches!(op, JumpIfTrue { .. });
                self.branch_on(truthy, jump_when_truthy, &out, pc, target as usize);
                return false;
            }
            LoopEnter { .. } => {
                // Compute the loop's invariant products here; their overflow is still
                // raised at the instruction itself, in order.
                self.compute_hoisted(|h| h.0 == pc);
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
                self.edge(&out, target as usize);
                return false;
            }
            ArgGiven { .. } => {
                let succ = successors(&op, pc, self.env.argc);
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
                self.fast_call(pc, base, argc, result, &state);
            }
            Return { src } => {
                self.ret(src, t(src));
                return false;
            }
            _ => unreachable!("{} is stepped", op.name()),
        }
        true
    }

    /// Common instructions on boxed values through a fast helper (see `runtime`), with
    /// the VM as the fallback; returns false when the instruction has none.
    fn fast_boxed(&mut self, pc: usize, op: &Op, state: &[Ty]) -> bool {
        use crate::bytecode::proto::{PlaceOp, PlaceRoot};
        use runtime::BoxedOp;
        use Op::*;
        let t = |r: Reg| state[r as usize];
        let reg = |t: &mut Self, r: Reg| t.iconst(r as i64);
        let binary = |op: &Op| match op {
            Add { .. } => Some(BoxedOp::Add),
            Sub { .. } => Some(BoxedOp::Sub),
            Mul { .. } => Some(BoxedOp::Mul),
            Div { .. } => Some(BoxedOp::Div),
            Mod { .. } => Some(BoxedOp::Mod),
            Eq { .. } => Some(BoxedOp::Eq),
            Ne { .. } => Some(BoxedOp::Ne),
            Lt { .. } => Some(BoxedOp::Lt),
            Le { .. } => Some(BoxedOp::Le),
            Gt { .. } => Some(BoxedOp::Gt),
            Ge { .. } => Some(BoxedOp::Ge),
            _ => None,
        };
        let status = match *op {
            Add { dst, a, b }
            | Sub { dst, a, b }
            | Mul { dst, a, b }
            | Div { dst, a, b }
            | Mod { dst, a, b }
            | Eq { dst, a, b }
            | Ne { dst, a, b }
            | Lt { dst, a, b }
            | Le { dst, a, b }
            | Gt { dst, a, b }
            | Ge { dst, a, b }
                if t(a) == Ty::Boxed && t(b) == Ty::Boxed =>
            {
                let code = binary(op).expect("a binary operator") as i64;
                let args = [
                    self.regs,
                    self.iconst(code),
                    reg(self, dst),
                    reg(self, a),
                    reg(self, b),
                ];
                let call = self.b.ins().call(self.helpers.binary, &args);
                self.b.inst_results(call)[0]
            }
            GetIndex { dst, base, index } if t(base) == Ty::Boxed && t(index) == Ty::Int => {
                let i = self.get(index, Ty::Int);
                let args = [self.regs, reg(self, dst), reg(self, base), i];
                let call = self.b.ins().call(self.helpers.get_index, &args);
                self.b.inst_results(call)[0]
            }
            SetIndex { base, index, src }
                if t(base) == Ty::Boxed && t(index) == Ty::Int && t(src).is_unboxed() =>
            {
                let i = self.get(index, Ty::Int);
                let v = self.get(src, t(src));
                let bits = self.payload_bits(t(src), v);
                let tag = self.iconst(tag_of(t(src)));
                let args = [self.regs, reg(self, base), i, tag, bits];
                let call = self.b.ins().call(self.helpers.set_index, &args);
                self.b.inst_results(call)[0]
            }
            PlaceUpdate {
                dst, place, src, ..
            } => {
                let p = &self.env.proto.places[place as usize];
                let PlaceRoot::Reg(root) = p.root else {
                    return false;
                };
                if p.depth != 0 || p.op != PlaceOp::Push || t(root) != Ty::Boxed {
                    return false;
                }
                if !t(src).is_unboxed() {
                    return false;
                }
                let v = self.get(src, t(src));
                let bits = self.payload_bits(t(src), v);
                let tag = self.iconst(tag_of(t(src)));
                let args = [self.regs, reg(self, dst), reg(self, root), tag, bits];
                let call = self.b.ins().call(self.helpers.push, &args);
                self.b.inst_results(call)[0]
            }
            LoadConst { dst, k } => {
                let constant = &self.env.proto.const_values[k as usize] as *const _ as i64;
                let args = [self.regs, reg(self, dst), self.iconst(constant)];
                self.b.ins().call(self.helpers.copy, &args);
                return true;
            }
            Move { dst, src } if t(src) == Ty::Boxed => {
                let from = self.b.ins().iadd_imm_s(self.regs, src as i64 * 16);
                let args = [self.regs, reg(self, dst), from];
                self.b.ins().call(self.helpers.copy, &args);
                return true;
            }
            _ => return false,
        };
        let slow = self.b.create_block();
        let cont = self.b.create_block();
        self.b.set_cold_block(slow);
        self.b.ins().brif(status, slow, &[], cont, &[]);
        self.b.switch_to_block(slow);
        self.step(pc, state);
        self.b.ins().jump(cont, &[]);
        self.b.switch_to_block(cont);
        true
    }

    /// Truthiness of register `r` as an i8 (1 = truthy).
    fn truthy(&mut self, r: Reg, ty: Ty) -> ClValue {
        match ty {
            Ty::Bool => self.get(r, Ty::Bool),
            Ty::Int | Ty::Float => self.b.ins().iconst(I8, 1),
            _ => {
                // Only nil and false are falsy.
                let tag = self.load_tag(r);
                let byte = self.load_payload(r, I8);
                let is_nil = self.b.ins().icmp_imm_s(IntCC::Equal, tag, TAG_NIL);
                let is_bool = self.b.ins().icmp_imm_s(IntCC::Equal, tag, tag_of(Ty::Bool));
                let is_zero = self.b.ins().icmp_imm_s(IntCC::Equal, byte, 0);
                let is_false = self.b.ins().band(is_bool, is_zero);
                let falsy = self.b.ins().bor(is_nil, is_false);
                self.b.ins().bxor_imm_u(falsy, 1)
            }
        }
    }

    /// The operand types an arithmetic or comparison plan works in.
    fn work_type(plan: &Plan, a: Ty, b: Ty) -> Ty {
        match plan {
            Plan::GuardInt => Ty::Int,
            Plan::GuardFloat => Ty::Float,
            _ if a == Ty::Int && b == Ty::Int => Ty::Int,
            _ if a == Ty::Bool || b == Ty::Bool => Ty::Bool,
            _ => Ty::Float,
        }
    }

    /// The two operands of a binary instruction in the working type (`b` may be an
    /// immediate).
    fn operands(
        &mut self,
        pc: usize,
        plan: &Plan,
        a: (Reg, Ty),
        b: (Option<Reg>, Ty),
        imm: i64,
    ) -> (Ty, ClValue, ClValue) {
        let work = Self::work_type(plan, a.1, b.1);
        if work == Ty::Bool {
            // `==`/`!=` of a bool with a bool (or with a number: never equal).
            let x = if a.1.is_unboxed() {
                Some(self.get(a.0, a.1))
            } else {
                None
            };
            let y = match b.0 {
                Some(r) if b.1.is_unboxed() => Some(self.get(r, b.1)),
                _ => None,
            };
            let x = x.unwrap_or_else(|| self.b.ins().iconst(I8, 0));
            let y = y.unwrap_or_else(|| self.b.ins().iconst(I8, 0));
            return (Ty::Bool, x, y);
        }
        if plan != &Plan::Native && self.settings.deopt_stress > 0 {
            let fail = self.cold_deopt(pc, runtime::REASON_STRESS, None);
            self.stress(fail);
        }
        let x = self.operand(a.0, a.1, work, pc);
        let y = match b.0 {
            Some(r) => self.operand(r, b.1, work, pc),
            None if work == Ty::Float => self.b.ins().f64const(imm as f64),
            None => self.iconst(imm),
        };
        (work, x, y)
    }

    #[allow(clippy::too_many_arguments)]
    fn binary(
        &mut self,
        pc: usize,
        op: &Op,
        plan: &Plan,
        dst: Reg,
        a: (Reg, Ty),
        b: (Option<Reg>, Ty),
        imm: i64,
    ) {
        use Op::*;
        let (work, x, y) = self.operands(pc, plan, a, b, imm);
        let result = if work == Ty::Float {
            match op {
                Add { .. } | AddI { .. } => self.b.ins().fadd(x, y),
                Sub { .. } | SubI { .. } => self.b.ins().fsub(x, y),
                Mul { .. } | MulI { .. } => self.b.ins().fmul(x, y),
                Div { .. } => self.b.ins().fdiv(x, y),
                _ => unreachable!("float {} is stepped", op.name()),
            }
        } else {
            // Overflow and division by zero: the VM runs the instruction again and raises
            // the error with its message and location.
            let raise = self.cold_deopt(pc, runtime::REASON_SLOW_PATH, None);
            let checked = |t: &mut Self, r: ClValue, over: ClValue| {
                let cont = t.b.create_block();
                t.b.ins().brif(over, raise, &[], cont, &[]);
                t.b.switch_to_block(cont);
                r
            };
            match op {
                Add { .. } | AddI { .. } => {
                    let (r, over) = self.b.ins().sadd_overflow(x, y);
                    checked(self, r, over)
                }
                Sub { .. } | SubI { .. } => {
                    let (r, over) = self.b.ins().ssub_overflow(x, y);
                    checked(self, r, over)
                }
                Mul { .. } | MulI { .. } => match self.hoisted.get(&pc) {
                    Some(&(_, product, overflow, _)) => {
                        let r = self.b.use_var(product);
                        let over = self.b.use_var(overflow);
                        checked(self, r, over)
                    }
                    None => {
                        let (r, over) = self.b.ins().smul_overflow(x, y);
                        checked(self, r, over)
                    }
                },
                Div { .. } | Mod { .. } | ModI { .. } => {
                    let zero = self.b.ins().icmp_imm_s(IntCC::Equal, y, 0);
                    let min = self.b.ins().icmp_imm_s(IntCC::Equal, x, i64::MIN);
                    let minus_one = self.b.ins().icmp_imm_s(IntCC::Equal, y, -1);
                    let over = self.b.ins().band(min, minus_one);
                    let bad = self.b.ins().bor(zero, over);
                    let cont = self.b.create_block();
                    self.b.ins().brif(bad, raise, &[], cont, &[]);
                    self.b.switch_to_block(cont);
                    if matches!(op, Div { .. }) {
                        self.b.ins().sdiv(x, y)
                    } else {
                        self.b.ins().srem(x, y)
                    }
                }
                BitAnd { .. } => self.b.ins().band(x, y),
                BitOr { .. } => self.b.ins().bor(x, y),
                BitXor { .. } => self.b.ins().bxor(x, y),
                Shl { .. } => self.b.ins().ishl(x, y),
                Shr { .. } => self.b.ins().sshr(x, y),
                _ => unreachable!("{} is not arithmetic", op.name()),
            }
        };
        self.set(dst, work, result);
    }

    /// A comparison as an i8 (1 = holds).
    fn compare(
        &mut self,
        pc: usize,
        op: &Op,
        plan: &Plan,
        a: (Reg, Ty),
        b: (Option<Reg>, Ty),
        imm: i64,
    ) -> ClValue {
        use Op::*;
        #[derive(PartialEq)]
        enum C {
            Eq,
            Ne,
            Lt,
            Le,
            Gt,
            Ge,
        }
        let c = match op {
            Eq { .. } | JumpIfNotEq { .. } | JumpIfNotEqI { .. } => C::Eq,
            Ne { .. } | JumpIfNotNe { .. } | JumpIfNotNeI { .. } => C::Ne,
            Lt { .. } | JumpIfNotLt { .. } | JumpIfNotLtI { .. } => C::Lt,
            Le { .. } | JumpIfNotLe { .. } | JumpIfNotLeI { .. } => C::Le,
            Gt { .. } | JumpIfNotGt { .. } | JumpIfNotGtI { .. } => C::Gt,
            Ge { .. } | JumpIfNotGe { .. } | JumpIfNotGeI { .. } => C::Ge,
            _ => unreachable!("{} is not a comparison", op.name()),
        };
        let (work, x, y) = self.operands(pc, plan, a, b, imm);
        match work {
            Ty::Int => {
                let cc = match c {
                    C::Eq => IntCC::Equal,
                    C::Ne => IntCC::NotEqual,
                    C::Lt => IntCC::SignedLessThan,
                    C::Le => IntCC::SignedLessThanOrEqual,
                    C::Gt => IntCC::SignedGreaterThan,
                    C::Ge => IntCC::SignedGreaterThanOrEqual,
                };
                self.b.ins().icmp(cc, x, y)
            }
            Ty::Float => {
                let cc = match c {
                    C::Eq => FloatCC::Equal,
                    C::Ne => FloatCC::NotEqual,
                    C::Lt => FloatCC::LessThan,
                    C::Le => FloatCC::LessThanOrEqual,
                    C::Gt => FloatCC::GreaterThan,
                    C::Ge => FloatCC::GreaterThanOrEqual,
                };
                self.b.ins().fcmp(cc, x, y)
            }
            _ => {
                // Bools: equal only to a bool of the same value.
                let both_bool = a.1 == Ty::Bool && b.1 == Ty::Bool;
                let same = if both_bool {
                    self.b.ins().icmp(IntCC::Equal, x, y)
                } else {
                    self.b.ins().iconst(I8, 0)
                };
                if c == C::Eq {
                    same
                } else {
                    self.b.ins().bxor_imm_u(same, 1)
                }
            }
        }
    }

    /// A call of a known function with unboxed arguments, through the code table (or
    /// directly, for self-recursion), falling back to the VM when the callee changed, is
    /// not compiled yet, or the depth limit or an interrupt is due.
    fn fast_call(&mut self, pc: usize, base: Reg, argc: u8, result: Ty, state: &[Ty]) {
        let site = *self.calls.get(&pc).expect("fast call sites are prepared");
        let slow = self.b.create_block();
        let done = self.b.create_block();
        self.b.set_cold_block(slow);
        let callee_regs = self.b.ins().iadd_imm_s(self.regs, (base as i64 + 1) * 16);

        // The VM's checks before a call, in one cold branch: the callee is still the
        // function compiled against and no interrupt is pending (one epoch word), the
        // depth limit, and the callee's window lies in the initialized register stack.
        let epoch_addr = self.iconst(self.settings.epoch_addr as i64);
        let epoch = self.b.ins().load(I64, flags(), epoch_addr, 0);
        let changed = self
            .b
            .ins()
            .icmp_imm_s(IntCC::NotEqual, epoch, self.settings.epoch as i64);
        let deep = self.b.ins().icmp_imm_u(
            IntCC::UnsignedGreaterThanOrEqual,
            self.level,
            self.settings.max_depth as i64,
        );
        let mut any = self.b.ins().bor(changed, deep);
        // A direct self-call of code that keeps everything unboxed never touches the new
        // window on its fast path (helpers make room when they need it).
        if !matches!(site.target, CallTarget::Direct(_)) || self.uses_window {
            let window_end = self
                .b
                .ins()
                .iadd_imm_s(callee_regs, site.callee_regs as i64 * 16);
            let stack_end = self
                .b
                .ins()
                .load(I64, flags(), self.ctx, offsets::STACK_END);
            let short = self
                .b
                .ins()
                .icmp(IntCC::UnsignedGreaterThan, window_end, stack_end);
            any = self.b.ins().bor(any, short);
        }
        let checked = self.b.create_block();
        self.b.ins().brif(any, slow, &[], checked, &[]);
        self.b.switch_to_block(checked);

        let mut args = vec![
            self.ctx,
            self.iconst(site.closure as i64),
            callee_regs,
            self.b.ins().iadd_imm_s(self.level, 1),
        ];
        for i in 0..argc as Reg {
            let r = base + 1 + i;
            args.push(self.get(r, state[r as usize]));
        }
        let results = match site.target {
            CallTarget::Direct(_) if self.inline_level < self.settings.inline_depth => {
                self.inline_self_call(&args)
            }
            CallTarget::Direct(f) => {
                let call = self.b.ins().call(f, &args);
                self.b.inst_results(call).to_vec()
            }
            CallTarget::Slot { slot, sig } => {
                let slot_addr = self.iconst(slot as i64);
                let code = self.b.ins().load(I64, flags(), slot_addr, 0);
                let call_block = self.b.create_block();
                self.b.ins().brif(code, call_block, &[], slow, &[]);
                self.b.switch_to_block(call_block);
                let call = self.b.ins().call_indirect(sig, code, &args);
                self.b.inst_results(call).to_vec()
            }
        };
        let out = self.out_state(pc);
        if result.is_unboxed() {
            // Both paths meet in one check of the result's type.
            let check = self.b.create_block();
            self.b.append_block_param(check, I64);
            self.b.append_block_param(check, I64);
            self.b
                .ins()
                .jump(check, &[results[0].into(), results[1].into()]);
            // Slow path: the VM makes the call (and raises what it must); the result is
            // moved out of its slot (left nil) into the check.
            self.b.switch_to_block(slow);
            self.step(pc, state);
            let tag = self.load_tag(base);
            let payload = self.load_payload(base, I64);
            let nil = self.iconst(TAG_NIL);
            self.b
                .ins()
                .store(flags(), nil, self.regs, Self::slot_offset(base));
            self.b.ins().jump(check, &[tag.into(), payload.into()]);
            self.b.switch_to_block(check);
            let params = self.b.block_params(check).to_vec();
            self.check_result(pc, base, result, params[0], params[1], &out, done);
        } else {
            self.call_result(pc, base, result, results[0], results[1], &out, done);
            self.b.switch_to_block(slow);
            self.step(pc, state);
            self.b.ins().jump(done, &[]);
        }
        self.b.switch_to_block(done);
    }

    /// Translates a direct self-call with `args` (as the call would pass them) inline: the
    /// body again, on the callee's window, one level deeper. Its exits (return, deopt,
    /// error) all arrive at one continuation with the `(tag, payload)` a call would have
    /// returned, so what follows is the same as after a call: a deopt inside lands in the
    /// callee's own VM frame, which the VM finishes, and its result comes back here.
    fn inline_self_call(&mut self, args: &[ClValue]) -> Vec<ClValue> {
        let cont = self.b.create_block();
        self.b.append_block_param(cont, I64);
        self.b.append_block_param(cont, I64);
        let regs = self.env.proto.num_regs as usize;
        let vars = (0..regs)
            .map(|_| {
                [
                    self.b.declare_var(I64),
                    self.b.declare_var(F64),
                    self.b.declare_var(I8),
                ]
            })
            .collect();
        let frame = FrameParts {
            blocks: vec![None; self.env.proto.code.len() + 1],
            vars,
            regs: args[2],
            level: args[3],
            hoisted: std::collections::HashMap::new(),
            exit: Some(cont),
        };
        let outer = self.swap_frame(frame);
        self.inline_level += 1;
        self.inlined += 1;
        self.plan_hoisting();
        let mut next_arg = 4;
        for (i, ty) in self.env.params.clone().iter().enumerate() {
            if ty.is_unboxed() {
                self.set(i as Reg, *ty, args[next_arg]);
                next_arg += 1;
            }
        }
        self.nil_locals();
        let start = self.block_for(0);
        self.b.ins().jump(start, &[]);
        self.body();
        self.inline_level -= 1;
        self.swap_frame(outer);
        self.b.switch_to_block(cont);
        self.b.block_params(cont).to_vec()
    }

    /// Checks a call's `(tag, payload)` against the expected type and continues at `done`.
    #[allow(clippy::too_many_arguments)]
    fn call_result(
        &mut self,
        pc: usize,
        base: Reg,
        result: Ty,
        tag: ClValue,
        payload: ClValue,
        out: &[Ty],
        done: Block,
    ) {
        if result.is_unboxed() {
            self.check_result(pc, base, result, tag, payload, out, done);
        } else {
            let is_error = self.b.ins().icmp_imm_s(IntCC::Equal, tag, TAG_ERROR);
            let err = self.b.create_block();
            let ok = self.b.create_block();
            self.b.set_cold_block(err);
            self.b.ins().brif(is_error, err, &[], ok, &[]);
            self.b.switch_to_block(err);
            self.return_error();
            self.b.switch_to_block(ok);
            self.store_boxed(base, tag, payload);
            self.b.ins().jump(done, &[]);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn check_result(
        &mut self,
        pc: usize,
        base: Reg,
        result: Ty,
        tag: ClValue,
        payload: ClValue,
        out: &[Ty],
        done: Block,
    ) {
        let matches = self.b.ins().icmp_imm_s(IntCC::Equal, tag, tag_of(result));
        let ok = self.b.create_block();
        let bad = self.b.create_block();
        self.b.set_cold_block(bad);
        self.b.ins().brif(matches, ok, &[], bad, &[]);

        // Not the type expected: an error passes up; another value goes into its slot
        // and the VM continues after the call.
        self.b.switch_to_block(bad);
        let is_error = self.b.ins().icmp_imm_s(IntCC::Equal, tag, TAG_ERROR);
        let err = self.b.create_block();
        let other = self.b.create_block();
        self.b.ins().brif(is_error, err, &[], other, &[]);
        self.b.switch_to_block(err);
        self.return_error();
        self.b.switch_to_block(other);
        let reason = runtime::reason_expected(result);
        self.deopt_after(pc, (base, tag, payload), out, reason, tag);

        self.b.switch_to_block(ok);
        let v = self.unbox_bits(result, payload);
        if self.settings.deopt_stress > 0 {
            let fail = self.b.create_block();
            self.b.set_cold_block(fail);
            self.stress(fail);
            let cont = self.b.current_block().expect("in a block");
            self.b.switch_to_block(fail);
            let bits = self.payload_bits(result, v);
            let t = self.iconst(tag_of(result));
            let minus_one = self.iconst(-1);
            self.deopt_after(pc, (base, t, bits), out, runtime::REASON_STRESS, minus_one);
            self.b.switch_to_block(cont);
        }
        self.set(base, result, v);
        self.b.ins().jump(done, &[]);
    }

    /// Deoptimizes at `pc + 1` with a call's result (register, tag, payload) going into its
    /// register.
    fn deopt_after(
        &mut self,
        pc: usize,
        result: (Reg, ClValue, ClValue),
        out: &[Ty],
        reason: i64,
        got: ClValue,
    ) {
        let mut state = out.to_vec();
        for (r, t) in state.iter_mut().enumerate() {
            if !self.live.is_live(pc + 1, r) {
                *t = Ty::Dead;
            }
        }
        self.deopt_with(&state, pc + 1, Some(result), reason, got);
    }

    fn ret(&mut self, src: Reg, ty: Ty) {
        if ty.is_unboxed() {
            let v = self.get(src, ty);
            let bits = self.payload_bits(ty, v);
            if self.uses_window {
                let n = self.iconst(self.env.proto.num_regs as i64);
                self.b.ins().call(self.helpers.clear, &[self.regs, n]);
            }
            let tag = self.iconst(tag_of(ty));
            self.leave(&[tag, bits]);
        } else {
            let src_v = self.iconst(src as i64);
            let n = self.iconst(self.env.proto.num_regs as i64);
            let call = self
                .b
                .ins()
                .call(self.helpers.return_boxed, &[self.regs, src_v, n]);
            let r = self.b.inst_results(call).to_vec();
            self.leave(&r);
        }
    }

    pub fn finish(mut self, config: cranelift_codegen::isa::TargetFrontendConfig) {
        self.b.seal_all_blocks();
        self.b.finalize(config);
    }
}
