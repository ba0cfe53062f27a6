//! Entering compiled code: the normal entry (parameters, nil locals, the tier-up counter,
//! the native stack check), the OSR entry, and the loop-invariant products computed at a
//! loop's entry.

use super::*;

impl Translator<'_, '_> {
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
        if !self.an.accumulated.is_empty() {
            self.start_accumulator(self.level, fn_params[4..next_param].to_vec(), None);
        }
        self.nil_locals();
        if let Some((address, threshold)) = self.settings.tier_up {
            self.count_toward_tier2(address, threshold);
        }
        // Deep native recursion continues in the VM, whose frames are on the heap.
        let sp = self.b.ins().get_stack_pointer(I64);
        let limit = self.b.ins().load(I64, flags(), self.ctx, offsets::SP_LIMIT);
        let low = self.b.ins().icmp(IntCC::UnsignedLessThan, sp, limit);
        // Made once the entry block holds an instruction: the first block that does is
        // the function's entry in Cranelift's layout.
        let to_vm = self.cold_deopt(0, runtime::REASON_SLOW_PATH, None);
        // Each check is its own branch to the VM: an `or` of their flags costs a `setcc`
        // each and a `test` on the path every call takes.
        let mut checks = vec![low];
        if let Some(exceeded) = self.measure_exceeded() {
            // No call below may reach the depth limit (`accumulate`); the epoch as for
            // the inlined calls.
            checks.push(self.call_checks_epoch());
            checks.push(exceeded);
        } else if self.call_checks_at_entry || self.leaf_checks_at_entry {
            // The checks of every call inlined below this activation that skips its own:
            // the deepest is made `inline_depth - 1` levels down (inlined leaves: at this
            // level). If any would fail, the VM runs this activation, and its calls make
            // their own checks.
            checks.push(self.call_checks(self.settings.inline_depth.saturating_sub(1)));
        }
        for check in checks {
            let next = self.b.create_block();
            self.b.ins().brif(check, to_vm, &[], next, &[]);
            self.b.switch_to_block(next);
        }
        let start = self.block_for(0);
        self.b.ins().jump(start, &[]);
    }

    /// Tier 1's call counter: past `threshold` calls, the call is handed to the tier-2
    /// body (compiled by `rt_tier_up` the first time) with the same arguments, and its
    /// result returned.
    pub(super) fn count_toward_tier2(&mut self, address: usize, threshold: i64) {
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
    pub(super) fn nil_locals(&mut self) {
        for r in self.an.env.argc..self.an.env.proto.num_locals as usize {
            if self.an.live.is_live(0, r) {
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
        // The loops around the header are entered without passing their LOOPENTER: their
        // range guards run here, on the values the VM hands over.
        let checks = self.an.ranges.checks_around(header);
        if !checks.is_empty() {
            let fail = self.b.create_block();
            self.b.set_cold_block(fail);
            self.range_guard(&checks, fail);
            let cont = self.b.current_block().expect("in a block");
            self.b.switch_to_block(fail);
            // Nothing was written since the loads: the window still holds the whole frame.
            let got = self.iconst(-1);
            self.deopt(&[], header, runtime::REASON_RANGE, got);
            self.b.switch_to_block(cont);
        }
        if self.leaf_checks_at_entry {
            // The checks of the callees inlined at the top level (see `entry`); if they
            // fail, the VM goes on with the loop, and its calls check themselves.
            let due = self.call_checks(self.settings.inline_depth.saturating_sub(1));
            let fail = self.b.create_block();
            let cont = self.b.create_block();
            self.b.set_cold_block(fail);
            self.b.ins().brif(due, fail, &[], cont, &[]);
            self.b.switch_to_block(fail);
            // Nothing was written since the loads: the window still holds the whole frame.
            let got = self.iconst(-1);
            self.deopt(&[], header, runtime::REASON_SLOW_PATH, got);
            self.b.switch_to_block(cont);
        }
        self.compute_hoisted(|h| h.3);
        self.read_hoisted_arrays(|_, midway| midway);
        let start = self.block_for(header);
        self.b.ins().jump(start, &[]);
    }

    /// Computes the hoisted products `which` selects, from the operands' variables here.
    pub(super) fn compute_hoisted(
        &mut self,
        which: impl Fn(&(usize, Variable, Variable, bool)) -> bool,
    ) {
        let mine: Vec<(usize, Variable, Variable)> = self
            .hoisted
            .iter()
            .filter(|(_, h)| which(h))
            .map(|(at, h)| (*at, h.1, h.2))
            .collect();
        for (at, product, overflow) in mine {
            let (a, b) = match self.an.env.proto.code[at] {
                Op::Mul { a, b, .. } => (a, Some(b)),
                Op::MulI { a, .. } => (a, None),
                _ => unreachable!("only products are hoisted"),
            };
            let x = self.get(a, Ty::Int);
            let y = match (b, self.an.env.proto.code[at]) {
                (Some(b), _) => self.get(b, Ty::Int),
                (None, Op::MulI { imm, .. }) => self.iconst(imm as i64),
                _ => unreachable!("a product has a second operand"),
            };
            if self.an.ranges.unchecked.contains(&at) {
                let r = self.b.ins().imul(x, y);
                self.b.def_var(product, r);
            } else {
                let (r, over) = self.b.ins().smul_overflow(x, y);
                self.b.def_var(product, r);
                self.b.def_var(overflow, over);
            }
        }
    }

    /// Finds int products whose operands no instruction of a loop writes, and assigns
    /// each to the outermost such loop: its entry computes them once (`LOOPENTER`).
    pub(super) fn plan_hoisting(&mut self) {
        use std::collections::HashSet;
        let code = &self.an.env.proto.code;
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
        let osr_header = self.an.env.osr.as_ref().map(|o| o.0);
        for &(enter, header, back) in &loops {
            // A loop an OSR entry jumps into does not pass its entry this time: the OSR
            // entry computes its products too, from the types it starts with.
            let midway = osr_header.filter(|h| (header..=back).contains(h));
            let Some(entry_state) = (match midway {
                Some(h) => self.an.types.states[h].as_deref(),
                None => self.an.types.states[enter].as_deref(),
            }) else {
                continue;
            };
            let entry_state = entry_state.to_vec();
            let written: HashSet<Reg> = (header..=back)
                .flat_map(|pc| crate::bytecode::dataflow::defs(&code[pc], self.an.env.proto))
                .collect();
            for (pc, op) in code.iter().enumerate().take(back + 1).skip(header) {
                if self.hoisted.contains_key(&pc) {
                    continue;
                }
                let Some(state) = self.an.types.states[pc].as_deref() else {
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
                if invariant && self.an.env.decide(pc, state).0 == Plan::Native {
                    let product = self.b.declare_var(I64);
                    let overflow = self.b.declare_var(I8);
                    self.hoisted
                        .insert(pc, (enter, product, overflow, midway.is_some()));
                }
            }
        }
        self.plan_array_hoisting(&loops, osr_header);
    }
}
