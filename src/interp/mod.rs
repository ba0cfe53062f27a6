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
use crate::value::{set_int, RangeValue, Upvalue, Value};

/// Why evaluation stopped early: an error, or a control transfer travelling up to the
/// construct that handles it. The payload (error, returned value, label) waits in
/// `Interp::pending`, so a `Flow<Value>` is as small as a `Value` and the common path
/// copies 16 bytes, not a fat enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Signal {
    Error,
    Return,
    Break,
    Continue,
}

type Flow<T = Value> = Result<T, Signal>;

/// The payload of the signal in flight.
#[derive(Default)]
struct Pending {
    error: Option<Box<Error>>,
    value: Value,
    label: Option<Name>,
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
    pending: Pending,
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
            pending: Pending::default(),
        }
    }

    #[cold]
    fn fail<T>(&mut self, kind: ErrorKind, span: Span) -> Flow<T> {
        self.pending.error = Some(Box::new(Error::new(kind, span)));
        Err(Signal::Error)
    }

    /// Attaches a span to an operation's error.
    #[inline(always)]
    fn at<T>(&mut self, r: Result<T, ErrorKind>, span: Span) -> Flow<T> {
        match r {
            Ok(v) => Ok(v),
            Err(kind) => self.fail(kind, span),
        }
    }

    fn take_error(&mut self) -> Error {
        *self
            .pending
            .error
            .take()
            .expect("an error signal carries an error")
    }

    /// The result of a function body: its value, or the value of a `return`.
    fn returned(&mut self, r: Flow) -> Flow {
        match r {
            Err(Signal::Return) => Ok(std::mem::take(&mut self.pending.value)),
            other => other,
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
        let r = self.eval(&script.body);
        let result = match self.returned(r) {
            Ok(v) => Ok(v),
            Err(Signal::Error) => Err(self.take_error()),
            Err(s) => unreachable!("the resolver rejects {s:?} outside loops"),
        };
        self.stack.clear();
        self.cells.clear();
        result
    }

    /// Calls a function value with arguments (used for `main()` after a script).
    pub fn call_value_with(
        &mut self,
        f: &Value,
        args: Vec<Value>,
        span: Span,
    ) -> Result<Value, Error> {
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
            Value::Builtin(b) => {
                let r = b.call(&args, self.out);
                self.at(r, span)
            }
            other => self.fail(ErrorKind::NotCallable(other.type_of()), span),
        };
        match result {
            Ok(v) => Ok(v),
            Err(Signal::Error) => Err(self.take_error()),
            Err(s) => unreachable!("calls absorb {s:?}"),
        }
    }

    fn enter_frame(&mut self, func: &Function) {
        let layout = &func.layout;
        self.stack
            .resize(self.base + layout.num_slots as usize, Value::Nil);
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
    fn read(&mut self, res: Res, name: &Name, span: Span) -> Flow {
        match res {
            Res::Local(s) => Ok(self.stack[self.base + s as usize].clone()),
            Res::Cell(c) => Ok(self.cells[self.cell_base + c as usize].borrow().clone()),
            Res::Upvalue(u) => Ok(self.upvalue(u).borrow().clone()),
            Res::Global(g) => match self.globals.get(g) {
                Some(v) => Ok(v.clone()),
                None => self.fail(ErrorKind::UndefinedVariable(name.to_string()), span),
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

    #[inline]
    fn poll(&mut self, span: Span) -> Flow<()> {
        if self.limits.interrupted() {
            return self.fail(ErrorKind::Interrupted, span);
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
            ExprKind::Var(v) => match v.res {
                Res::Local(s) => Ok(match &self.stack[self.base + s as usize] {
                    // Scalars copy inline; `Value::clone` is an out-of-line call.
                    Value::Int(i) => Value::Int(*i),
                    Value::Float(f) => Value::Float(*f),
                    other => other.clone(),
                }),
                res => self.read(res, &v.name, e.span),
            },
            ExprKind::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.eval(item)?);
                }
                Ok(Value::array(out))
            }
            ExprKind::Unary(op, a) => {
                let v = self.eval(a)?;
                let r = ops::unary(*op, &v);
                self.at(r, e.span)
            }
            ExprKind::Binary(op, a, b) => {
                let x = self.eval(a)?;
                let y = self.eval(b)?;
                let r = binary_fast(*op, &x, &y);
                self.at(r, e.span)
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
                let r = make_range(&s, &t, *inclusive);
                self.at(r, e.span)
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
                self.pending.value = v;
                self.pending.label = label.clone();
                Err(Signal::Break)
            }
            ExprKind::Continue { label } => {
                self.pending.label = label.clone();
                Err(Signal::Continue)
            }
            ExprKind::Return(value) => {
                let v = match value {
                    Some(v) => self.eval(v)?,
                    None => Value::Nil,
                };
                self.pending.value = v;
                Err(Signal::Return)
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
                let r = ops::index_get(&b, &i);
                self.at(r, e.span)
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
            ExprKind::Misplaced(what) => self.fail(ErrorKind::Builtin(what.to_string()), e.span),
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
                    builtins::format_hole(&mut out, &v, spec);
                }
            }
        }
        Ok(Value::Str(Rc::new(out)))
    }

    /// Whether the break or continue in flight belongs to the loop labeled `mine`.
    fn targets(&self, mine: &Option<Name>) -> bool {
        self.pending.label.is_none() || self.pending.label == *mine
    }

    /// Handles a loop body's outcome: `Some(value)` ends the loop with that value.
    #[inline]
    fn loop_step(
        &mut self,
        r: Flow,
        label: &Option<Name>,
        last: &mut Value,
    ) -> Flow<Option<Value>> {
        match r {
            Ok(v) => {
                *last = v;
                Ok(None)
            }
            Err(Signal::Break) if self.targets(label) => {
                self.pending.label = None;
                Ok(Some(std::mem::take(&mut self.pending.value)))
            }
            Err(Signal::Continue) if self.targets(label) => {
                self.pending.label = None;
                Ok(None)
            }
            Err(other) => Err(other),
        }
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
            let r = self.eval(body);
            if let Some(v) = self.loop_step(r, label, &mut last)? {
                return Ok(v);
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
                let r = range_bounds(&s, &t, *inclusive);
                let r = self.at(r, iter.span)?;
                (r.start, r.end_exclusive(), None)
            }
            _ => match self.eval(iter)? {
                Value::Range(r) => (r.start, r.end_exclusive(), None),
                Value::Array(a) => (0, a.len() as i64, Some(a)),
                _ => {
                    return self.fail(
                        ErrorKind::Builtin("For loop requires an iterable".to_string()),
                        iter.span,
                    )
                }
            },
        };
        // The loop variable is one variable for the whole loop (as in the reference):
        // closures created in the body all see its latest value.
        self.define(var.res, Value::Nil);
        let mut last = Value::Nil;
        let mut i = start;
        while i < end {
            self.poll(iter.span)?;
            let v = match &items {
                Some(a) => a[i as usize].clone(),
                None => Value::Int(i),
            };
            self.write(var.res, v);
            let r = self.eval(body);
            if let Some(v) = self.loop_step(r, label, &mut last)? {
                return Ok(v);
            }
            i += 1;
        }
        Ok(last)
    }

    // ---- calls ----

    fn call(&mut self, callee: &Expr, args: &[Expr], span: Span) -> Flow {
        // A global callee (`fib(n - 1)`) is looked up after its arguments are evaluated,
        // in every tier; any other callee is evaluated first.
        let global = matches!(&callee.kind, ExprKind::Var(v) if matches!(v.res, Res::Global(_)));
        let f = if global {
            Value::Nil
        } else {
            self.eval(callee)?
        };
        let base = self.stack.len();
        for a in args {
            let v = self.eval(a)?;
            self.stack.push(v);
        }
        let f = if global { self.eval(callee)? } else { f };
        let result = match &f {
            Value::Func(closure) => self.call_closure(closure, base, args.len(), span),
            Value::Builtin(b) => {
                let r = b.call(&self.stack[base..], self.out);
                self.at(r, span)
            }
            other => self.fail(ErrorKind::NotCallable(other.type_of()), span),
        };
        self.stack.truncate(base);
        result
    }

    /// Calls a closure whose `argc` arguments are on the stack from `base`.
    fn call_closure(
        &mut self,
        closure: &Rc<Closure>,
        base: usize,
        argc: usize,
        span: Span,
    ) -> Flow {
        let Code::Ast(func) = &closure.code else {
            unreachable!("the tree-walker only creates AST closures")
        };
        let (min, max) = func.arity();
        if argc < min || argc > max {
            return self.fail(
                ErrorKind::Arity {
                    min,
                    max,
                    got: argc,
                },
                span,
            );
        }
        if self.depth >= self.limits.max_depth || crate::stack::exhausted() {
            return self.fail(ErrorKind::RecursionLimit, span);
        }
        self.poll(span)?;
        let saved = (
            self.base,
            self.cell_base,
            self.closure.replace(closure.clone()),
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
            let r = self.eval(&func.body);
            result = self.returned(r);
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
                let r = self.with_place(&path, &indices, |slot| {
                    builtins::call_mut_method(slot, method, &argv)
                });
                return self.at(r, span);
            }
        }
        let mut recv = self.eval(receiver)?;
        let argv = self.eval_args(args)?;
        if builtins::is_mutating_method(method) {
            // On a temporary: the change is not visible anywhere, but errors still are.
            let r = builtins::call_mut_method(&mut recv, method, &argv);
            return self.at(r, span);
        }
        let r = builtins::call_method(&recv, method, &argv);
        self.at(r, span)
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
                    let at = self.base + s as usize;
                    // Ints add inline; an unshared string appends in place.
                    if let (Value::Int(a), Value::Int(b)) = (&self.stack[at], &y) {
                        if let Some(r) = a.checked_add(*b) {
                            set_int(&mut self.stack[at], r);
                            return Ok(Value::Int(r));
                        }
                    }
                    let r = ops::add_in_place(&mut self.stack[at], &y);
                    // An error belongs to the `+` of `s = s + x`, to the whole `s += x`.
                    let culprit = if op.is_some() { span } else { value.span };
                    self.at(r, culprit)?;
                    return Ok(self.stack[at].clone());
                }
            }
            let v = match op {
                None => self.eval(value)?,
                Some(op) => {
                    let old = self.read(var.res, &var.name, target.span)?;
                    let y = self.eval(value)?;
                    let r = binary_fast(op, &old, &y);
                    self.at(r, span)?
                }
            };
            self.write(var.res, v.clone());
            return Ok(v);
        }
        let path = place::Path::of(target).expect("the parser only accepts places");
        let indices = self.eval_indices(&path)?;
        let v = self.eval(value)?;
        let r = self.with_place(&path, &indices, |slot| {
            let new = match op {
                None => v,
                Some(op) => binary_fast(op, slot, &v)?,
            };
            *slot = new.clone();
            Ok(new)
        });
        self.at(r, target.span)
    }
}

/// Int and float fast paths before the general operator semantics.
#[inline(always)]
fn binary_fast(op: BinOp, x: &Value, y: &Value) -> Result<Value, ErrorKind> {
    match (x, y) {
        (Value::Int(a), Value::Int(b)) => {
            let (a, b) = (*a, *b);
            let fast = match op {
                BinOp::Lt => Some(Value::Bool(a < b)),
                BinOp::Le => Some(Value::Bool(a <= b)),
                BinOp::Gt => Some(Value::Bool(a > b)),
                BinOp::Ge => Some(Value::Bool(a >= b)),
                BinOp::Eq => Some(Value::Bool(a == b)),
                BinOp::Ne => Some(Value::Bool(a != b)),
                BinOp::Add => a.checked_add(b).map(Value::Int),
                BinOp::Sub => a.checked_sub(b).map(Value::Int),
                BinOp::Mul => a.checked_mul(b).map(Value::Int),
                BinOp::Div if b != 0 => a.checked_div(b).map(Value::Int),
                BinOp::Mod if b != 0 => a.checked_rem(b).map(Value::Int),
                _ => None,
            };
            if let Some(v) = fast {
                return Ok(v);
            }
        }
        (Value::Float(a), Value::Float(b)) => {
            let (a, b) = (*a, *b);
            match op {
                BinOp::Add => return Ok(Value::Float(a + b)),
                BinOp::Sub => return Ok(Value::Float(a - b)),
                BinOp::Mul => return Ok(Value::Float(a * b)),
                BinOp::Div => return Ok(Value::Float(a / b)),
                BinOp::Lt => return Ok(Value::Bool(a < b)),
                BinOp::Le => return Ok(Value::Bool(a <= b)),
                BinOp::Gt => return Ok(Value::Bool(a > b)),
                BinOp::Ge => return Ok(Value::Bool(a >= b)),
                _ => {}
            }
        }
        _ => {}
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
