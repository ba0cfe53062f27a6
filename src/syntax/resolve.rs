//! The resolver: decides where every name lives.
//!
//! - Locals get a slot in their function's frame (a VM register). Parameters come first.
//! - A local that some closure captures lives in a shared cell instead (captures are by
//!   reference), created when its `let` runs, so every loop iteration gets a fresh one.
//! - A closure reaches an enclosing function's variable through an upvalue: the list of
//!   cells it captured when it was created.
//! - Anything else is a global, by index in the session's global table; globals are
//!   looked up when the code runs, so a function sees globals defined after it.
//!
//! Whether a local is captured is only known once its whole function has been read, so
//! the resolver numbers declarations first and assigns slots and cells in a second walk.
//!
//! `fun` declarations in a block are hoisted: their names are visible from the start of
//! the block, so nested functions can be mutually recursive in either order.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use crate::error::Error;
use crate::globals::Globals;
use crate::syntax::ast::*;
use crate::syntax::source::Span;

pub fn resolve_program(func: &mut Function, globals: &mut Globals) -> Result<(), Error> {
    let mut known_globals: HashSet<Name> = top_level_names(func).into_keys().collect();
    known_globals.extend(globals.defined_names());
    let mut r = Resolver {
        fns: Vec::new(),
        globals,
        known_globals,
    };
    r.function(func, true)
}

/// A declaration, numbered in the order read; becomes a slot or a cell at the end.
struct VarInfo {
    captured: bool,
}

struct FnState {
    scopes: Vec<Vec<(Name, u32)>>,
    vars: Vec<VarInfo>,
    /// Upvalues of this closure: what they capture, deduplicated.
    captures: Vec<Capture>,
    loops: Vec<Option<Name>>,
    num_loops: u32,
    is_script: bool,
}

struct Resolver<'g> {
    fns: Vec<FnState>,
    globals: &'g mut Globals,
    /// Names that are globals for assignment inside functions: declared at the script's
    /// top level or already defined in the session. Assigning any other undeclared name
    /// inside a function creates a local of that function, as in the reference.
    known_globals: HashSet<Name>,
}

/// During the first walk a local's `Res` temporarily holds its declaration number.
fn pending(var: u32) -> Res {
    Res::Local(var)
}

impl Resolver<'_> {
    fn cur(&mut self) -> &mut FnState {
        self.fns.last_mut().expect("inside a function")
    }

    fn function(&mut self, func: &mut Function, is_script: bool) -> Result<(), Error> {
        self.fns.push(FnState {
            scopes: vec![Vec::new()],
            vars: Vec::new(),
            captures: Vec::new(),
            loops: Vec::new(),
            num_loops: 0,
            is_script,
        });
        for p in &mut func.params {
            p.binding.res = self.declare(&p.binding.name);
        }
        // Defaults are evaluated in the callee's frame, after the parameters before them.
        for p in &mut func.params {
            if let Some(d) = &mut p.default {
                self.expr(d)?;
            }
        }
        self.expr(&mut func.body)?;
        let state = self.fns.pop().expect("pushed above");

        // Second walk: slots for plain locals (parameters first), cells for captured ones.
        let mut assign = Vec::with_capacity(state.vars.len());
        let mut num_slots = func.params.len() as u32;
        let mut num_cells = 0;
        let mut captured_params = Vec::new();
        for (i, v) in state.vars.iter().enumerate() {
            let is_param = i < func.params.len();
            let res = if v.captured {
                num_cells += 1;
                if is_param {
                    captured_params.push((i as u32, num_cells - 1));
                }
                Res::Cell(num_cells - 1)
            } else if is_param {
                Res::Local(i as u32)
            } else {
                num_slots += 1;
                Res::Local(num_slots - 1)
            };
            assign.push(res);
        }
        for p in &mut func.params {
            fix_res(&mut p.binding.res, &assign);
            if let Some(d) = &mut p.default {
                fix_expr(d, &assign);
            }
        }
        fix_expr(&mut func.body, &assign);
        func.layout = FrameLayout {
            num_slots,
            num_cells,
            captured_params,
            captures: state.captures,
            num_loops: state.num_loops,
            is_script,
        };
        Ok(())
    }

    fn declare(&mut self, name: &Name) -> Res {
        let f = self.cur();
        let id = f.vars.len() as u32;
        f.vars.push(VarInfo { captured: false });
        f.scopes
            .last_mut()
            .expect("a scope")
            .push((name.clone(), id));
        pending(id)
    }

    /// A declaration at the top level of a script is a global.
    fn declare_binding(&mut self, b: &mut Binding) {
        if self.at_script_top() {
            b.res = Res::Global(self.globals.intern(&b.name));
        } else {
            b.res = self.declare(&b.name);
        }
    }

    fn lookup(&mut self, name: &Name) -> Res {
        let depth = self.fns.len() - 1;
        match self.lookup_in(depth, name) {
            Some(res) => res,
            None => Res::Global(self.globals.intern(name)),
        }
    }

    fn find_local(&self, depth: usize, name: &Name) -> Option<u32> {
        self.fns[depth]
            .scopes
            .iter()
            .rev()
            .find_map(|s| s.iter().rev().find(|(n, _)| n == name).map(|(_, id)| *id))
    }

    /// A name in function `depth`: its own local, or an upvalue captured from an
    /// enclosing function (marking the variable there as captured).
    fn lookup_in(&mut self, depth: usize, name: &Name) -> Option<Res> {
        if let Some(id) = self.find_local(depth, name) {
            return Some(pending(id));
        }
        if depth == 0 {
            return None;
        }
        let capture = match self.lookup_in(depth - 1, name)? {
            Res::Local(var) => {
                self.fns[depth - 1].vars[var as usize].captured = true;
                Capture::Cell(var)
            }
            Res::Upvalue(u) => Capture::Upvalue(u),
            other => return Some(other),
        };
        let caps = &mut self.fns[depth].captures;
        let index = match caps.iter().position(|c| *c == capture) {
            Some(i) => i,
            None => {
                caps.push(capture);
                caps.len() - 1
            }
        };
        Some(Res::Upvalue(index as u32))
    }

    /// Whether declarations here are globals: the script's own top level (its body block
    /// is the second scope, after the parameter scope).
    fn at_script_top(&mut self) -> bool {
        let f = self.cur();
        f.is_script && f.scopes.len() == 2
    }

    fn block(&mut self, block: &mut Block) -> Result<(), Error> {
        self.cur().scopes.push(Vec::new());
        // Hoist the block's function declarations, except at the script's top level,
        // where they are globals.
        if !self.at_script_top() {
            for stmt in &mut block.stmts {
                if let ExprKind::FunDecl { binding, .. } = &mut stmt.kind {
                    binding.res = self.declare(&binding.name);
                }
            }
        }
        let result = block.stmts.iter_mut().try_for_each(|s| self.expr(s));
        self.cur().scopes.pop();
        result
    }

    fn expr(&mut self, e: &mut Expr) -> Result<(), Error> {
        let span = e.span;
        match &mut e.kind {
            ExprKind::Nil
            | ExprKind::Bool(_)
            | ExprKind::Int(_)
            | ExprKind::Float(_)
            | ExprKind::Str(_) => Ok(()),
            ExprKind::FString(parts) => {
                for p in parts {
                    if let FPart::Hole(e, _) = p {
                        self.expr(e)?;
                    }
                }
                Ok(())
            }
            ExprKind::Var(v) => {
                v.res = self.lookup(&v.name);
                Ok(())
            }
            ExprKind::Array(items) => items.iter_mut().try_for_each(|i| self.expr(i)),
            ExprKind::Unary(_, a) => self.expr(a),
            ExprKind::Binary(_, a, b) | ExprKind::Logic(_, a, b) => {
                self.expr(a)?;
                self.expr(b)
            }
            ExprKind::Range { start, end, .. } => {
                self.expr(start)?;
                self.expr(end)
            }
            ExprKind::If {
                cond,
                then_branch,
                else_branch,
            } => {
                self.expr(cond)?;
                self.expr(then_branch)?;
                if let Some(e) = else_branch {
                    self.expr(e)?;
                }
                Ok(())
            }
            ExprKind::Block(b) => self.block(b),
            ExprKind::While {
                label,
                cond,
                body,
                loop_id,
            } => {
                // The condition is not inside the loop: a `break` there is misplaced, as
                // in the reference.
                self.expr(cond)?;
                *loop_id = self.enter_loop(label.clone());
                let r = self.expr(body);
                self.cur().loops.pop();
                r
            }
            ExprKind::Loop {
                label,
                body,
                loop_id,
            } => {
                *loop_id = self.enter_loop(label.clone());
                let r = self.expr(body);
                self.cur().loops.pop();
                r
            }
            ExprKind::For {
                label,
                var,
                iter,
                body,
                loop_id,
            } => {
                self.expr(iter)?;
                *loop_id = self.enter_loop(label.clone());
                self.cur().scopes.push(Vec::new());
                var.res = self.declare(&var.name);
                let r = self.expr(body);
                self.cur().scopes.pop();
                self.cur().loops.pop();
                r
            }
            ExprKind::Break { label, value } => {
                if !self.check_loop(label.as_ref(), span)? {
                    e.kind = ExprKind::Misplaced("Break outside of loop");
                    return Ok(());
                }
                match value {
                    Some(v) => self.expr(v),
                    None => Ok(()),
                }
            }
            ExprKind::Continue { label } => {
                if !self.check_loop(label.as_ref(), span)? {
                    e.kind = ExprKind::Misplaced("Continue outside of loop");
                }
                Ok(())
            }
            ExprKind::Misplaced(_) => Ok(()),
            ExprKind::Return(v) => match v {
                Some(v) => self.expr(v),
                None => Ok(()),
            },
            ExprKind::Call { callee, args } => {
                self.expr(callee)?;
                args.iter_mut().try_for_each(|a| self.expr(a))
            }
            ExprKind::Method { receiver, args, .. } => {
                self.expr(receiver)?;
                args.iter_mut().try_for_each(|a| self.expr(a))
            }
            ExprKind::Index { base, index } => {
                self.expr(base)?;
                self.expr(index)
            }
            ExprKind::Assign { target, value, .. } => {
                // The value first: in `x = x + 1` for an undeclared `x` the read is an
                // error, not a read of the variable being created.
                self.expr(value)?;
                self.assign_target(target)
            }
            ExprKind::Let { binding, value } => {
                // The initializer sees the previous binding of a shadowed name.
                if let Some(v) = value {
                    self.expr(v)?;
                }
                self.declare_binding(binding);
                Ok(())
            }
            ExprKind::FunDecl { binding, func } => {
                if binding.res == Res::Unresolved {
                    // The script's top level (hoisted ones were declared by `block`).
                    self.declare_binding(binding);
                }
                self.nested_function(func)
            }
            ExprKind::Lambda(func) => self.nested_function(func),
        }
    }

    /// Assignment to an undeclared name creates a global at the script's top level and a
    /// function-wide local inside a function (unless the name is a known global).
    fn assign_target(&mut self, target: &mut Expr) -> Result<(), Error> {
        match &mut target.kind {
            ExprKind::Var(v) => {
                v.res = self.lookup(&v.name);
                if matches!(v.res, Res::Global(_))
                    && !self.cur().is_script
                    && !self.known_globals.contains(&v.name)
                {
                    let f = self.cur();
                    let id = f.vars.len() as u32;
                    f.vars.push(VarInfo { captured: false });
                    f.scopes[0].push((v.name.clone(), id));
                    v.res = pending(id);
                }
                Ok(())
            }
            ExprKind::Index { base, index } => {
                self.assign_target(base)?;
                self.expr(index)
            }
            _ => Err(Error::syntax(
                "cannot assign to this expression",
                target.span,
            )),
        }
    }

    fn nested_function(&mut self, func: &mut Rc<Function>) -> Result<(), Error> {
        let func = Rc::get_mut(func).expect("a freshly parsed function is not shared");
        self.function(func, false)
    }

    fn enter_loop(&mut self, label: Option<Name>) -> u32 {
        let f = self.cur();
        f.loops.push(label);
        f.num_loops += 1;
        f.num_loops - 1
    }

    /// Whether a `break`/`continue` is inside a loop; a label must name an enclosing loop.
    fn check_loop(&mut self, label: Option<&Name>, span: Span) -> Result<bool, Error> {
        let loops = &self.cur().loops;
        match label {
            None => Ok(!loops.is_empty()),
            Some(l) if loops.iter().any(|x| x.as_ref() == Some(l)) => Ok(true),
            Some(l) => Err(Error::syntax(
                format!("no enclosing loop is labeled '{l}"),
                span,
            )),
        }
    }
}

fn fix_res(res: &mut Res, assign: &[Res]) {
    if let Res::Local(var) = *res {
        *res = assign[var as usize];
    }
}

/// The second walk: declaration numbers become slots or cells. Nested functions keep
/// their own resolution, except for the captures that point into this frame.
fn fix_expr(e: &mut Expr, assign: &[Res]) {
    match &mut e.kind {
        ExprKind::Nil | ExprKind::Bool(_) | ExprKind::Int(_) | ExprKind::Float(_) => {}
        ExprKind::Str(_) | ExprKind::Continue { .. } | ExprKind::Misplaced(_) => {}
        ExprKind::FString(parts) => {
            for p in parts {
                if let FPart::Hole(e, _) = p {
                    fix_expr(e, assign);
                }
            }
        }
        ExprKind::Var(v) => fix_res(&mut v.res, assign),
        ExprKind::Array(items) => items.iter_mut().for_each(|i| fix_expr(i, assign)),
        ExprKind::Unary(_, a) => fix_expr(a, assign),
        ExprKind::Binary(_, a, b) | ExprKind::Logic(_, a, b) => {
            fix_expr(a, assign);
            fix_expr(b, assign);
        }
        ExprKind::Range { start, end, .. } => {
            fix_expr(start, assign);
            fix_expr(end, assign);
        }
        ExprKind::If {
            cond,
            then_branch,
            else_branch,
        } => {
            fix_expr(cond, assign);
            fix_expr(then_branch, assign);
            if let Some(e) = else_branch {
                fix_expr(e, assign);
            }
        }
        ExprKind::Block(b) => {
            for s in &mut b.stmts {
                if let ExprKind::FunDecl { binding, .. } = &s.kind {
                    if let Res::Local(var) = binding.res {
                        if let Res::Cell(c) = assign[var as usize] {
                            b.entry_cells.push(c);
                        }
                    }
                }
                fix_expr(s, assign);
            }
        }
        ExprKind::While { cond, body, .. } => {
            fix_expr(cond, assign);
            fix_expr(body, assign);
        }
        ExprKind::Loop { body, .. } => fix_expr(body, assign),
        ExprKind::For {
            var, iter, body, ..
        } => {
            fix_res(&mut var.res, assign);
            fix_expr(iter, assign);
            fix_expr(body, assign);
        }
        ExprKind::Break { value, .. } | ExprKind::Return(value) => {
            if let Some(v) = value {
                fix_expr(v, assign);
            }
        }
        ExprKind::Call { callee, args } => {
            fix_expr(callee, assign);
            args.iter_mut().for_each(|a| fix_expr(a, assign));
        }
        ExprKind::Method { receiver, args, .. } => {
            fix_expr(receiver, assign);
            args.iter_mut().for_each(|a| fix_expr(a, assign));
        }
        ExprKind::Index { base, index } => {
            fix_expr(base, assign);
            fix_expr(index, assign);
        }
        ExprKind::Assign { target, value, .. } => {
            fix_expr(target, assign);
            fix_expr(value, assign);
        }
        ExprKind::Let { binding, value } => {
            fix_res(&mut binding.res, assign);
            if let Some(v) = value {
                fix_expr(v, assign);
            }
        }
        ExprKind::FunDecl { binding, func } => {
            fix_res(&mut binding.res, assign);
            fix_captures(func, assign);
        }
        ExprKind::Lambda(func) => fix_captures(func, assign),
    }
}

fn fix_captures(func: &mut Rc<Function>, assign: &[Res]) {
    let func = Rc::get_mut(func).expect("a freshly parsed function is not shared");
    for c in &mut func.layout.captures {
        if let Capture::Cell(var) = *c {
            match assign[var as usize] {
                Res::Cell(cell) => *c = Capture::Cell(cell),
                other => unreachable!("a captured variable resolved to {other:?}"),
            }
        }
    }
}

/// Whether the script's own top-level code (not a function body) calls `main`.
pub fn script_calls_main(script: &Function) -> bool {
    fn visit(e: &Expr) -> bool {
        match &e.kind {
            ExprKind::Call { callee, args } => {
                matches!(&callee.kind, ExprKind::Var(v) if &*v.name == "main")
                    || visit(callee)
                    || args.iter().any(visit)
            }
            ExprKind::FunDecl { .. } | ExprKind::Lambda(_) => false,
            ExprKind::Block(b) => b.stmts.iter().any(visit),
            ExprKind::FString(parts) => parts
                .iter()
                .any(|p| matches!(p, FPart::Hole(e, _) if visit(e))),
            ExprKind::Array(items) => items.iter().any(visit),
            ExprKind::Unary(_, a) => visit(a),
            ExprKind::Binary(_, a, b) | ExprKind::Logic(_, a, b) => visit(a) || visit(b),
            ExprKind::Range { start, end, .. } => visit(start) || visit(end),
            ExprKind::If {
                cond,
                then_branch,
                else_branch,
            } => visit(cond) || visit(then_branch) || else_branch.as_deref().is_some_and(visit),
            ExprKind::While { cond, body, .. } => visit(cond) || visit(body),
            ExprKind::Loop { body, .. } => visit(body),
            ExprKind::For { iter, body, .. } => visit(iter) || visit(body),
            ExprKind::Break { value, .. } | ExprKind::Return(value) => {
                value.as_deref().is_some_and(visit)
            }
            ExprKind::Method { receiver, args, .. } => visit(receiver) || args.iter().any(visit),
            ExprKind::Index { base, index } => visit(base) || visit(index),
            ExprKind::Assign { target, value, .. } => visit(target) || visit(value),
            ExprKind::Let { value, .. } => value.as_deref().is_some_and(visit),
            _ => false,
        }
    }
    visit(&script.body)
}

/// Names a script defines at its top level: `let`, `fun` and assignments.
pub fn top_level_names(script: &Function) -> HashMap<Name, Span> {
    let mut names = HashMap::new();
    if let ExprKind::Block(b) = &script.body.kind {
        for s in &b.stmts {
            match &s.kind {
                ExprKind::FunDecl { binding, .. } | ExprKind::Let { binding, .. } => {
                    names.insert(binding.name.clone(), binding.span);
                }
                ExprKind::Assign { target, .. } => {
                    if let ExprKind::Var(v) = &target.kind {
                        names.insert(v.name.clone(), target.span);
                    }
                }
                _ => {}
            }
        }
    }
    names
}

/// Whether the script declares `main` as a function at its top level.
pub fn defines_main(script: &Function) -> bool {
    match &script.body.kind {
        ExprKind::Block(b) => b.stmts.iter().any(
            |s| matches!(&s.kind, ExprKind::FunDecl { binding, .. } if &*binding.name == "main"),
        ),
        _ => false,
    }
}
