//! Branch layout for hot loops: loop rotation, and if-conversion of short branches.
//!
//! On the machine this was measured on (AMD Zen 4), a small loop's speed follows the number
//! of taken branches per iteration and how many 64-byte lines it spans, more than its
//! instruction count: `nested`'s inner loop ran 1.5× slower when a layout change made it
//! cross one more line boundary between taken branches. Cranelift does not align or rotate
//! loops, so the translator emits shapes with fewer taken branches.

use super::*;

impl Translator<'_, '_> {
    /// Whether the back edge at `pc`, arriving with the types `out`, translates its loop's
    /// test at `header` itself (loop rotation): the test is a typed compare-and-branch that
    /// leaves the loop (it jumps past the back edge: a `loop` whose body starts with an `if`
    /// has a branch there too, but one that stays inside), and it expects exactly those
    /// types, so nothing needs boxing on the way.
    pub(super) fn rotates(&self, pc: usize, header: usize, out: &[Ty]) -> bool {
        let op = self.an.env.proto.code[header];
        op.is_conditional_jump()
            && op.target().is_some_and(|exit| exit as usize > pc)
            && self.an.types.states[header].as_deref() == Some(out)
            && self.an.env.decide(header, out).0 != Plan::Step
    }

    /// If-conversion of the branch at `pc`, which jumps to `target` when `cond` is
    /// `skip_when`: when the instructions it would skip are a few that can neither fail
    /// nor have an effect outside their registers (`convertible`), they are translated
    /// unconditionally and each register they write keeps its new value only where the
    /// branch was not taken (`select`). Then there is no branch at all: `count = count +
    /// 1` under a rarely true test was a taken jump over it in almost every iteration.
    /// Returns whether it did; translation then goes on at `target`.
    pub(super) fn convert_if(
        &mut self,
        pc: usize,
        cond: ClValue,
        skip_when: bool,
        target: usize,
    ) -> bool {
        let Some(written) = self.convertible(pc, target) else {
            return false;
        };
        let before: Vec<ClValue> = written.iter().map(|&(r, ty)| self.get(r, ty)).collect();
        for q in pc + 1..target {
            let falls_through = self.instruction(q);
            debug_assert!(falls_through, "a convertible instruction falls through");
        }
        for (&(r, ty), old) in written.iter().zip(before) {
            let new = self.get(r, ty);
            let kept = if skip_when {
                self.b.ins().select(cond, old, new)
            } else {
                self.b.ins().select(cond, new, old)
            };
            self.set(r, ty, kept);
        }
        self.continue_at = Some(target);
        self.if_converted += 1;
        true
    }

    /// The registers to select after the instructions between `pc` and `target`, if they
    /// can be if-converted: at most `IF_CONVERT_MAX` of them, each a constant, a copy or
    /// `+ - *` on unboxed values with no check (floats, or ints whose overflow the loop's
    /// range analysis ruled out), reached only from `pc` (no other jump lands among
    /// them), and with the same types after them as when the branch is taken. Registers
    /// they write that are live at `target` must hold the same unboxed type before.
    fn convertible(&self, pc: usize, target: usize) -> Option<Vec<(Reg, Ty)>> {
        use Op::*;
        const IF_CONVERT_MAX: usize = 4;
        let proto = self.an.env.proto;
        if target <= pc + 1 || target - pc - 1 > IF_CONVERT_MAX || target >= proto.code.len() {
            return None;
        }
        let inside = pc + 1..target;
        let mut written = Vec::new();
        for q in inside.clone() {
            let state = self.an.types.states[q].as_deref()?;
            let op = proto.code[q];
            let plan = self.an.env.decide(q, state).0;
            let unboxed = |r: Reg| state[r as usize].is_unboxed();
            let pure = match op {
                LoadInt { .. } => true,
                Move { src, .. } => unboxed(src),
                Add { a, b, .. } | Sub { a, b, .. } | Mul { a, b, .. } => {
                    plan == Plan::Native
                        && unboxed(a)
                        && unboxed(b)
                        && (state[a as usize] == Ty::Float && state[b as usize] == Ty::Float
                            || self.an.ranges.unchecked.contains(&q))
                }
                AddI { a, .. } | SubI { a, .. } | MulI { a, .. } => {
                    plan == Plan::Native
                        && (state[a as usize] == Ty::Float
                            || state[a as usize] == Ty::Int
                                && self.an.ranges.unchecked.contains(&q))
                }
                _ => false,
            };
            if !pure || !self.agrees(q + 1, &self.out_state(q)) {
                return None;
            }
            written.extend(crate::bytecode::dataflow::defs(&op, proto));
        }
        // Last, as it reads the whole function: no other jump may land among them.
        let argc = self.an.env.argc;
        for (from, op) in proto.code.iter().enumerate() {
            for to in successors(op, from, argc) {
                let fallthrough = to == from + 1 && (pc..target - 1).contains(&from);
                if inside.contains(&to) && !fallthrough {
                    return None;
                }
            }
        }
        let at_target = self.an.types.states[target].as_deref()?;
        if !self.agrees(target, &self.out_state(pc))
            || !self.agrees(target, &self.out_state(target - 1))
        {
            return None;
        }
        let before = self.state(pc);
        written.sort_unstable();
        written.dedup();
        let mut selected = Vec::new();
        for r in written {
            if !self.an.live.is_live(target, r as usize) {
                continue;
            }
            let ty = at_target[r as usize];
            if !ty.is_unboxed() || before[r as usize] != ty {
                return None;
            }
            selected.push((r, ty));
        }
        Some(selected)
    }

    /// Whether `state` gives every register live at `pc` the type `pc` expects.
    fn agrees(&self, pc: usize, state: &[Ty]) -> bool {
        let Some(expected) = self.an.types.states[pc].as_deref() else {
            return false;
        };
        (0..expected.len()).all(|r| !self.an.live.is_live(pc, r) || expected[r] == state[r])
    }
}
