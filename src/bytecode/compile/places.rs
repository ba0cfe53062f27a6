//! Assignments, and places: a variable followed by indices (`a[i][j] = v`,
//! `a[i].push(x)`), updated in place by one instruction.

use std::rc::Rc;

use super::{CResult, FnCompiler};
use crate::bytecode::op::{Op, Reg};
use crate::bytecode::proto::{Const, Place, PlaceOp, PlaceRoot};
use crate::error::Error;
use crate::syntax::ast::*;
use crate::syntax::source::Span;

impl FnCompiler<'_> {
    pub(super) fn method(
        &mut self,
        receiver: &Expr,
        method: &Name,
        args: &[Expr],
        dst: Option<Reg>,
        span: Span,
    ) -> CResult {
        let op = match (&**method, args.len()) {
            ("push", 1) => Some(PlaceOp::Push),
            ("pop", 0) => Some(PlaceOp::Pop),
            _ => None,
        };
        if let (Some(op), Some(path)) = (op, place_path(receiver)) {
            let src = match args.first() {
                Some(a) => {
                    let (first, depth) = self.indices(&path)?;
                    let src = self.expr_any(a)?;
                    return self.place_update(&path, first, depth, op, src, dst, span);
                }
                None => self.alloc(span)?,
            };
            let (first, depth) = self.indices(&path)?;
            return self.place_update(&path, first, depth, op, src, dst, span);
        }
        if args.len() > u8::MAX as usize {
            return Err(Error::syntax("too many arguments (at most 255)", span));
        }
        let base = self.alloc_n(1 + args.len() as u32, span)?;
        self.expr(receiver, Some(base))?;
        for (i, a) in args.iter().enumerate() {
            self.expr(a, Some(base + 1 + i as Reg))?;
        }
        let name = self.constant(Const::Str(Rc::new(method.to_string())), span)?;
        self.emit(
            Op::CallMethod {
                base,
                argc: args.len() as u8,
                method: name,
            },
            span,
        );
        self.mov(dst, base, span);
        Ok(())
    }

    /// Evaluates a place's indices into consecutive temporaries.
    pub(super) fn indices(&mut self, path: &PlacePath) -> CResult<(Reg, u8)> {
        let depth = path.indices.len();
        if depth > u8::MAX as usize {
            return Err(Error::syntax("index path too deep", path.indices[0].span));
        }
        let first = self.alloc_n(depth as u32, path.span)?;
        for (i, index) in path.indices.iter().enumerate() {
            self.expr(index, Some(first + i as Reg))?;
        }
        Ok((first, depth as u8))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn place_update(
        &mut self,
        path: &PlacePath,
        first: Reg,
        depth: u8,
        op: PlaceOp,
        src: Reg,
        dst: Option<Reg>,
        span: Span,
    ) -> CResult {
        let root = match path.root.res {
            Res::Local(s) => PlaceRoot::Reg(s as Reg),
            Res::Cell(c) => PlaceRoot::Cell(c as u16),
            Res::Upvalue(u) => PlaceRoot::Upval(u as u16),
            Res::Global(g) => PlaceRoot::Global(g),
            Res::Unresolved => unreachable!("unresolved place"),
        };
        let place = Place {
            root,
            depth,
            op,
            name: path.root.name.clone(),
        };
        let index = match self.places.iter().position(|p| *p == place) {
            Some(i) => i,
            None => {
                self.places.push(place);
                self.places.len() - 1
            }
        };
        let d = self.dst_or_temp(dst, span)?;
        self.emit(
            Op::PlaceUpdate {
                dst: d,
                place: index as u16,
                first,
                src,
            },
            span,
        );
        Ok(())
    }

    pub(super) fn assign(
        &mut self,
        target: &Expr,
        op: Option<BinOp>,
        value: &Expr,
        dst: Option<Reg>,
        span: Span,
    ) -> CResult {
        if let ExprKind::Var(var) = &target.kind {
            let r = match (var.res, op) {
                (Res::Local(s), None) => {
                    self.expr_into_var(value, s as Reg)?;
                    s as Reg
                }
                // `s += x` on a local updates its register in place (and appends in place
                // to an unshared string).
                (Res::Local(s), Some(op)) => {
                    self.binary(op, target, value, Some(s as Reg), span)?;
                    s as Reg
                }
                (res, None) => {
                    let r = self.expr_any(value)?;
                    self.store_var(res, r, span);
                    r
                }
                (res, Some(op)) => {
                    let old = self.alloc(target.span)?;
                    self.read_var(var, Some(old), target.span)?;
                    let rb = self.expr_any(value)?;
                    self.binary_regs(op, old, old, rb, span);
                    self.store_var(res, old, span);
                    old
                }
            };
            self.mov(dst, r, span);
            return Ok(());
        }
        let path = place_path(target).expect("the parser only accepts places");
        // `a[i] = v` on a local array: one instruction.
        if let (Res::Local(s), None, [index]) = (path.root.res, op, path.indices.as_slice()) {
            let ri = self.expr_any(index)?;
            let rv = self.expr_any(value)?;
            self.emit(
                Op::SetIndex {
                    base: s as Reg,
                    index: ri,
                    src: rv,
                },
                target.span,
            );
            self.mov(dst, rv, span);
            return Ok(());
        }
        let (first, depth) = self.indices(&path)?;
        let src = self.expr_any(value)?;
        let op = match op {
            None => PlaceOp::Assign,
            Some(op) => PlaceOp::Compound(op),
        };
        self.place_update(&path, first, depth, op, src, dst, target.span)
    }
}

/// A place: a variable and the index expressions after it.
pub(super) struct PlacePath<'e> {
    root: &'e Var,
    indices: Vec<&'e Expr>,
    span: Span,
}

pub(super) fn place_path(e: &Expr) -> Option<PlacePath<'_>> {
    match &e.kind {
        ExprKind::Var(v) => Some(PlacePath {
            root: v,
            indices: Vec::new(),
            span: e.span,
        }),
        ExprKind::Index { base, index } => {
            let mut p = place_path(base)?;
            p.indices.push(index);
            p.span = e.span;
            Some(p)
        }
        _ => None,
    }
}
