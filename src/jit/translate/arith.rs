//! Arithmetic and comparisons on unboxed values (checked, as the VM), and fast helper
//! paths for common boxed instructions.

use super::*;

impl Translator<'_, '_> {
    /// Common instructions on boxed values through a fast helper (see `runtime`), with
    /// the VM as the fallback; returns false when the instruction has none.
    pub(super) fn fast_boxed(&mut self, pc: usize, op: &Op, state: &[Ty]) -> bool {
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
        // Array instructions first try the array in place (`inline_array`), and fall
        // back to their helper, then to the VM.
        let layout = self.settings.array;
        let mut done = None;
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
                if let Some(layout) = layout {
                    let block = *done.insert(self.b.create_block());
                    self.get_in_place(&layout, pc, (dst, base, i), block);
                }
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
                if let Some(layout) = layout {
                    let block = *done.insert(self.b.create_block());
                    self.set_in_place(&layout, pc, (base, i), (tag, bits), block);
                }
                let args = [self.regs, reg(self, base), i, tag, bits];
                let call = self.b.ins().call(self.helpers.set_index, &args);
                self.b.inst_results(call)[0]
            }
            PlaceUpdate {
                dst, place, src, ..
            } => {
                let p = &self.an.env.proto.places[place as usize];
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
                if let Some(layout) = layout {
                    let block = *done.insert(self.b.create_block());
                    self.push_in_place(&layout, pc, (dst, root), (tag, bits), block);
                }
                let args = [self.regs, reg(self, dst), reg(self, root), tag, bits];
                let call = self.b.ins().call(self.helpers.push, &args);
                self.b.inst_results(call)[0]
            }
            LoadConst { dst, k } => {
                let constant = &self.an.env.proto.const_values[k as usize] as *const _ as i64;
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
        let cont = done.unwrap_or_else(|| self.b.create_block());
        self.b.set_cold_block(slow);
        self.b.ins().brif(status, slow, &[], cont, &[]);
        self.b.switch_to_block(slow);
        self.step(pc, state);
        self.b.ins().jump(cont, &[]);
        self.b.switch_to_block(cont);
        true
    }

    /// Truthiness of register `r` as an i8 (1 = truthy).
    pub(super) fn truthy(&mut self, r: Reg, ty: Ty) -> ClValue {
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
    pub(super) fn work_type(plan: &Plan, a: Ty, b: Ty) -> Ty {
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
    pub(super) fn operands(
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
    pub(super) fn binary(
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
        } else if self.an.ranges.unchecked.contains(&pc) {
            // Overflow that the loop's bounds rule out (`jit::range`) is not tested.
            match op {
                Add { .. } | AddI { .. } => self.b.ins().iadd(x, y),
                Sub { .. } | SubI { .. } => self.b.ins().isub(x, y),
                Mul { .. } | MulI { .. } => match self.hoisted.get(&pc) {
                    Some(&(_, product, _, _)) => self.b.use_var(product),
                    None => self.b.ins().imul(x, y),
                },
                _ => unreachable!("only + - * are proven"),
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

    /// A comparison as an i8: 1 when it holds, or with `holds` false, 1 when it fails. A
    /// `JUMPIFNOT` branches on the failing one. For floats that is the complemented
    /// condition (Cranelift does not fold `icmp eq (fcmp cc), 0`, and the result went through
    /// a register: `ucomisd; setae; test; jz` instead of `ucomisd; jb` in mandel's inner
    /// loop); for ints and bools it is `icmp eq r, 0`, which the egraph folds into the
    /// complemented `icmp` itself.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn compare(
        &mut self,
        pc: usize,
        op: &Op,
        plan: &Plan,
        a: (Reg, Ty),
        b: (Option<Reg>, Ty),
        imm: i64,
        holds: bool,
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
                let r = self.b.ins().icmp(cc, x, y);
                self.fails_if(r, holds)
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
                // The complement keeps NaN's meaning: `not (x <= y)` is "unordered or >".
                let cc = if holds { cc } else { cc.complement() };
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
                let r = if c == C::Eq {
                    same
                } else {
                    self.b.ins().bxor_imm_u(same, 1)
                };
                self.fails_if(r, holds)
            }
        }
    }

    /// `r` itself (`holds`), or whether it is 0.
    fn fails_if(&mut self, r: ClValue, holds: bool) -> ClValue {
        if holds {
            r
        } else {
            self.b.ins().icmp_imm_s(IntCC::Equal, r, 0)
        }
    }
}
