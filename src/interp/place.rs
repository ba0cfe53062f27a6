//! Places: a variable followed by indices (`a`, `a[i]`, `a[i][j]`), the targets of index
//! assignment and of mutating methods. They are updated in place, copy-on-write at each
//! level, so pushing onto or assigning into an unshared array never copies it.

use super::{Flow, Interp};
use crate::error::ErrorKind;
use crate::ops;
use crate::syntax::ast::{Expr, ExprKind, Res, Var};
use crate::value::Value;

pub(super) struct Path<'e> {
    pub root: &'e Var,
    /// Index expressions, outermost base first.
    pub indices: Vec<&'e Expr>,
}

impl<'e> Path<'e> {
    pub fn of(e: &'e Expr) -> Option<Path<'e>> {
        match &e.kind {
            ExprKind::Var(v) => Some(Path {
                root: v,
                indices: Vec::new(),
            }),
            ExprKind::Index { base, index } => {
                let mut p = Path::of(base)?;
                p.indices.push(index);
                Some(p)
            }
            _ => None,
        }
    }
}

impl Interp<'_> {
    pub(super) fn eval_indices(&mut self, path: &Path) -> Flow<Vec<Value>> {
        let mut out = Vec::with_capacity(path.indices.len());
        for i in &path.indices {
            out.push(self.eval(i)?);
        }
        Ok(out)
    }

    /// Runs `f` on the place, walking the indices with copy-on-write.
    pub(super) fn with_place<R>(
        &mut self,
        path: &Path,
        indices: &[Value],
        f: impl FnOnce(&mut Value) -> Result<R, ErrorKind>,
    ) -> Result<R, ErrorKind> {
        fn walk<R>(
            mut slot: &mut Value,
            indices: &[Value],
            f: impl FnOnce(&mut Value) -> Result<R, ErrorKind>,
        ) -> Result<R, ErrorKind> {
            for i in indices {
                slot = ops::index_slot(slot, i)?;
            }
            f(slot)
        }
        let var = path.root;
        match var.res {
            Res::Local(s) => walk(&mut self.stack[self.base + s as usize], indices, f),
            Res::Cell(c) => {
                let cell = self.cells[self.cell_base + c as usize].clone();
                let mut slot = cell.borrow_mut();
                walk(&mut slot, indices, f)
            }
            Res::Upvalue(u) => {
                let cell = self.upvalue(u).clone();
                let mut slot = cell.borrow_mut();
                walk(&mut slot, indices, f)
            }
            Res::Global(g) => match self.globals.get_mut(g) {
                Some(slot) => walk(slot, indices, f),
                None => Err(ErrorKind::UndefinedVariable(var.name.to_string())),
            },
            Res::Unresolved => unreachable!("unresolved place"),
        }
    }
}
