//! Control flow: conditions as fused branches, blocks, and loops (with their ids, back
//! edges, `break` and `continue`).

use super::{CResult, FnCompiler, LoopCtx};
use crate::bytecode::op::{Op, Reg};
use crate::syntax::ast::*;
use crate::syntax::source::Span;

impl FnCompiler<'_> {
    /// Compiles a condition as a branch taken when it is false; returns the jumps to patch.
    /// A comparison becomes one fused compare-and-branch instruction.
    pub(super) fn cond_false(&mut self, cond: &Expr) -> CResult<Vec<usize>> {
        let span = cond.span;
        let mark = self.mark();
        let jumps = match &cond.kind {
            ExprKind::Binary(
                op @ (BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::Eq | BinOp::Ne),
                a,
                b,
            ) => {
                let small = match b.kind {
                    ExprKind::Int(i) => i16::try_from(i).ok(),
                    _ => None,
                };
                let ra = self.expr_any(a)?;
                let op = match small {
                    Some(imm) => match op {
                        BinOp::Lt => Op::JumpIfNotLtI {
                            a: ra,
                            imm,
                            target: 0,
                        },
                        BinOp::Le => Op::JumpIfNotLeI {
                            a: ra,
                            imm,
                            target: 0,
                        },
                        BinOp::Gt => Op::JumpIfNotGtI {
                            a: ra,
                            imm,
                            target: 0,
                        },
                        BinOp::Ge => Op::JumpIfNotGeI {
                            a: ra,
                            imm,
                            target: 0,
                        },
                        BinOp::Eq => Op::JumpIfNotEqI {
                            a: ra,
                            imm,
                            target: 0,
                        },
                        _ => Op::JumpIfNotNeI {
                            a: ra,
                            imm,
                            target: 0,
                        },
                    },
                    None => {
                        let rb = self.expr_any(b)?;
                        match op {
                            BinOp::Lt => Op::JumpIfNotLt {
                                a: ra,
                                b: rb,
                                target: 0,
                            },
                            BinOp::Le => Op::JumpIfNotLe {
                                a: ra,
                                b: rb,
                                target: 0,
                            },
                            BinOp::Gt => Op::JumpIfNotGt {
                                a: ra,
                                b: rb,
                                target: 0,
                            },
                            BinOp::Ge => Op::JumpIfNotGe {
                                a: ra,
                                b: rb,
                                target: 0,
                            },
                            BinOp::Eq => Op::JumpIfNotEq {
                                a: ra,
                                b: rb,
                                target: 0,
                            },
                            _ => Op::JumpIfNotNe {
                                a: ra,
                                b: rb,
                                target: 0,
                            },
                        }
                    }
                };
                vec![self.emit(op, span)]
            }
            // `a && b` is false as soon as either is.
            ExprKind::Logic(LogicOp::And, a, b) => {
                let mut jumps = self.cond_false(a)?;
                jumps.extend(self.cond_false(b)?);
                jumps
            }
            ExprKind::Unary(UnOp::Not, a) => {
                let r = self.expr_any(a)?;
                vec![self.emit(Op::JumpIfTrue { cond: r, target: 0 }, span)]
            }
            _ => {
                let r = self.expr_any(cond)?;
                vec![self.emit(Op::JumpIfFalse { cond: r, target: 0 }, span)]
            }
        };
        self.release(mark);
        Ok(jumps)
    }

    pub(super) fn block(&mut self, b: &Block, dst: Option<Reg>, span: Span) -> CResult {
        if !b.entry_cells.is_empty() {
            let mark = self.mark();
            let nil = self.alloc(span)?;
            self.emit(Op::LoadNil { dst: nil }, span);
            for &c in &b.entry_cells {
                self.emit(
                    Op::NewCell {
                        cell: c as u16,
                        src: nil,
                    },
                    span,
                );
            }
            self.release(mark);
        }
        match b.stmts.split_last() {
            None => self.expr_nil(dst, span),
            Some((last, init)) => {
                for s in init {
                    self.expr(s, None)?;
                }
                self.expr(last, dst)?;
            }
        }
        Ok(())
    }

    pub(super) fn loop_index(&self, label: Option<&Name>) -> usize {
        match label {
            None => self.loops.len() - 1,
            Some(l) => self
                .loops
                .iter()
                .rposition(|c| c.label.as_ref() == Some(l))
                .expect("the resolver checked the label"),
        }
    }

    /// Records the loop's line and counts its entry; returns the loop header's pc.
    pub(super) fn begin_loop(&mut self, loop_id: u32, span: Span) -> u32 {
        self.loop_lines[loop_id as usize] = self.sources.line_of(span) as u32;
        self.emit(Op::LoopEnter { id: loop_id as u16 }, span);
        self.pc()
    }

    /// The body, back edge and exit shared by every loop: `break` values go to `result`,
    /// the body's value to `body_dst`; `continue` goes to the back edge; `exits` and
    /// `break`s leave.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn loop_body(
        &mut self,
        label: &Option<Name>,
        result: Option<Reg>,
        body_dst: Option<Reg>,
        body: &Expr,
        loop_id: u32,
        header: u32,
        exits: Vec<usize>,
        span: Span,
    ) -> CResult {
        self.loops.push(LoopCtx {
            label: label.clone(),
            result,
            breaks: Vec::new(),
            continues: Vec::new(),
        });
        self.expr(body, body_dst)?;
        let ctx = self.loops.pop().expect("pushed");
        let back = self.emit(
            Op::BackEdge {
                id: loop_id as u16,
                target: header,
            },
            span,
        );
        for at in ctx.continues {
            self.code[at].set_target(back as u32);
        }
        for at in exits.into_iter().chain(ctx.breaks) {
            self.patch_here(at);
        }
        self.emit(Op::LoopExit { id: loop_id as u16 }, span);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn for_loop(
        &mut self,
        label: &Option<Name>,
        var: &Binding,
        iter: &Expr,
        body: &Expr,
        loop_id: u32,
        dst: Option<Reg>,
        span: Span,
    ) -> CResult {
        let literal_range = matches!(iter.kind, ExprKind::Range { .. });
        let base = self.alloc_n(if literal_range { 2 } else { 3 }, span)?;
        match &iter.kind {
            ExprKind::Range {
                start,
                end,
                inclusive,
            } => {
                self.expr(start, Some(base))?;
                self.expr(end, Some(base + 1))?;
                self.emit(
                    Op::ForRangePrep {
                        base,
                        inclusive: *inclusive,
                    },
                    iter.span,
                );
            }
            _ => {
                self.expr(iter, Some(base))?;
                self.emit(Op::ForIterPrep { base }, iter.span);
            }
        }
        self.expr_nil(dst, span);
        // One variable for the whole loop: a captured one gets its cell here, once.
        let var_reg = match var.res {
            Res::Local(s) => s as Reg,
            Res::Cell(c) => {
                let t = self.alloc(span)?;
                self.emit(Op::LoadNil { dst: t }, span);
                self.emit(
                    Op::NewCell {
                        cell: c as u16,
                        src: t,
                    },
                    span,
                );
                t
            }
            other => unreachable!("a for variable resolved to {other:?}"),
        };
        let header = self.begin_loop(loop_id, span);
        let next = if literal_range {
            Op::ForRangeNext {
                base,
                var: var_reg,
                exit: 0,
            }
        } else {
            Op::ForIterNext {
                base,
                var: var_reg,
                exit: 0,
            }
        };
        let exit = self.emit(next, iter.span);
        if let Res::Cell(c) = var.res {
            self.emit(
                Op::SetCell {
                    cell: c as u16,
                    src: var_reg,
                },
                var.span,
            );
        }
        self.loop_body(label, dst, dst, body, loop_id, header, vec![exit], span)
    }
}
