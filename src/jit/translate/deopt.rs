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

    /// Records an exit from the code at `pc` (a deopt with `reason`, or a step) that hands
    /// over the unboxed registers `regs`, and `extra`, a register with its tag only known at
    /// run time; fills the exit's spill buffer: the payloads, and the closures when they
    /// are not constants (see `runtime::ExitSite`). Returns the buffer's and the site's
    /// addresses.
    pub(super) fn exit_site(
        &mut self,
        pc: usize,
        regs: &[(Reg, Ty)],
        extra: Option<(Reg, ClValue, ClValue)>,
        reason: i64,
    ) -> (ClValue, ClValue) {
        let slot = *self.spill_slot.get_or_insert_with(|| {
            let words = runtime::EXIT_HEADER + self.spill_capacity + 1;
            self.b.create_sized_stack_slot(StackSlotData::new(
                StackSlotKind::ExplicitSlot,
                words as u32 * 8,
                3,
            ))
        });
        let buffer = self.b.ins().stack_addr(I64, slot, 0);
        let word = |i: usize| (i * 8) as i32;
        let mut heads = Vec::with_capacity(regs.len());
        for (i, &(r, ty)) in regs.iter().enumerate() {
            let v = self.get(r, ty);
            // A float's bits are stored as they are; a bool is widened to a whole word.
            let v = if ty == Ty::Bool {
                self.payload_bits(ty, v)
            } else {
                v
            };
            self.b
                .ins()
                .store(flags(), v, buffer, word(runtime::EXIT_HEADER + i));
            heads.push((r as u64) << 8 | tag_of(ty) as u64);
        }
        if let Some((_, tag, payload)) = extra {
            let at = runtime::EXIT_EXTRA_TAG;
            self.b.ins().store(flags(), tag, buffer, word(at));
            self.b.ins().store(flags(), payload, buffer, word(at + 1));
        }
        let closure_address = |t: &mut Self, v: ClValue, at: usize| match t.constant(v) {
            Some(address) => address as usize,
            None => {
                t.b.ins().store(flags(), v, buffer, word(at));
                0
            }
        };
        let (closure, owner) = (self.closure, self.owner);
        let closure = closure_address(self, closure, runtime::EXIT_CLOSURE);
        let owner = closure_address(self, owner, runtime::EXIT_OWNER);
        let site = Box::new(runtime::ExitSite {
            closure,
            owner,
            pc: pc as u64,
            argc: self.an.env.argc as u64,
            reason,
            heads: heads.into(),
            extra: extra.map(|e| e.0),
        });
        let address = self.iconst(&*site as *const runtime::ExitSite as i64);
        self.exits.push(site);
        (buffer, address)
    }

    /// The value of `v` if it is an integer constant of the function.
    fn constant(&self, v: ClValue) -> Option<i64> {
        let dfg = &self.b.func.dfg;
        match dfg.value_def(v) {
            ValueDef::Result(inst, 0) => match dfg.insts[inst] {
                InstructionData::UnaryImm {
                    opcode: Opcode::Iconst,
                    imm,
                } => Some(imm.bits()),
                _ => None,
            },
            _ => None,
        }
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
        if self.accumulator.is_some() {
            // The VM cannot resume in the middle of an accumulator loop (`accumulate`).
            self.restart(extra, reason, got);
            return;
        }
        let live = self.live_unboxed(state, pc, extra.map(|e| e.0));
        let (_, site) = self.exit_site(pc, &live, extra, reason);
        let shared = self.shared_deopt();
        self.b.ins().jump(shared, &[got.into(), site.into()]);
    }

    /// The activation's one call of `rt_resume` (made on first use), with the tag seen and
    /// the exit site as block parameters: every deopt of the activation fills the spill
    /// buffer and jumps here. A call per deopt was most of what the register allocator
    /// worked on in a function with many guards (each clobbers every caller-saved
    /// register and wants its arguments in fixed ones).
    pub(super) fn shared_deopt(&mut self) -> Block {
        if let Some(block) = self.deopt_exit {
            return block;
        }
        let block = self.b.create_block();
        self.b.set_cold_block(block);
        let got = self.b.append_block_param(block, I64);
        let site = self.b.append_block_param(block, I64);
        let here = self.b.current_block().expect("in a block");
        self.b.switch_to_block(block);
        let slot = self.spill_slot.expect("an exit site made the spill buffer");
        let buffer = self.b.ins().stack_addr(I64, slot, 0);
        let args = [self.ctx, self.regs, self.level, got, buffer, site];
        let call = self.b.ins().call(self.helpers.resume, &args);
        let r = self.b.inst_results(call).to_vec();
        self.leave(&r);
        self.b.switch_to_block(here);
        self.deopt_exit = Some(block);
        block
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
