//! Calls of known functions (through the code table, directly, or inlined at tier 2),
//! checking their results, and returning.

use super::*;
use crate::bytecode::proto::Proto;

/// Whether a function runs no code but its own and changes no binding: its instructions
/// call only itself (directly), and write no global, upvalue or cell. Nothing between its
/// entry and a self-call inlined into it can then redefine it; only an interrupt can
/// change the epoch meanwhile, and the next real call or loop back edge sees that.
pub(super) fn calls_only_itself(an: &Analysis) -> bool {
    keeps_bindings(an.env.proto, |pc| is_self_call(an, pc))
}

/// Whether a function changes no binding and runs no other code than itself and the
/// callees inlined into it (which themselves call nothing and change no binding): then
/// the epoch cannot change while it runs but by an interrupt, which loop back edges poll
/// anyway, so the calls translated inline at its top level need no checks of their own
/// beyond one at its entry.
pub(super) fn inlines_only_leaves(an: &Analysis, analyses: &[Analysis]) -> bool {
    keeps_bindings(an.env.proto, |pc| match an.inline.get(&pc) {
        Some(&callee) => keeps_bindings(analyses[callee].env.proto, |_| false),
        None => is_self_call(an, pc),
    })
}

/// Whether the call at `pc` is a direct self-call.
fn is_self_call(an: &Analysis, pc: usize) -> bool {
    matches!(
        an.calls.get(&pc),
        Some(FastCallSite {
            target: CallTarget::Direct(_),
            ..
        })
    )
}

/// Whether no instruction writes a global, upvalue or cell, or calls anything but the
/// `CALLGLOBAL`s that `allowed` accepts (by pc).
pub(super) fn keeps_bindings(proto: &Proto, allowed: impl Fn(usize) -> bool) -> bool {
    use crate::bytecode::proto::PlaceRoot;
    proto.code.iter().enumerate().all(|(pc, op)| match *op {
        Op::SetGlobal { .. } | Op::SetUpval { .. } | Op::SetCell { .. } => false,
        Op::Call { .. } | Op::CallMethod { .. } => false,
        Op::CallGlobal { .. } => allowed(pc),
        Op::PlaceUpdate { place, .. } => {
            matches!(proto.places[place as usize].root, PlaceRoot::Reg(_))
        }
        _ => true,
    })
}

impl Translator<'_, '_> {
    /// Whether a real self-call is peeled: its callee's start translated inline, up to the
    /// callee's own first self-call, which then makes the real call (of the callee, with
    /// the same arguments). A call that reaches a base case (fib's `n < 2`) is then no call
    /// at all. Restarting is exact when nothing before that first self-call has an effect
    /// outside the activation's registers (the function calls only itself and writes no
    /// binding, `calls_only_itself`) and every argument travels unboxed (the window, which
    /// the start may have written, holds none of them).
    fn peel_self_calls(&self) -> bool {
        self.call_checks_at_entry
            && self.restart.is_none()
            && self.an.env.params.iter().all(|t| t.is_unboxed())
    }

    /// The epoch and depth checks before a call made `extra_levels` below this activation:
    /// true (an i8) when the callee may have changed, an interrupt is pending, or the call
    /// would pass the depth limit.
    pub(super) fn call_checks(&mut self, extra_levels: usize) -> ClValue {
        let changed = self.call_checks_epoch();
        let level = self.level();
        let deep = self.b.ins().icmp_imm_u(
            IntCC::UnsignedGreaterThanOrEqual,
            level,
            self.settings.max_depth.saturating_sub(extra_levels) as i64,
        );
        self.b.ins().bor(changed, deep)
    }

    /// The epoch check before a call: true (an i8) when a function-valued global was
    /// redefined or an interrupt is pending.
    pub(super) fn call_checks_epoch(&mut self) -> ClValue {
        let epoch_addr = self.iconst(self.settings.epoch_addr as i64);
        let epoch = self.b.ins().load(I64, flags(), epoch_addr, 0);
        self.b
            .ins()
            .icmp_imm_s(IntCC::NotEqual, epoch, self.settings.epoch as i64)
    }

    /// A call of a known function with unboxed arguments, through the code table (or
    /// directly, for self-recursion), falling back to the VM when the callee changed, is
    /// not compiled yet, or the depth limit or an interrupt is due.
    pub(super) fn fast_call(&mut self, pc: usize, base: Reg, argc: u8, result: Ty, state: &[Ty]) {
        let site = *self
            .an
            .calls
            .get(&pc)
            .expect("fast call sites are prepared");
        if let (Some(args), CallTarget::Direct(f)) = (self.restart.clone(), site.target) {
            // A peeled activation reached a self-call: it is no base case, so the real
            // call of the activation itself is made, from its start (what ran of it here
            // only wrote its own registers), and its result is the activation's.
            let call = self.b.ins().call(f, &args);
            let results = self.b.inst_results(call).to_vec();
            self.leave(&results);
            // The rest of the activation is unreachable (Cranelift removes it).
            let unreachable = self.b.create_block();
            self.b.switch_to_block(unreachable);
            return;
        }
        let slow = self.b.create_block();
        let done = self.b.create_block();
        self.b.set_cold_block(slow);
        let callee_regs = self.b.ins().iadd_imm_s(self.regs, (base as i64 + 1) * 16);

        // The VM's checks before a call, in one cold branch: the callee is still the
        // function compiled against and no interrupt is pending (one epoch word), the
        // depth limit, and the callee's window lies in the initialized register stack.
        // An inlined self-call of a function that calls only itself, and a leaf inlined at
        // the top level of one that inlines only leaves, had the first two checked at the
        // entry (`entry`, `entry_osr`).
        // An accumulated call gets here only to be made for real (`accumulate`).
        let real = self.accumulates_at(pc);
        let unrolled = matches!(site.target, CallTarget::Direct(_))
            && self.inline_level < self.settings.inline_depth
            && !real;
        let inline_callee = self.an.inline.get(&pc).copied();
        let leaf_checked = inline_callee.is_some() && self.inline_level == 0;
        // Under a depth measure no call below the entry reaches the depth limit, and the
        // function cannot be redefined while it runs: a real self-call leaves the epoch
        // (an interrupt) to the callee's entry (`accumulate`).
        let measured = self.an.measure.is_some() && matches!(site.target, CallTarget::Direct(_));
        let mut any = if (unrolled && self.call_checks_at_entry)
            || (leaf_checked && self.leaf_checks_at_entry)
            || measured
        {
            None
        } else {
            Some(self.call_checks(0))
        };
        // A callee whose code (compiled here, inlined or a direct self-call) keeps
        // everything unboxed never touches the new window on its fast path (helpers make
        // room when they need it).
        let callee_window = match (site.target, inline_callee) {
            (CallTarget::Direct(_), _) => self.an.uses_window,
            (_, Some(i)) => self.analyses[i].uses_window,
            _ => true,
        };
        if callee_window {
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
            any = Some(match any {
                Some(any) => self.b.ins().bor(any, short),
                None => short,
            });
        }
        let checked = self.b.create_block();
        match any {
            Some(any) => self.b.ins().brif(any, slow, &[], checked, &[]),
            None => self.b.ins().jump(checked, &[]),
        };
        self.b.switch_to_block(checked);

        let level = self.level();
        let mut args = vec![
            self.ctx,
            self.iconst(site.closure as i64),
            callee_regs,
            self.b.ins().iadd_imm_s(level, 1),
        ];
        for i in 0..argc as Reg {
            let r = base + 1 + i;
            args.push(self.get(r, state[r as usize]));
        }
        // An inlined body returning the expected unboxed type goes straight to `typed`.
        let typed = result.is_unboxed().then(|| {
            let block = self.b.create_block();
            self.b.append_block_param(block, cl_type(result));
            (block, result)
        });
        // A term of the sum (`accumulate`): it goes into the sum, not its register; an
        // inlined activation of it starts from the sum and returns the new one.
        let term = self.threads_at(pc);
        debug_assert!(!term || result == Ty::Int, "terms are ints");
        let seeded = term && unrolled && typed.is_some();
        let results = match site.target {
            CallTarget::Direct(_) if unrolled => {
                self.inlined += 1;
                let (an, closure) = (self.an, self.closure);
                let seed = seeded.then(|| self.current_sum());
                self.inline_call(an, closure, &args, typed, false, seed)
            }
            CallTarget::Slot { .. } if inline_callee.is_some() => {
                let analyses = self.analyses;
                let an = &analyses[inline_callee.expect("an inlined callee")];
                let line = self.an.env.proto.lines[pc];
                self.inlined_callees
                    .push((an.env.proto.name.to_string(), line));
                let closure = args[1];
                self.inline_call(an, closure, &args, typed, false, None)
            }
            CallTarget::Direct(_) if self.peel_self_calls() && !real => {
                self.peeled += 1;
                let (an, closure) = (self.an, self.closure);
                self.inline_call(an, closure, &args, typed, true, None)
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
            let into_sum = term.then_some(seeded);
            self.check_result(pc, base, result, params[0], params[1], &out, done, into_sum);
            if let Some((block, ty)) = typed {
                self.b.switch_to_block(block);
                let v = self.b.block_params(block)[0];
                if term {
                    self.take_term(v, seeded);
                } else {
                    self.set(base, ty, v);
                }
                self.b.ins().jump(done, &[]);
            }
        } else {
            self.call_result(pc, base, result, results[0], results[1], &out, done);
            self.b.switch_to_block(slow);
            self.step(pc, state);
            self.b.ins().jump(done, &[]);
        }
        self.b.switch_to_block(done);
    }

    /// Checks a call's `(tag, payload)` against the expected type and continues at `done`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn call_result(
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
            self.check_result(pc, base, result, tag, payload, out, done, None);
        } else {
            let is_error = self.b.ins().icmp_imm_s(IntCC::Equal, tag, TAG_ERROR);
            self.return_error_if(is_error);
            self.store_boxed(base, tag, payload);
            self.b.ins().jump(done, &[]);
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn check_result(
        &mut self,
        pc: usize,
        base: Reg,
        result: Ty,
        tag: ClValue,
        payload: ClValue,
        out: &[Ty],
        done: Block,
        term: Option<bool>,
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
        self.return_error_if(is_error);
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
        match term {
            // A seeded activation returns its value through the typed exit; anything else
            // that gets here (nothing does, but a restart is always exact) restarts, so
            // that the sum need not be kept across the activation for this path.
            Some(true) => {
                let got = self.iconst(-1);
                self.restart(None, runtime::REASON_SLOW_PATH, got);
                let unreachable = self.b.create_block();
                self.b.switch_to_block(unreachable);
            }
            Some(false) => self.take_term(v, false),
            None => self.set(base, result, v),
        }
        self.b.ins().jump(done, &[]);
    }

    /// Deoptimizes at `pc + 1` with a call's result (register, tag, payload) going into its
    /// register.
    pub(super) fn deopt_after(
        &mut self,
        pc: usize,
        result: (Reg, ClValue, ClValue),
        out: &[Ty],
        reason: i64,
        got: ClValue,
    ) {
        let mut state = out.to_vec();
        for (r, t) in state.iter_mut().enumerate() {
            if !self.an.live.is_live(pc + 1, r) {
                *t = Ty::Dead;
            }
        }
        self.deopt_with(&state, pc + 1, Some(result), reason, got);
    }

    pub(super) fn ret(&mut self, src: Reg, ty: Ty) {
        if ty.is_unboxed() {
            let mut v = self.get(src, ty);
            if self.an.uses_window {
                let n = self.iconst(self.an.env.proto.num_regs as i64);
                self.b.ins().call(self.helpers.clear, &[self.regs, n]);
            }
            if self.accumulator.is_some() {
                v = self.accumulated_return(v);
            }
            if let Some((block, expected)) = self.typed_exit {
                if expected == ty {
                    self.b.ins().jump(block, &[v.into()]);
                    return;
                }
            }
            let bits = self.payload_bits(ty, v);
            let tag = self.iconst(tag_of(ty));
            self.leave(&[tag, bits]);
        } else {
            let src_v = self.iconst(src as i64);
            let n = self.iconst(self.an.env.proto.num_regs as i64);
            let call = self
                .b
                .ins()
                .call(self.helpers.return_boxed, &[self.regs, src_v, n]);
            let r = self.b.inst_results(call).to_vec();
            self.leave(&r);
        }
    }
}

impl<'a> Translator<'a, '_> {
    /// Translates a call with `args` (as the call would pass them) inline: the callee's
    /// body (`an`, for `closure`; the function itself, for a self-call), on the callee's
    /// window, one level deeper. Its exits (return, deopt, error) all arrive at one
    /// continuation with the `(tag, payload)` a call would have returned, so what follows is
    /// the same as after a call: a deopt inside lands in the callee's own VM frame, which
    /// the VM finishes, and its result comes back here.
    pub(super) fn inline_call(
        &mut self,
        an: &'a Analysis<'a>,
        closure: ClValue,
        args: &[ClValue],
        typed_exit: Option<(Block, Ty)>,
        peeled: bool,
        seed: Option<ClValue>,
    ) -> Vec<ClValue> {
        let cont = self.b.create_block();
        self.b.append_block_param(cont, I64);
        self.b.append_block_param(cont, I64);
        let vars = register_vars(&mut self.b, an.env.proto.num_regs as usize);
        let frame = FrameParts {
            an,
            closure,
            blocks: vec![None; an.env.proto.code.len() + 1],
            vars,
            regs: args[2],
            level: args[3],
            hoisted: std::collections::HashMap::new(),
            arrays: Default::default(),
            exit: Some(cont),
            typed_exit,
            restart: peeled.then(|| args.to_vec()),
            deopt_exit: None,
            accumulator: None,
        };
        let outer = self.swap_frame(frame);
        self.inline_level += 1;
        self.plan_hoisting();
        let mut next_arg = 4;
        for (i, ty) in an.env.params.iter().enumerate() {
            if ty.is_unboxed() {
                self.set(i as Reg, *ty, args[next_arg]);
                next_arg += 1;
            }
        }
        if !peeled && !an.accumulated.is_empty() {
            self.start_accumulator(args[3], args[4..].to_vec(), seed);
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
}
