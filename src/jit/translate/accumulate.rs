//! Tier 2's accumulator loops: a self-call whose result is added to a term and returned
//! (`return fib(n - 1) + fib(n - 2)`, the second call) becomes a jump back to the start
//! of the activation, with the term added to a running sum and the call's arguments as
//! the new parameters. This is gcc's "tail recursion with an accumulator"; the other
//! self-call stays a call, so each unrolled level holds one inlined activation instead of
//! two, and tier 2 can unroll deeper (`jit::unroll_depth`).
//!
//! **Why it is exact.** The VM computes `t0 + (t1 + (t2 + ... + b))`, nested to the right,
//! the loop `((t0 + t1) + t2) + ... + b`. With checked arithmetic the two orders can
//! differ only in which sums overflow; when every term and the base are at least 0, every
//! partial sum of either order lies between 0 and the total, so either both overflow or
//! neither does, and the values are equal. So a term or base below 0 (when something was
//! already summed) or a sum that overflows **restarts** the compiled call: the VM runs
//! the outermost activation from its start, with the arguments it was entered with, at
//! its own depth, and its result is the call's. Restarting is exact because the
//! function calls only itself and writes no binding (`calls_only_itself`): what ran of
//! it had no effect outside its registers. Every other way out to the VM (a failed
//! guard, an error to raise) restarts the same way, since the VM cannot resume in the
//! middle of a loop it never had. Restarting the outermost activation rather than the
//! one that failed means that no activation keeps what it was entered with: an inlined
//! activation's loop has its parameters and its sum live, nothing more. Errors passed up
//! from a call inside the loop are already the VM's: the terms are computed in the same
//! order in both forms, and the VM adds only after the last term.
//!
//! **Depth.** Iteration `k` stands for the activation the VM would run `k` frames down,
//! so the loop counts its level as the VM would; at the back edge it checks what the
//! call it replaces would check, and that the inlined calls below the next iteration
//! stay within the limit (the entry's promise, `call_checks_at_entry`). When that fails
//! (near the limit, or an interrupt is pending), the iteration makes its call for real
//! and returns the sum with its result: the real call checks for itself.
//!
//! **A depth measure** makes counting unnecessary. When every self-call passes a
//! parameter `p` as `p - c` (`c >= 1`, `p` never written) and is reached only past a
//! test `p >= k` (fib's `if n < 2 { return n }`), a chain of calls from `f(p)` is at
//! most `p - k + 1` calls long, so no call below an activation entered at level `L` can
//! reach the limit when `p - k < max_depth - L`. The entry tests that once (`measure`),
//! and then nothing below it counts levels or checks them: its loops, its inlined calls
//! and the real calls it makes all run at the entry's level plus their inline level, at
//! or above which the VM would be, and no depth check below can fail at either level,
//! so none can tell them apart. If the test fails the VM runs the activation.

use super::*;

/// An activation whose accumulated self-calls loop back to its start.
#[derive(Clone, Copy)]
pub(super) struct Accumulator {
    /// The terms added so far.
    sum: Variable,
    /// The call depth of the current iteration (none under a depth measure: the
    /// activation runs at its entry's level).
    level: Option<Variable>,
    /// Whether the sum started from the caller's (see `threaded_terms`): its returns then
    /// give the caller's new sum, through the typed exit.
    seeded: bool,
}

/// What restarting needs: the outermost activation's arguments, window and level, and its
/// one call of `rt_resume` (made on first use), which every restart below it jumps to.
#[derive(Clone)]
pub(super) struct Restart {
    args: Vec<ClValue>,
    regs: ClValue,
    level: ClValue,
    block: Option<Block>,
}

/// The self-calls of a function that tier 2 turns into its loop's back edge: a direct
/// `CALLGLOBAL` of the function with its own signature, followed by `ADD d, t, result`
/// and `RETURN d`, which nothing jumps to, with an int term `t` computed before the
/// call. Only for a function that calls only itself and writes no binding (restarts must
/// be exact), takes only unboxed arguments (the loop carries them in variables) and
/// always returns an int.
pub fn accumulated_calls(env: &Env, types: &Types) -> Vec<usize> {
    let proto = env.proto;
    let code = &proto.code;
    let plan = |pc: usize| Some(env.decide(pc, types.states[pc].as_deref()?).0);
    let self_call = |pc: usize| matches!(plan(pc), Some(Plan::FastCall { direct: true, .. }));
    if env.osr.is_some()
        || types.returns != Ty::Int
        || !env.params.iter().all(|t| t.is_unboxed())
        || !calls::keeps_bindings(proto, self_call)
    {
        return Vec::new();
    }
    let mut jumped_to = vec![false; code.len() + 1];
    for (pc, op) in code.iter().enumerate() {
        for next in successors(op, pc, env.argc) {
            if next != pc + 1 {
                jumped_to[next.min(code.len())] = true;
            }
        }
    }
    let mut calls = Vec::new();
    for pc in 0..code.len().saturating_sub(2) {
        let Op::CallGlobal { base, argc, .. } = code[pc] else {
            continue;
        };
        let (Op::Add { dst, a: term, b }, Op::Return { src }) = (code[pc + 1], code[pc + 2]) else {
            continue;
        };
        let Some(state) = types.states[pc].as_deref() else {
            continue;
        };
        let args_fit = argc as usize == env.argc
            && (0..argc as usize).all(|i| state[base as usize + 1 + i] == env.params[i]);
        if self_call(pc)
            && args_fit
            && b == base
            && term != base
            && src == dst
            && state[term as usize] == Ty::Int
            && !jumped_to[pc + 1]
            && !jumped_to[pc + 2]
        {
            calls.push(pc);
        }
    }
    calls
}

/// For the accumulated calls `calls`: those whose term is the result of an earlier
/// direct self-call read by nothing but the `ADD` (`return fib(n - 1) + fib(n - 2)`),
/// as (that self-call's pc, the accumulated call's pc). The term is then added to the
/// sum as soon as its call returns, and when that call is translated inline, its own
/// loop starts from the caller's sum and returns the new one: the caller's sum need not
/// live across it, nor be added to.
pub fn threaded_terms(env: &Env, types: &Types, calls: &[usize]) -> Vec<(usize, usize)> {
    use crate::bytecode::dataflow::{defs, uses};
    let proto = env.proto;
    let code = &proto.code;
    let mut jumped_to = vec![false; code.len() + 1];
    for (pc, op) in code.iter().enumerate() {
        for next in successors(op, pc, env.argc) {
            if next != pc + 1 {
                jumped_to[next.min(code.len())] = true;
            }
        }
    }
    let mut threaded = Vec::new();
    for &call in calls {
        let Op::Add { a: term, .. } = code[call + 1] else {
            continue;
        };
        let readers: Vec<usize> = (0..code.len())
            .filter(|&pc| uses(&code[pc], proto).contains(&term))
            .collect();
        let writers: Vec<usize> = (0..code.len())
            .filter(|&pc| defs(&code[pc], proto).contains(&term))
            .collect();
        let [writer] = writers[..] else { continue };
        let self_call = types.states[writer].as_deref().is_some_and(|state| {
            matches!(
                env.decide(writer, state).0,
                Plan::FastCall { direct: true, .. }
            )
        });
        let straight = writer < call && !(writer + 1..=call + 2).any(|pc| jumped_to[pc]);
        if matches!(code[writer], Op::CallGlobal { base, .. } if base == term)
            && self_call
            && straight
            && readers == [call + 1]
        {
            threaded.push((writer, call));
        }
    }
    threaded
}

/// A depth measure of a function with accumulated self-calls: a parameter `p` and a
/// bound `k` such that every direct self-call passes `p - c` with `c >= 1` as `p`, and
/// is reached only past a test that `p >= k`; `p` itself is never written (see the
/// module's comment).
pub fn depth_measure(env: &Env, types: &Types) -> Option<(Reg, i64)> {
    let proto = env.proto;
    let code = &proto.code;
    let self_call = |pc: usize| {
        types.states[pc].as_deref().is_some_and(|state| {
            matches!(env.decide(pc, state).0, Plan::FastCall { direct: true, .. })
        })
    };
    let calls: Vec<usize> = (0..code.len()).filter(|&pc| self_call(pc)).collect();
    let mut jumped_to = vec![false; code.len() + 1];
    for (pc, op) in code.iter().enumerate() {
        for next in successors(op, pc, env.argc) {
            if next != pc + 1 {
                jumped_to[next.min(code.len())] = true;
            }
        }
    }
    let written = |r: Reg| {
        code.iter()
            .any(|op| crate::bytecode::dataflow::defs(op, proto).contains(&r))
    };
    // `p - c` in the argument register, written in straight-line code before the call.
    let decreases = |p: Reg, pc: usize| {
        let Op::CallGlobal { base, .. } = code[pc] else {
            return false;
        };
        let arg = base + 1 + p;
        for at in (0..pc).rev() {
            if jumped_to[at + 1] {
                return false;
            }
            if crate::bytecode::dataflow::defs(&code[at], proto).contains(&arg) {
                return match code[at] {
                    Op::SubI { a, imm, .. } => a == p && imm >= 1,
                    Op::AddI { a, imm, .. } => a == p && imm <= -1,
                    _ => false,
                };
            }
        }
        false
    };
    for p in 0..env.argc as Reg {
        if env.params[p as usize] != Ty::Int || written(p) {
            continue;
        }
        if !calls.iter().all(|&pc| decreases(p, pc)) {
            continue;
        }
        // A compare-and-branch on `p` whose one edge says `p >= k`: with that edge
        // taken away, no self-call is reachable.
        for (at, op) in code.iter().enumerate() {
            let (edge, k) = match *op {
                Op::JumpIfNotLtI { a, imm, target } if a == p => (target as usize, imm as i64),
                Op::JumpIfNotLeI { a, imm, target } if a == p => (target as usize, imm as i64 + 1),
                Op::JumpIfNotGeI { a, imm, .. } if a == p => (at + 1, imm as i64),
                Op::JumpIfNotGtI { a, imm, .. } if a == p => (at + 1, imm as i64 + 1),
                _ => continue,
            };
            let mut seen = vec![false; code.len() + 1];
            let mut work = vec![0];
            while let Some(pc) = work.pop() {
                if pc >= code.len() || std::mem::replace(&mut seen[pc], true) {
                    continue;
                }
                for next in successors(&code[pc], pc, env.argc) {
                    if !(pc == at && next == edge) {
                        work.push(next);
                    }
                }
            }
            if !calls.iter().any(|&pc| seen[pc]) {
                return Some((p, k));
            }
        }
    }
    None
}

impl Translator<'_, '_> {
    /// Starts an activation that loops at its accumulated self-calls, entered at `level`
    /// with `args` (its unboxed parameters, in order); `seed` is its caller's sum, for a
    /// term of it (`threaded_terms`). The outermost activation is the one restarts run.
    pub(super) fn start_accumulator(
        &mut self,
        level: ClValue,
        args: Vec<ClValue>,
        seed: Option<ClValue>,
    ) {
        if self.restart_point.is_none() {
            self.restart_point = Some(Restart {
                args,
                regs: self.regs,
                level,
                block: None,
            });
        }
        let sum = self.b.declare_var(I64);
        let seeded = seed.is_some();
        let start = seed.unwrap_or_else(|| self.iconst(0));
        self.b.def_var(sum, start);
        let level_var = self.an.measure.is_none().then(|| {
            let var = self.b.declare_var(I64);
            self.b.def_var(var, level);
            var
        });
        self.accumulator = Some(Accumulator {
            sum,
            level: level_var,
            seeded,
        });
    }

    /// The call depth of the activation being translated (of the current iteration, in
    /// an accumulator loop).
    pub(super) fn level(&mut self) -> ClValue {
        match self.accumulator.and_then(|acc| acc.level) {
            Some(var) => self.b.use_var(var),
            None => self.level,
        }
    }

    /// Under a depth measure `(p, k)`: true (an i8) unless every call below this
    /// activation stays within the depth limit, `p - k < max_depth - level`.
    pub(super) fn measure_exceeded(&mut self) -> Option<ClValue> {
        let (p, k) = self.an.measure?;
        let v = self.get(p, Ty::Int);
        let bound = self.iconst(k.saturating_add(self.settings.max_depth as i64));
        let limit = self.b.ins().isub(bound, self.level);
        Some(self.b.ins().icmp(IntCC::SignedGreaterThanOrEqual, v, limit))
    }

    /// Whether the call at `pc` is an accumulated one of the activation being translated.
    pub(super) fn accumulates_at(&self, pc: usize) -> bool {
        self.accumulator.is_some() && self.an.accumulated.contains(&pc)
    }

    /// Whether the call at `pc` computes a term that goes into the sum when it returns
    /// (`threaded_terms`).
    pub(super) fn threads_at(&self, pc: usize) -> bool {
        self.accumulator.is_some() && self.an.threaded.iter().any(|t| t.0 == pc)
    }

    /// The sum so far (to seed a term's activation with).
    pub(super) fn current_sum(&mut self) -> ClValue {
        let acc = self.accumulator.expect("an accumulator loop");
        self.b.use_var(acc.sum)
    }

    /// A term returned by a call: the sum is its value when the call's activation started
    /// from the sum (`seeded`), else the sum plus its value.
    pub(super) fn take_term(&mut self, v: ClValue, seeded: bool) {
        let acc = self.accumulator.expect("an accumulator loop");
        let sum = if seeded {
            v
        } else {
            let sum = self.b.use_var(acc.sum);
            self.add_term(sum, v)
        };
        self.b.def_var(acc.sum, sum);
    }

    /// In the current block: hands the compiled call to the VM, which runs its outermost
    /// activation from the start with the arguments it was entered with; the VM's
    /// result is returned. `extra`, a value a failed check had in hand, goes into its
    /// register, where the VM's clearing of the stack releases it.
    pub(super) fn restart(
        &mut self,
        extra: Option<(Reg, ClValue, ClValue)>,
        reason: i64,
        got: ClValue,
    ) {
        let point = self.restart_point.clone().expect("an accumulator loop");
        if let Some((r, tag, payload)) = extra {
            self.store_boxed(r, tag, payload);
        }
        let params = self.an.env.params.clone();
        for (i, (ty, v)) in params.iter().zip(&point.args).enumerate() {
            self.set(i as Reg, *ty, *v);
        }
        let here = std::mem::replace(&mut self.regs, point.regs);
        self.nil_locals();
        self.regs = here;
        let state = self.state(0).to_vec();
        let live = self.live_unboxed(&state, 0, None);
        let (_, site) = self.exit_site(0, &live, None, reason);
        let block = match point.block {
            Some(block) => block,
            None => {
                let block = self.b.create_block();
                self.b.set_cold_block(block);
                let got = self.b.append_block_param(block, I64);
                let site = self.b.append_block_param(block, I64);
                let here = self.b.current_block().expect("in a block");
                self.b.switch_to_block(block);
                let slot = self.spill_slot.expect("an exit site made the spill buffer");
                let buffer = self.b.ins().stack_addr(I64, slot, 0);
                let args = [self.ctx, point.regs, point.level, got, buffer, site];
                let call = self.b.ins().call(self.helpers.resume, &args);
                let r = self.b.inst_results(call).to_vec();
                self.b.ins().return_(&r);
                self.b.switch_to_block(here);
                if let Some(p) = self.restart_point.as_mut() {
                    p.block = Some(block);
                }
                block
            }
        };
        self.b.ins().jump(block, &[got.into(), site.into()]);
    }

    /// A cold block that restarts.
    fn cold_restart(&mut self, reason: i64) -> Block {
        let block = self.b.create_block();
        self.b.set_cold_block(block);
        let here = self.b.current_block().expect("in a block");
        self.b.switch_to_block(block);
        let got = self.iconst(-1);
        self.restart(None, reason, got);
        self.b.switch_to_block(here);
        block
    }

    /// `sum + v`, continuing only when the reassociation is exact (`v` and the new sum
    /// are at least 0); otherwise a restart.
    fn add_term(&mut self, sum: ClValue, v: ClValue) -> ClValue {
        let total = self.b.ins().iadd(sum, v);
        let signs = self.b.ins().bor(v, total);
        let negative = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, signs, 0);
        let fail = self.cold_restart(runtime::REASON_ACCUMULATOR);
        let cont = self.b.create_block();
        self.b.ins().brif(negative, fail, &[], cont, &[]);
        self.b.switch_to_block(cont);
        total
    }

    /// The accumulated self-call at `pc`: adds the term (unless its call did) and jumps
    /// back to the start with the call's arguments, one level deeper; or, when the call's
    /// checks would fail there, makes the call for real and returns the sum with its
    /// result (falling through to the `ADD` and `RETURN` after it, if the term is still
    /// to add). Returns whether it falls through.
    pub(super) fn accumulate(
        &mut self,
        pc: usize,
        base: Reg,
        argc: u8,
        result: Ty,
        state: &[Ty],
    ) -> bool {
        let threaded = self.an.threaded.iter().any(|t| t.1 == pc);
        let Op::Add { a: term, .. } = self.an.env.proto.code[pc + 1] else {
            unreachable!("an accumulated call is followed by its ADD")
        };
        let acc = self.accumulator.expect("an accumulator loop");
        // The checks of the call this iteration stands for, and of the inlined calls
        // below the next iteration (the deepest `inline_depth - 1 - inline_level` levels
        // further down): the depth, and a pending interrupt. The function cannot be
        // redefined while it runs (it calls only itself and writes no binding), so of
        // the epoch only the interrupt can change, which the flag tells more cheaply;
        // the real call checks the epoch itself. Two branches, not one on an `or` of
        // two flags: that is two `setcc`s, an `or` and a `test` more on the hot path.
        let extra = self.settings.inline_depth.saturating_sub(self.inline_level);
        let real = self.b.create_block();
        self.b.set_cold_block(real);
        let flag = self.iconst(self.settings.interrupt_flag as i64);
        let interrupted = self.b.ins().atomic_load(I8, flags(), flag);
        let again = self.b.create_block();
        if let Some(level_var) = acc.level {
            let polled = self.b.create_block();
            self.b.ins().brif(interrupted, real, &[], polled, &[]);
            self.b.switch_to_block(polled);
            let level = self.b.use_var(level_var);
            let limit = self.settings.max_depth.saturating_sub(extra) as i64;
            let deep = self
                .b
                .ins()
                .icmp_imm_u(IntCC::UnsignedGreaterThanOrEqual, level, limit);
            self.b.ins().brif(deep, real, &[], again, &[]);
            self.b.switch_to_block(again);
            let deeper = self.b.ins().iadd_imm_s(level, 1);
            self.b.def_var(level_var, deeper);
        } else {
            self.b.ins().brif(interrupted, real, &[], again, &[]);
            self.b.switch_to_block(again);
        }
        if !threaded {
            let x = self.get(term, Ty::Int);
            let sum = self.b.use_var(acc.sum);
            let sum = self.add_term(sum, x);
            self.b.def_var(acc.sum, sum);
        }
        let args: Vec<ClValue> = (0..argc as Reg)
            .map(|i| self.get(base + 1 + i, state[(base + 1 + i) as usize]))
            .collect();
        let params = self.an.env.params.clone();
        for (i, (ty, v)) in params.iter().zip(args).enumerate() {
            self.set(i as Reg, *ty, v);
        }
        self.accumulated += 1;
        self.nil_locals();
        let start = self.block_for(0);
        self.b.ins().jump(start, &[]);

        self.b.switch_to_block(real);
        let first = self.b.func.dfg.num_blocks();
        self.fast_call(pc, base, argc, result, state);
        if threaded {
            self.ret(base, result);
        }
        // All of the real call's blocks are as cold as its first: laid out after the
        // loops, not between them.
        for block in first..self.b.func.dfg.num_blocks() {
            self.b.set_cold_block(Block::from_u32(block as u32));
        }
        !threaded
    }

    /// A return of the int `v` from an accumulator loop: the sum plus `v`, when exact.
    /// When a loop that did not start from its caller's sum summed nothing yet, `v`
    /// itself is exact. Else a restart.
    pub(super) fn accumulated_return(&mut self, v: ClValue) -> ClValue {
        let acc = self.accumulator.expect("an accumulator loop");
        let sum = self.b.use_var(acc.sum);
        let total = self.b.ins().iadd(sum, v);
        let signs = self.b.ins().bor(v, total);
        let negative = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, signs, 0);
        let done = self.b.create_block();
        self.b.append_block_param(done, I64);
        let odd = if acc.seeded {
            self.cold_restart(runtime::REASON_ACCUMULATOR)
        } else {
            let odd = self.b.create_block();
            self.b.set_cold_block(odd);
            let here = self.b.current_block().expect("in a block");
            self.b.switch_to_block(odd);
            let fresh = self.b.ins().icmp_imm_s(IntCC::Equal, sum, 0);
            let fail = self.cold_restart(runtime::REASON_ACCUMULATOR);
            self.b.ins().brif(fresh, done, &[v.into()], fail, &[]);
            self.b.switch_to_block(here);
            odd
        };
        self.b.ins().brif(negative, odd, &[], done, &[total.into()]);
        self.b.switch_to_block(done);
        self.b.block_params(done)[0]
    }
}
