//! The bytecode compiler: resolved AST to `Proto`s.
//!
//! Locals live in the registers the resolver gave them (`0 .. num_slots`); temporaries are
//! allocated above them like a stack and released in LIFO order. An expression is compiled
//! either into a destination register or for its effects only (`dst = None`).
//!
//! Every instruction records the span of the syntax node whose error it can raise, the same
//! node the tree-walker reports, so both tiers print the same location.

use std::rc::Rc;

use crate::bytecode::op::{Op, Reg};
use crate::bytecode::proto::{Const, Place, Proto, TemplatePart};
use crate::error::Error;
use crate::profile::FunctionCounters;
use crate::syntax::ast::*;
use crate::syntax::source::{SourceMap, Span};

mod control;
mod places;

/// Compiles a resolved script (a program or a REPL input) and every function in it.
pub fn compile_script(script: &Function, sources: &SourceMap) -> Result<Rc<Proto>, Error> {
    FnCompiler::new(script, sources).finish()
}

struct LoopCtx {
    label: Option<Name>,
    /// Where the loop's value goes, if it is used.
    result: Option<Reg>,
    breaks: Vec<usize>,
    continues: Vec<usize>,
}

struct FnCompiler<'a> {
    func: &'a Function,
    sources: &'a SourceMap,
    code: Vec<Op>,
    spans: Vec<Span>,
    lines: Vec<u32>,
    consts: Vec<Const>,
    children: Vec<Rc<Proto>>,
    places: Vec<Place>,
    templates: Vec<Vec<TemplatePart>>,
    /// First free temporary register.
    next_reg: u32,
    max_reg: u32,
    loops: Vec<LoopCtx>,
    loop_lines: Vec<u32>,
    callee_spans: Vec<(u32, Span)>,
}

type CResult<T = ()> = Result<T, Error>;

/// An expression that writes its destination before it has read everything it needs
/// (branches, loops, blocks): compiling it straight into a variable's own register could
/// clobber a value it still reads, so it goes through a temporary.
fn writes_early(e: &Expr) -> bool {
    matches!(
        e.kind,
        ExprKind::If { .. }
            | ExprKind::Logic(..)
            | ExprKind::Block(_)
            | ExprKind::While { .. }
            | ExprKind::Loop { .. }
            | ExprKind::For { .. }
    )
}

impl<'a> FnCompiler<'a> {
    fn new(func: &'a Function, sources: &'a SourceMap) -> FnCompiler<'a> {
        let slots = func.layout.num_slots;
        FnCompiler {
            func,
            sources,
            code: Vec::new(),
            spans: Vec::new(),
            lines: Vec::new(),
            consts: Vec::new(),
            children: Vec::new(),
            places: Vec::new(),
            templates: Vec::new(),
            next_reg: slots,
            max_reg: slots,
            loops: Vec::new(),
            loop_lines: vec![0; func.layout.num_loops as usize],
            callee_spans: Vec::new(),
        }
    }

    fn finish(mut self) -> CResult<Rc<Proto>> {
        let func = self.func;
        let (min_args, max_args) = func.arity();
        // Parameters in order: a missing one takes its default (which may use the ones
        // before it); a captured one moves into its cell.
        for (i, p) in func.params.iter().enumerate() {
            let reg = i as Reg;
            if let Some(default) = &p.default {
                let at = self.emit(
                    Op::ArgGiven {
                        param: i as u16,
                        target: 0,
                    },
                    default.span,
                );
                self.expr(default, Some(reg))?;
                self.patch_here(at);
            }
            if let Res::Cell(c) = p.binding.res {
                self.emit(
                    Op::NewCell {
                        cell: c as u16,
                        src: reg,
                    },
                    p.binding.span,
                );
            }
        }
        let result = self.alloc(func.body.span)?;
        self.expr(&func.body, Some(result))?;
        self.emit(Op::Return { src: result }, func.body.span);

        if self.max_reg > u16::MAX as u32 {
            return Err(Error::syntax(
                "function too large: it needs more than 65535 registers",
                func.span,
            ));
        }
        let const_values = self.consts.iter().map(Const::to_value).collect();
        let counters = FunctionCounters::new(self.code.len(), func.layout.num_loops as usize);
        let line = if func.layout.is_script {
            0
        } else {
            self.sources.line_of(func.span) as u32
        };
        Ok(Rc::new(Proto {
            name: func.name.clone(),
            code: self.code,
            spans: self.spans,
            lines: self.lines,
            consts: self.consts,
            const_values,
            children: self.children,
            captures: func.layout.captures.clone(),
            places: self.places,
            templates: self.templates,
            num_params: func.params.len() as u16,
            num_locals: func.layout.num_slots as u16,
            min_args,
            max_args,
            num_regs: self.max_reg as u16,
            num_cells: func.layout.num_cells as u16,
            num_loops: func.layout.num_loops as u16,
            captured_params: func
                .layout
                .captured_params
                .iter()
                .map(|&(p, c)| (p as u16, c as u16))
                .collect(),
            line,
            loop_lines: self.loop_lines,
            callee_spans: self.callee_spans,
            counters,
            jit: Default::default(),
        }))
    }

    // ---- emission ----

    fn emit(&mut self, op: Op, span: Span) -> usize {
        self.code.push(op);
        self.spans.push(span);
        self.lines.push(self.sources.line_of(span) as u32);
        self.code.len() - 1
    }

    fn pc(&self) -> u32 {
        self.code.len() as u32
    }

    fn patch_here(&mut self, at: usize) {
        let here = self.pc();
        self.code[at].set_target(here);
    }

    fn constant(&mut self, c: Const, span: Span) -> CResult<u16> {
        if let Some(i) = self.consts.iter().position(|k| *k == c) {
            return Ok(i as u16);
        }
        if self.consts.len() >= u16::MAX as usize {
            return Err(Error::syntax("too many constants in one function", span));
        }
        self.consts.push(c);
        Ok((self.consts.len() - 1) as u16)
    }

    fn alloc(&mut self, span: Span) -> CResult<Reg> {
        self.alloc_n(1, span)
    }

    /// `n` consecutive temporaries; returns the first.
    fn alloc_n(&mut self, n: u32, span: Span) -> CResult<Reg> {
        let first = self.next_reg;
        self.next_reg += n;
        if self.next_reg > u16::MAX as u32 {
            return Err(Error::syntax(
                "function too large: it needs more than 65535 registers",
                span,
            ));
        }
        self.max_reg = self.max_reg.max(self.next_reg);
        Ok(first as Reg)
    }

    fn mark(&self) -> u32 {
        self.next_reg
    }

    fn release(&mut self, mark: u32) {
        self.next_reg = mark;
    }

    fn mov(&mut self, dst: Option<Reg>, src: Reg, span: Span) {
        if let Some(d) = dst {
            if d != src {
                self.emit(Op::Move { dst: d, src }, span);
            }
        }
    }

    // ---- expressions ----

    /// Compiles `e` and returns a register holding its value: a local's own register when
    /// `e` is a local, else a new temporary.
    fn expr_any(&mut self, e: &Expr) -> CResult<Reg> {
        if let ExprKind::Var(Var {
            res: Res::Local(s), ..
        }) = e.kind
        {
            return Ok(s as Reg);
        }
        let r = self.alloc(e.span)?;
        self.expr(e, Some(r))?;
        Ok(r)
    }

    /// Compiles `e` into a variable's register, through a temporary when needed.
    fn expr_into_var(&mut self, e: &Expr, var: Reg) -> CResult {
        if writes_early(e) {
            let mark = self.mark();
            let t = self.alloc(e.span)?;
            self.expr(e, Some(t))?;
            self.mov(Some(var), t, e.span);
            self.release(mark);
            Ok(())
        } else {
            self.expr(e, Some(var))
        }
    }

    fn expr(&mut self, e: &Expr, dst: Option<Reg>) -> CResult {
        let span = e.span;
        let mark = self.mark();
        match &e.kind {
            ExprKind::Nil => {
                if let Some(d) = dst {
                    self.emit(Op::LoadNil { dst: d }, span);
                }
            }
            ExprKind::Bool(b) => {
                if let Some(d) = dst {
                    self.emit(Op::LoadBool { dst: d, value: *b }, span);
                }
            }
            ExprKind::Int(i) => {
                if let Some(d) = dst {
                    match i32::try_from(*i) {
                        Ok(v) => self.emit(Op::LoadInt { dst: d, value: v }, span),
                        Err(_) => {
                            let k = self.constant(Const::Int(*i), span)?;
                            self.emit(Op::LoadConst { dst: d, k }, span)
                        }
                    };
                }
            }
            ExprKind::Float(f) => {
                if let Some(d) = dst {
                    let k = self.constant(Const::Float(*f), span)?;
                    self.emit(Op::LoadConst { dst: d, k }, span);
                }
            }
            ExprKind::Str(s) => {
                if let Some(d) = dst {
                    let k = self.constant(Const::Str(s.clone()), span)?;
                    self.emit(Op::LoadConst { dst: d, k }, span);
                }
            }
            ExprKind::FString(parts) => self.fstring(parts, dst, span)?,
            ExprKind::Var(v) => self.read_var(v, dst, span)?,
            ExprKind::Array(items) => {
                let first = self.alloc_n(items.len() as u32, span)?;
                for (i, item) in items.iter().enumerate() {
                    self.expr(item, Some(first + i as Reg))?;
                }
                let d = self.dst_or_temp(dst, span)?;
                self.emit(
                    Op::NewArray {
                        dst: d,
                        first,
                        count: items.len() as u16,
                    },
                    span,
                );
            }
            ExprKind::Unary(op, a) => {
                let ra = self.expr_any(a)?;
                let d = self.dst_or_temp(dst, span)?;
                let op = match op {
                    UnOp::Neg => Op::Neg { dst: d, a: ra },
                    UnOp::Not => Op::Not { dst: d, a: ra },
                    UnOp::BitNot => Op::BitNot { dst: d, a: ra },
                };
                self.emit(op, span);
            }
            ExprKind::Binary(op, a, b) => self.binary(*op, a, b, dst, span)?,
            ExprKind::Logic(op, a, b) => {
                let d = self.dst_or_temp(dst, span)?;
                self.expr(a, Some(d))?;
                let jump = match op {
                    LogicOp::And => Op::JumpIfFalse { cond: d, target: 0 },
                    LogicOp::Or => Op::JumpIfTrue { cond: d, target: 0 },
                };
                let at = self.emit(jump, span);
                self.expr(b, Some(d))?;
                self.patch_here(at);
            }
            ExprKind::Range {
                start,
                end,
                inclusive,
            } => {
                let rs = self.expr_any(start)?;
                let re = self.expr_any(end)?;
                let d = self.dst_or_temp(dst, span)?;
                self.emit(
                    Op::NewRange {
                        dst: d,
                        start: rs,
                        end: re,
                        inclusive: *inclusive,
                    },
                    span,
                );
            }
            ExprKind::If {
                cond,
                then_branch,
                else_branch,
            } => {
                let to_else = self.cond_false(cond)?;
                self.expr(then_branch, dst)?;
                if else_branch.is_some() || dst.is_some() {
                    let to_end = self.emit(Op::Jump { target: 0 }, span);
                    for at in to_else {
                        self.patch_here(at);
                    }
                    match else_branch {
                        Some(els) => self.expr(els, dst)?,
                        None => self.expr_nil(dst, span),
                    }
                    self.patch_here(to_end);
                } else {
                    for at in to_else {
                        self.patch_here(at);
                    }
                }
            }
            ExprKind::Block(b) => self.block(b, dst, span)?,
            ExprKind::While {
                label,
                cond,
                body,
                loop_id,
            } => {
                self.expr_nil(dst, span);
                let header = self.begin_loop(*loop_id, span);
                let exits = self.cond_false(cond)?;
                // A `while` yields its last body value.
                self.loop_body(label, dst, dst, body, *loop_id, header, exits, span)?;
            }
            ExprKind::Loop {
                label,
                body,
                loop_id,
            } => {
                let header = self.begin_loop(*loop_id, span);
                // A `loop` yields only what `break` gives it.
                self.loop_body(label, dst, None, body, *loop_id, header, Vec::new(), span)?;
            }
            ExprKind::For {
                label,
                var,
                iter,
                body,
                loop_id,
            } => self.for_loop(label, var, iter, body, *loop_id, dst, span)?,
            ExprKind::Break { label, value } => {
                let index = self.loop_index(label.as_ref());
                let result = self.loops[index].result;
                match (value, result) {
                    (Some(v), r) => self.expr(v, r)?,
                    (None, Some(r)) => {
                        self.emit(Op::LoadNil { dst: r }, span);
                    }
                    (None, None) => {}
                }
                let at = self.emit(Op::Jump { target: 0 }, span);
                self.loops[index].breaks.push(at);
            }
            ExprKind::Continue { label } => {
                let index = self.loop_index(label.as_ref());
                let at = self.emit(Op::Jump { target: 0 }, span);
                self.loops[index].continues.push(at);
            }
            ExprKind::Return(value) => {
                let r = match value {
                    Some(v) => self.expr_any(v)?,
                    None => {
                        let r = self.alloc(span)?;
                        self.emit(Op::LoadNil { dst: r }, span);
                        r
                    }
                };
                self.emit(Op::Return { src: r }, span);
            }
            ExprKind::Call { callee, args } => {
                if args.len() > u8::MAX as usize {
                    return Err(Error::syntax("too many arguments (at most 255)", span));
                }
                // A call into the newest temporary uses it as the call base (no move after).
                let base = match dst {
                    Some(d)
                        if d as u32 + 1 == self.next_reg
                            && d as u32 >= self.func.layout.num_slots =>
                    {
                        d
                    }
                    _ => self.alloc(span)?,
                };
                let global = match callee.kind {
                    ExprKind::Var(Var {
                        res: Res::Global(g),
                        ..
                    }) => Some(g),
                    _ => None,
                };
                if global.is_none() {
                    self.expr(callee, Some(base))?;
                }
                // Argument slots are taken one at a time: while an argument is computed,
                // the slots above it hold nothing live, so a call in that argument can use
                // the argument's own slot as its base.
                for (i, a) in args.iter().enumerate() {
                    let slot = self.alloc(a.span)?;
                    debug_assert_eq!(slot, base + 1 + i as Reg);
                    self.expr(a, Some(slot))?;
                }
                let argc = args.len() as u8;
                let op = match global {
                    Some(global) => Op::CallGlobal { base, argc, global },
                    None => Op::Call { base, argc },
                };
                let at = self.emit(op, span);
                if global.is_some() {
                    self.callee_spans.push((at as u32, callee.span));
                }
                self.mov(dst, base, span);
            }
            ExprKind::Method {
                receiver,
                method,
                args,
            } => self.method(receiver, method, args, dst, span)?,
            ExprKind::Index { base, index } => {
                let rb = self.expr_any(base)?;
                let ri = self.expr_any(index)?;
                let d = self.dst_or_temp(dst, span)?;
                self.emit(
                    Op::GetIndex {
                        dst: d,
                        base: rb,
                        index: ri,
                    },
                    span,
                );
            }
            ExprKind::Assign { target, op, value } => self.assign(target, *op, value, dst, span)?,
            ExprKind::Let { binding, value } => {
                let r = match (binding.res, value) {
                    // A new slot is not read by its own initializer, so it can be the target.
                    (Res::Local(s), Some(v)) => {
                        self.expr(v, Some(s as Reg))?;
                        s as Reg
                    }
                    (_, Some(v)) => self.expr_any(v)?,
                    (_, None) => {
                        let r = self.alloc(span)?;
                        self.emit(Op::LoadNil { dst: r }, span);
                        r
                    }
                };
                self.define(binding.res, r, span);
                self.mov(dst, r, span);
            }
            ExprKind::FunDecl { binding, func } => {
                let r = self.closure(func, span)?;
                // A hoisted declaration's cell exists already: fill it.
                self.store_var(binding.res, r, span);
                self.mov(dst, r, span);
            }
            ExprKind::Lambda(func) => {
                let r = self.closure(func, span)?;
                self.mov(dst, r, span);
            }
            ExprKind::Misplaced(what) => {
                let message = self.constant(Const::Str(Rc::new(what.to_string())), span)?;
                self.emit(Op::Fail { message }, span);
            }
        }
        self.release(mark);
        Ok(())
    }

    fn dst_or_temp(&mut self, dst: Option<Reg>, span: Span) -> CResult<Reg> {
        match dst {
            Some(d) => Ok(d),
            None => self.alloc(span),
        }
    }

    fn expr_nil(&mut self, dst: Option<Reg>, span: Span) {
        if let Some(d) = dst {
            self.emit(Op::LoadNil { dst: d }, span);
        }
    }

    fn read_var(&mut self, v: &Var, dst: Option<Reg>, span: Span) -> CResult {
        match v.res {
            Res::Local(s) => self.mov(dst, s as Reg, span),
            Res::Cell(c) => {
                if let Some(d) = dst {
                    self.emit(
                        Op::GetCell {
                            dst: d,
                            cell: c as u16,
                        },
                        span,
                    );
                }
            }
            Res::Upvalue(u) => {
                if let Some(d) = dst {
                    self.emit(
                        Op::GetUpval {
                            dst: d,
                            upval: u as u16,
                        },
                        span,
                    );
                }
            }
            // Read even when unused: an undefined global is an error.
            Res::Global(g) => {
                let d = self.dst_or_temp(dst, span)?;
                self.emit(Op::GetGlobal { dst: d, global: g }, span);
            }
            Res::Unresolved => unreachable!("unresolved variable {}", v.name),
        }
        Ok(())
    }

    /// Assigns an existing variable (or creates a global).
    fn store_var(&mut self, res: Res, src: Reg, span: Span) {
        match res {
            Res::Local(s) => self.mov(Some(s as Reg), src, span),
            Res::Cell(c) => {
                self.emit(
                    Op::SetCell {
                        cell: c as u16,
                        src,
                    },
                    span,
                );
            }
            Res::Upvalue(u) => {
                self.emit(
                    Op::SetUpval {
                        upval: u as u16,
                        src,
                    },
                    span,
                );
            }
            Res::Global(g) => {
                self.emit(Op::SetGlobal { global: g, src }, span);
            }
            Res::Unresolved => unreachable!("unresolved assignment"),
        }
    }

    /// Binds a new variable: a captured one gets a fresh cell.
    fn define(&mut self, res: Res, src: Reg, span: Span) {
        match res {
            Res::Cell(c) => {
                self.emit(
                    Op::NewCell {
                        cell: c as u16,
                        src,
                    },
                    span,
                );
            }
            other => self.store_var(other, src, span),
        }
    }

    fn closure(&mut self, func: &Rc<Function>, span: Span) -> CResult<Reg> {
        let proto = FnCompiler::new(func, self.sources).finish()?;
        self.children.push(proto);
        let r = self.alloc(span)?;
        self.emit(
            Op::Closure {
                dst: r,
                func: (self.children.len() - 1) as u16,
            },
            span,
        );
        Ok(r)
    }

    fn binary(&mut self, op: BinOp, a: &Expr, b: &Expr, dst: Option<Reg>, span: Span) -> CResult {
        // `x + 1`, `n - 2`, `i % 7`: an int immediate saves a register load.
        if let (BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Mod, ExprKind::Int(imm)) =
            (op, &b.kind)
        {
            if let Ok(imm) = i16::try_from(*imm) {
                let ra = self.expr_any(a)?;
                let d = self.dst_or_temp(dst, span)?;
                let op = match op {
                    BinOp::Add => Op::AddI { dst: d, a: ra, imm },
                    BinOp::Sub => Op::SubI { dst: d, a: ra, imm },
                    BinOp::Mul => Op::MulI { dst: d, a: ra, imm },
                    _ => Op::ModI { dst: d, a: ra, imm },
                };
                self.emit(op, span);
                return Ok(());
            }
        }
        let ra = self.expr_any(a)?;
        let rb = self.expr_any(b)?;
        let d = self.dst_or_temp(dst, span)?;
        self.binary_regs(op, d, ra, rb, span);
        Ok(())
    }

    fn binary_regs(&mut self, op: BinOp, d: Reg, a: Reg, b: Reg, span: Span) {
        let op = match op {
            BinOp::Add => Op::Add { dst: d, a, b },
            BinOp::Sub => Op::Sub { dst: d, a, b },
            BinOp::Mul => Op::Mul { dst: d, a, b },
            BinOp::Div => Op::Div { dst: d, a, b },
            BinOp::Mod => Op::Mod { dst: d, a, b },
            BinOp::Pow => Op::Pow { dst: d, a, b },
            BinOp::BitAnd => Op::BitAnd { dst: d, a, b },
            BinOp::BitOr => Op::BitOr { dst: d, a, b },
            BinOp::BitXor => Op::BitXor { dst: d, a, b },
            BinOp::Shl => Op::Shl { dst: d, a, b },
            BinOp::Shr => Op::Shr { dst: d, a, b },
            BinOp::Eq => Op::Eq { dst: d, a, b },
            BinOp::Ne => Op::Ne { dst: d, a, b },
            BinOp::Lt => Op::Lt { dst: d, a, b },
            BinOp::Le => Op::Le { dst: d, a, b },
            BinOp::Gt => Op::Gt { dst: d, a, b },
            BinOp::Ge => Op::Ge { dst: d, a, b },
        };
        self.emit(op, span);
    }

    fn fstring(&mut self, parts: &[FPart], dst: Option<Reg>, span: Span) -> CResult {
        let holes = parts
            .iter()
            .filter(|p| matches!(p, FPart::Hole(..)))
            .count();
        let first = self.alloc_n(holes as u32, span)?;
        let mut template = Vec::new();
        let mut i = 0;
        for p in parts {
            match p {
                FPart::Lit(s) => template.push(TemplatePart::Lit(s.clone())),
                FPart::Hole(e, spec) => {
                    self.expr(e, Some(first + i))?;
                    i += 1;
                    template.push(TemplatePart::Hole(*spec));
                }
            }
        }
        self.templates.push(template);
        let d = self.dst_or_temp(dst, span)?;
        self.emit(
            Op::FString {
                dst: d,
                first,
                template: (self.templates.len() - 1) as u16,
            },
            span,
        );
        Ok(())
    }
}
