//! Leaving compiled code for the VM: spilling unboxed values to the register window,
//! deoptimization (the frame handed over at an instruction), the guards that trigger it
//! (types, loop ranges, `--deopt-stress`), and the state each instruction expects.

use super::*;

impl Translator<'_, '_> {
    /// Writes the unboxed value of `r` (of type `ty`) into its slot.
    pub(super) fn spill(&mut self, r: Reg, ty: Ty) {
        let v = self.get(r, ty);
        let bits = self.payload_bits(ty, v);
        let tag = self.iconst(tag_of(ty));
        self.store_boxed(r, tag, bits);
    }

    /// Writes unboxed registers for a helper into the spill buffer, as `(reg << 8 | tag,
    /// payload)` pairs: straight-line stores, where boxing them into the window inline
    /// would need a branch and a call per register. The helper boxes them. Returns the
    /// buffer's address and the count.
    pub(super) fn spill_to_buffer(
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
    pub(super) fn live_unboxed(
        &self,
        state: &[Ty],
        pc: usize,
        skip: Option<Reg>,
    ) -> Vec<(Reg, Ty)> {
        state
            .iter()
            .enumerate()
            .map(|(r, ty)| (r as Reg, *ty))
            .filter(|(r, ty)| {
                ty.is_unboxed() && self.an.live.is_live(pc, *r as usize) && Some(*r) != skip
            })
            .collect()
    }

    /// In the current block: hands the frame to the VM at `pc` and returns what it
    /// returns. `reason` is `runtime::REASON_*` (with the expected type), `got` the tag seen.
    pub(super) fn deopt(&mut self, state: &[Ty], pc: usize, reason: i64, got: ClValue) {
        self.deopt_with(state, pc, None, reason, got);
    }

    /// `deopt`, also handing over a value of any type for one register.
    pub(super) fn deopt_with(
        &mut self,
        state: &[Ty],
        pc: usize,
        extra: Option<(Reg, ClValue, ClValue)>,
        reason: i64,
        got: ClValue,
    ) {
        let live = self.live_unboxed(state, pc, extra.map(|e| e.0));
        let (spills, count) = self.spill_to_buffer(&live, extra);
        let mut args = self.frame_at(pc);
        let reason_v = self.iconst(reason);
        args.extend([reason_v, got, spills, count, self.owner]);
        let call = self.b.ins().call(self.helpers.resume, &args);
        let r = self.b.inst_results(call).to_vec();
        self.leave(&r);
    }

    /// A cold block that deoptimizes at `pc` (state before `pc`); returns the block.
    pub(super) fn cold_deopt(&mut self, pc: usize, reason: i64, got: Option<ClValue>) -> Block {
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

    /// Leaves for `fail` unless every register `checks` names lies in its interval: the
    /// assumptions a loop's removed overflow checks rest on (`jit::range`), tested once
    /// at the loop's entry instead of at every operation inside it.
    pub(super) fn range_guard(&mut self, checks: &[Check], fail: Block) {
        let mut outside = None;
        for c in checks {
            let v = self.get(c.reg, Ty::Int);
            // lo <= v <= hi as one unsigned comparison: v - lo <= hi - lo.
            let shifted = self.b.ins().iadd_imm_s(v, c.lo.wrapping_neg());
            let span = c.hi.wrapping_sub(c.lo);
            let out = self
                .b
                .ins()
                .icmp_imm_u(IntCC::UnsignedGreaterThan, shifted, span);
            outside = Some(match outside {
                None => out,
                Some(before) => self.b.ins().bor(before, out),
            });
        }
        if let Some(outside) = outside {
            let cont = self.b.create_block();
            self.b.ins().brif(outside, fail, &[], cont, &[]);
            self.b.switch_to_block(cont);
        }
    }

    pub(super) fn state(&self, pc: usize) -> &[Ty] {
        self.an.types.states[pc].as_deref().expect("reachable")
    }

    /// The frame as the VM's helpers take it (`rt_resume`, `rt_step`): context, closure,
    /// window, level, the pc to continue at and the number of arguments passed.
    pub(super) fn frame_at(&mut self, pc: usize) -> Vec<ClValue> {
        let pc_v = self.iconst(pc as i64);
        let argc = self.iconst(self.an.env.argc as i64);
        vec![self.ctx, self.closure, self.regs, self.level, pc_v, argc]
    }

    pub(super) fn return_error(&mut self) {
        let tag = self.iconst(TAG_ERROR);
        let zero = self.iconst(0);
        self.leave(&[tag, zero]);
    }

    /// Passes the error up (in a cold block) when `failed` holds; continues otherwise.
    pub(super) fn return_error_if(&mut self, failed: ClValue) {
        let err = self.b.create_block();
        let cont = self.b.create_block();
        self.b.set_cold_block(err);
        self.b.ins().brif(failed, err, &[], cont, &[]);
        self.b.switch_to_block(err);
        self.return_error();
        self.b.switch_to_block(cont);
    }

    /// Counts a guard in deopt-stress mode: every Nth guard fails on purpose.
    pub(super) fn stress(&mut self, fail: Block) {
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
    pub(super) fn guard_unbox(&mut self, r: Reg, ty: Ty, pc: usize) -> ClValue {
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
    pub(super) fn operand(&mut self, r: Reg, have: Ty, want: Ty, pc: usize) -> ClValue {
        match (have, want) {
            (h, w) if h == w => self.get(r, h),
            (Ty::Int, Ty::Float) => {
                let v = self.get(r, Ty::Int);
                self.b.ins().fcvt_from_sint(F64, v)
            }
            _ => self.guard_unbox(r, want, pc),
        }
    }
}
