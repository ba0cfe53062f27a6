//! Tier 0: the tree-walking interpreter over the resolved syntax tree.
//!
//! It is the reference semantics of the engine: simple, direct, and the tier every other is
//! checked against. Frames live on one value stack (`stack`, indexed by `base + slot`) and
//! one cell stack for captured variables, so a call allocates nothing.

mod place;

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

use crate::builtins;
use crate::error::{Error, ErrorKind};
use crate::function::{Closure, Code};
use crate::globals::Globals;
use crate::limits::Limits;
use crate::ops;
use crate::syntax::ast::*;
use crate::syntax::source::Span;
use crate::value::{RangeValue, Upvalue, Value};

/// Why evaluation stopped early: an error, or a control transfer travelling up to the
/// construct that handles it.
enum Unwind {
    Error(Box<Error>),
    Return(Value),
    Break(Option<Name>, Value),
    Continue(Option<Name>),
}

impl From<Error> for Unwind {
    fn from(e: Error) -> Self {
        Unwind::Error(Box::new(e))
    }
}

type Flow<T = Value> = Result<T, Unwind>;

fn fail<T>(kind: ErrorKind, span: Span) -> Flow<T> {
    Err(Unwind::Error(Box::new(Error::new(kind, span))))
}

trait AtSpan<T> {
    fn at(self, span: Span) -> Flow<T>;
}

impl<T> AtSpan<T> for Result<T, ErrorKind> {
    #[inline]
    fn at(self, span: Span) -> Flow<T> {
        self.map_err(|kind| Unwind::Error(Box::new(Error::new(kind, span))))
    }
}

pub struct Interp<'a> {
    globals: &'a mut Globals,
    out: &'a mut dyn Write,
    limits: &'a Limits,
    stack: Vec<Value>,
    cells: Vec<Upvalue>,
    /// Current frame: where its slots and cells start, and its closure (None for a script).
    base: usize,
    cell_base: usize,
    closure: Option<Rc<Closure>>,
    depth: usize,
}

impl<'a> Interp<'a> {
    pub fn new(globals: &'a mut Globals, out: &'a mut dyn Write, limits: &'a Limits) -> Self {
        Interp {
            globals,
            out,
            limits,
            stack: Vec::new(),
            cells: Vec::new(),
            base: 0,
            cell_base: 0,
            closure: None,
            depth: 0,
        }
    }

    /// Runs a resolved script (a program or one REPL input); returns its value.
    pub fn run_script(&mut self, script: &Rc<Function>) -> Result<Value, Error> {
        self.stack.clear();
        self.cells.clear();
        self.base = 0;
        self.cell_base = 0;
        self.closure = None;
        self.depth = 0;
        self.enter_frame(script);
        let result = match self.eval(&script.body) {
            Ok(v) | Err(Unwind::Return(v)) => Ok(v),
            Err(Unwind::Error(e)) => Err(*e),
            Err(Unwind::Break(..) | Unwind::Continue(_)) => {
                unreachable!("the resolver rejects break/continue outside loops")
            }
        };
        self.stack.clear();
        self.cells.clear();
        result
    }

    /// Calls a function value with arguments (used for `main()` after a script).
    pub fn call_value_with(&mut self, f: &Value, args: Vec<Value>, span: Span) -> Result<Value, Error> {
        self.stack.clear();
        self.cells.clear();
        self.base = 0;
        self.cell_base = 0;
        self.depth = 0;
        let result = match f {
            Value::Func(closure) => {
                let argc = args.len();
                self.stack.extend(args);
                self.call_closure(closure, 0, argc, span)
            }
            Value::Builtin(b) => b.call(&args, self.out).at(span),
            other => fail(ErrorKind::NotCallable(other.type_of()), span),
        };
        match result {
            Ok(v) => Ok(v),
            Err(Unwind::Error(e)) => Err(*e),
            Err(_) => unreachable!("calls absorb return/break"),
        }
    }

    fn enter_frame(&mut self, func: &Function) {
        let layout = &func.layout;
        self.stack.resize(self.base + layout.num_slots as usize, Value::Nil);
        self.cell_base = self.cells.len();
        for _ in 0..layout.num_cells {
            self.cells.push(Rc::new(RefCell::new(Value::Nil)));
        }
        for &(param, cell) in &layout.captured_params {
            let v = std::mem::take(&mut self.stack[self.base + param as usize]);
            self.cells[self.cell_base + cell as usize] = Rc::new(RefCell::new(v));
        }
    }

    // ---- variables ----

    #[inline]
    fn read(&self, res: Res, name: &Name, span: Span) -> Flow {
        match res {
            Res::Local(s) => Ok(self.stack[self.base + s as usize].clone()),
            Res::Cell(c) => Ok(self.cells[self.cell_base + c as usize].borrow().clone()),
            Res::Upvalue(u) => Ok(self.upvalue(u).borrow().clone()),
            Res::Global(g) => match self.globals.get(g) {
                Some(v) => Ok(v.clone()),
                None => fail(ErrorKind::UndefinedVariable(name.to_string()), span),
            },
            Res::Unresolved => unreachable!("unresolved variable {name}"),
        }
    }

    fn upvalue(&self, u: u32) -> &Upvalue {
        &self
            .closure
            .as_ref()
            .expect("upvalues only inside closures")
            .captures[u as usize]
    }

    /// Assigns an existing variable (or creates a global).
    fn write(&mut self, res: Res, v: Value) {
        match res {
            Res::Local(s) => self.stack[self.base + s as usize] = v,
            Res::Cell(c) => *self.cells[self.cell_base + c as usize].borrow_mut() = v,
            Res::Upvalue(u) => *self.upvalue(u).borrow_mut() = v,
            Res::Global(g) => self.globals.set(g, v),
            Res::Unresolved => unreachable!("unresolved assignment"),
        }
    }

    /// Binds a new variable: a captured one gets a fresh cell, so each `let` (and each loop
    /// iteration) is a new variable for the closures that capture it.
    fn define(&mut self, res: Res, v: Value) {
        match res {
            Res::Cell(c) => {
                self.cells[self.cell_base + c as usize] = Rc::new(RefCell::new(v));
            }
            other => self.write(other, v),
        }
    }

    fn make_closure(&self, func: &Rc<Function>) -> Value {
        let captures = func
            .layout
            .captures
            .iter()
            .map(|c| match *c {
                Capture::Cell(c) => self.cells[self.cell_base + c as usize].clone(),
                Capture::Upvalue(u) => self.upvalue(u).clone(),
            })
            .collect();
        Value::Func(Rc::new(Closure {
            code: Code::Ast(func.clone()),
            captures,
        }))
    }

    fn poll(&self, span: Span) -> Flow<()> {
        if self.limits.interrupted() {
            return fail(ErrorKind::Interrupted, span);
        }
        Ok(())
    }

    // ---- expressions ----

    fn eval(&mut self, e: &Expr) -> Flow {
        match &e.kind {
            ExprKind::Nil => Ok(Value::Nil),
            ExprKind::Bool(b) => Ok(Value::Bool(*b)),
            ExprKind::Int(i) => Ok(Value::Int(*i)),
            ExprKind::Float(f) => Ok(Value::Float(*f)),
            ExprKind::Str(s) => Ok(Value::Str(s.clone())),
            ExprKind::FString(parts) => self.fstring(parts),
            ExprKind::Var(v) => self.read(v.res, &v.name, e.span),
            ExprKind::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.eval(item)?);
                }
                Ok(Value::array(out))
            }
            ExprKind::Unary(op, a) => {
                let v = self.eval(a)?;
                ops::unary(*op, &v).at(e.span)
            }
            ExprKind::Binary(op, a, b) => {
                let x = self.eval(a)?;
                let y = self.eval(b)?;
                binary_fast(*op, &x, &y).at(e.span)
            }
            ExprKind::Logic(op, a, b) => {
                let x = self.eval(a)?;
                match (op, x.is_truthy()) {
                    (LogicOp::And, false) | (LogicOp::Or, true) => Ok(x),
                    _ => self.eval(b),
                }
            }
            ExprKind::Range {
                start,
                end,
                inclusive,
            } => {
                let s = self.eval(start)?;
                let t = self.eval(end)?;
                make_range(&s, &t, *inclusive).at(e.span)
            }
            ExprKind::If {
                cond,
                then_branch,
                else_branch,
            } => {
                if self.eval(cond)?.is_truthy() {
                    self.eval(then_branch)
                } else if let Some(els) = else_branch {
                    self.eval(els)
                } else {
                    Ok(Value::Nil)
                }
            }
            ExprKind::Block(b) => self.block(b),
            ExprKind::While {
                label, cond, body, ..
            } => self.while_loop(label, Some(cond), body, e.span),
            ExprKind::Loop { label, body, .. } => self.while_loop(label, None, body, e.span),
            ExprKind::For {
                label,
                var,
                iter,
                body,
                ..
            } => self.for_loop(label, var, iter, body),
            ExprKind::Break { label, value } => {
                let v = match value {
                    Some(v) => self.eval(v)?,
                    None => Value::Nil,
                };
                Err(Unwind::Break(label.clone(), v))
            }
            ExprKind::Continue { label } => Err(Unwind::Continue(label.clone())),
            ExprKind::Return(value) => {
                let v = match value {
                    Some(v) => self.eval(v)?,
                    None => Value::Nil,
                };
                Err(Unwind::Return(v))
            }
            ExprKind::Call { callee, args } => self.call(callee, args, e.span),
            ExprKind::Method {
                receiver,
                method,
                args,
            } => self.method(receiver, method, args, e.span),
            ExprKind::Index { base, index } => {
                let b = self.eval(base)?;
                let i = self.eval(index)?;
                ops::index_get(&b, &i).at(e.span)
            }
            ExprKind::Assign { target, op, value } => self.assign(target, *op, value, e.span),
            ExprKind::Let { binding, value } => {
                let v = match value {
                    Some(v) => self.eval(v)?,
                    None => Value::Nil,
                };
                self.define(binding.res, v.clone());
                Ok(v)
            }
            ExprKind::FunDecl { binding, func } => {
                let f = self.make_closure(func);
                // A hoisted declaration's cell already exists: fill it, don't replace it.
                self.write(binding.res, f.clone());
                Ok(f)
            }
            ExprKind::Lambda(func) => Ok(self.make_closure(func)),
        }
    }

    fn block(&mut self, b: &Block) -> Flow {
        for &c in &b.entry_cells {
            self.cells[self.cell_base + c as usize] = Rc::new(RefCell::new(Value::Nil));
        }
        let mut last = Value::Nil;
        for s in &b.stmts {
            last = self.eval(s)?;
        }
        Ok(last)
    }

    fn fstring(&mut self, parts: &[FPart]) -> Flow {
        let mut out = String::new();
        for p in parts {
            match p {
                FPart::Lit(s) => out.push_str(s),
                FPart::Hole(e, spec) => {
                    let v = self.eval(e)?;
                    format_hole(&mut out, &v, spec);
                }
            }
        }
        Ok(Value::Str(Rc::new(out)))
    }

    /// Does a break or continue with this label belong to the loop labeled `mine`?
    fn targets(label: &Option<Name>, mine: &Option<Name>) -> bool {
        label.is_none() || label == mine
    }

    fn while_loop(
        &mut self,
        label: &Option<Name>,
        cond: Option<&Expr>,
        body: &Expr,
        span: Span,
    ) -> Flow {
        let mut last = Value::Nil;
        loop {
            self.poll(span)?;
            if let Some(c) = cond {
                if !self.eval(c)?.is_truthy() {
                    return Ok(last);
                }
            }
            match self.eval(body) {
                Ok(v) => last = v,
                Err(Unwind::Break(l, v)) if Self::targets(&l, label) => return Ok(v),
                Err(Unwind::Continue(l)) if Self::targets(&l, label) => {}
                Err(other) => return Err(other),
            }
        }
    }

    fn for_loop(&mut self, label: &Option<Name>, var: &Binding, iter: &Expr, body: &Expr) -> Flow {
        // A literal range is iterated without building a range value.
        let (start, end, items) = match &iter.kind {
            ExprKind::Range {
                start,
                end,
                inclusive,
            } => {
                let s = self.eval(start)?;
                let t = self.eval(end)?;
                let r = range_bounds(&s, &t, *inclusive).at(iter.span)?;
                (r.start, r.end_exclusive(), None)
            }
            _ => match self.eval(iter)? {
                Value::Range(r) => (r.start, r.end_exclusive(), None),
                Value::Array(a) => (0, a.len() as i64, Some(a)),
                other => {
                    return fail(
                        ErrorKind::Builtin(format!(
                            "Cannot iterate over {}",
                            other.type_of().name()
                        )),
                        iter.span,
                    )
                }
            },
        };
        let mut last = Value::Nil;
        let mut i = start;
        while i < end {
            self.poll(iter.span)?;
            let v = match &items {
                Some(a) => a[i as usize].clone(),
                None => Value::Int(i),
            };
            self.define(var.res, v);
            match self.eval(body) {
                Ok(v) => last = v,
                Err(Unwind::Break(l, v)) if Self::targets(&l, label) => return Ok(v),
                Err(Unwind::Continue(l)) if Self::targets(&l, label) => {}
                Err(other) => return Err(other),
            }
            i += 1;
        }
        Ok(last)
    }

    // ---- calls ----

    fn call(&mut self, callee: &Expr, args: &[Expr], span: Span) -> Flow {
        let f = self.eval(callee)?;
        let base = self.stack.len();
        for a in args {
            let v = self.eval(a)?;
            self.stack.push(v);
        }
        let result = match &f {
            Value::Func(closure) => self.call_closure(closure, base, args.len(), span),
            Value::Builtin(b) => b.call(&self.stack[base..], self.out).at(span),
            other => fail(ErrorKind::NotCallable(other.type_of()), span),
        };
        self.stack.truncate(base);
        result
    }

    /// Calls a closure whose `argc` arguments are on the stack from `base`.
    fn call_closure(&mut self, closure: &Rc<Closure>, base: usize, argc: usize, span: Span) -> Flow {
        let Code::Ast(func) = &closure.code;
        let (min, max) = func.arity();
        if argc < min || argc > max {
            return fail(ErrorKind::Arity { min, max, got: argc }, span);
        }
        if self.depth >= self.limits.max_depth || crate::stack::exhausted() {
            return fail(ErrorKind::RecursionLimit, span);
        }
        self.poll(span)?;
        let saved = (
            self.base,
            self.cell_base,
            std::mem::replace(&mut self.closure, Some(closure.clone())),
        );
        self.base = base;
        self.depth += 1;
        // Missing arguments take their defaults, evaluated in the callee's frame.
        self.stack.resize(base + func.params.len(), Value::Nil);
        self.enter_frame(func);
        let mut result = Ok(Value::Nil);
        for p in func.params.iter().skip(argc) {
            if let Some(d) = &p.default {
                match self.eval(d) {
                    Ok(v) => self.define(p.binding.res, v),
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
        }
        if result.is_ok() {
            result = match self.eval(&func.body) {
                Ok(v) | Err(Unwind::Return(v)) => Ok(v),
                Err(e) => Err(e),
            };
        }
        self.depth -= 1;
        self.stack.truncate(base);
        self.cells.truncate(self.cell_base);
        (self.base, self.cell_base, self.closure) = saved;
        result
    }

    fn method(&mut self, receiver: &Expr, method: &Name, args: &[Expr], span: Span) -> Flow {
        if builtins::is_mutating_method(method) {
            if let Some(path) = place::Path::of(receiver) {
                let indices = self.eval_indices(&path)?;
                let argv = self.eval_args(args)?;
                return self
                    .with_place(&path, &indices, |slot| builtins::call_mut_method(slot, method, &argv))
                    .at(span);
            }
        }
        let mut recv = self.eval(receiver)?;
        let argv = self.eval_args(args)?;
        if builtins::is_mutating_method(method) {
            // On a temporary: the change is not visible anywhere, but errors still are.
            return builtins::call_mut_method(&mut recv, method, &argv).at(span);
        }
        builtins::call_method(&recv, method, &argv).at(span)
    }

    fn eval_args(&mut self, args: &[Expr]) -> Flow<Vec<Value>> {
        let mut out = Vec::with_capacity(args.len());
        for a in args {
            out.push(self.eval(a)?);
        }
        Ok(out)
    }

    fn assign(&mut self, target: &Expr, op: Option<BinOp>, value: &Expr, span: Span) -> Flow {
        if let ExprKind::Var(var) = &target.kind {
            // `s = s + x` and `s += x` append in place to an unshared string.
            let append = match (op, &value.kind) {
                (Some(BinOp::Add), _) => Some(value),
                (None, ExprKind::Binary(BinOp::Add, lhs, rhs)) => match &lhs.kind {
                    ExprKind::Var(v) if v.res == var.res => Some(&**rhs),
                    _ => None,
                },
                _ => None,
            };
            if let Some(rhs) = append {
                if let Res::Local(s) = var.res {
                    let y = self.eval(rhs)?;
                    let slot = &mut self.stack[self.base + s as usize];
                    ops::add_in_place(slot, &y).at(span)?;
                    return Ok(slot.clone());
                }
            }
            let v = match op {
                None => self.eval(value)?,
                Some(op) => {
                    let old = self.read(var.res, &var.name, target.span)?;
                    let y = self.eval(value)?;
                    binary_fast(op, &old, &y).at(span)?
                }
            };
            self.write(var.res, v.clone());
            return Ok(v);
        }
        let path = place::Path::of(target).expect("the parser only accepts places");
        let indices = self.eval_indices(&path)?;
        let v = self.eval(value)?;
        self.with_place(&path, &indices, |slot| {
            let new = match op {
                None => v,
                Some(op) => binary_fast(op, slot, &v)?,
            };
            *slot = new.clone();
            Ok(new)
        })
        .at(target.span)
    }
}

/// Int and float fast paths before the general operator semantics.
#[inline]
fn binary_fast(op: BinOp, x: &Value, y: &Value) -> Result<Value, ErrorKind> {
    if let (Value::Int(a), Value::Int(b)) = (x, y) {
        let (a, b) = (*a, *b);
        match op {
            BinOp::Lt => return Ok(Value::Bool(a < b)),
            BinOp::Le => return Ok(Value::Bool(a <= b)),
            BinOp::Gt => return Ok(Value::Bool(a > b)),
            BinOp::Ge => return Ok(Value::Bool(a >= b)),
            BinOp::Eq => return Ok(Value::Bool(a == b)),
            BinOp::Ne => return Ok(Value::Bool(a != b)),
            BinOp::Add => {
                if let Some(r) = a.checked_add(b) {
                    return Ok(Value::Int(r));
                }
            }
            BinOp::Sub => {
                if let Some(r) = a.checked_sub(b) {
                    return Ok(Value::Int(r));
                }
            }
            _ => {}
        }
    }
    ops::binary(op, x, y)
}

/// Range bounds must be integers.
fn range_bounds(s: &Value, t: &Value, inclusive: bool) -> Result<RangeValue, ErrorKind> {
    match (s, t) {
        (Value::Int(start), Value::Int(end)) => Ok(RangeValue {
            start: *start,
            end: *end,
            inclusive,
        }),
        _ => Err(ErrorKind::Builtin(format!(
            "Range bounds must be integers, got {} and {}",
            s.type_of().name(),
            t.type_of().name()
        ))),
    }
}

pub fn make_range(s: &Value, t: &Value, inclusive: bool) -> Result<Value, ErrorKind> {
    range_bounds(s, t, inclusive).map(|r| Value::Range(Rc::new(r)))
}

/// One `{expr:spec}` of an f-string: the plain form, floats with the requested precision,
/// padded to the requested width (numbers right-aligned, everything else left-aligned).
pub fn format_hole(out: &mut String, v: &Value, spec: &crate::syntax::lexer::FormatSpec) {
    let text = match (v, spec.precision) {
        (Value::Float(f), Some(p)) => format!("{f:.p$}"),
        (Value::Int(i), Some(p)) => format!("{:.p$}", *i as f64),
        _ => v.plain().to_string(),
    };
    match spec.width {
        Some(w) if matches!(v, Value::Int(_) | Value::Float(_)) => {
            out.push_str(&format!("{text:>w$}"))
        }
        Some(w) => out.push_str(&format!("{text:<w$}")),
        None => out.push_str(&text),
    }
}
