//! The abstract syntax tree. Every node carries its span. Variable references and
//! declarations carry a `Res` slot that the resolver fills in (local slot, captured cell,
//! upvalue of the enclosing closure, or global), so later stages never look names up.

use std::rc::Rc;

use crate::syntax::lexer::FormatSpec;
use crate::syntax::source::Span;

pub type Name = Rc<str>;

#[derive(Debug)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug)]
pub enum ExprKind {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<String>),
    FString(Vec<FPart>),
    Var(Var),
    Array(Vec<Expr>),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `&&` and `||`: short-circuit, and yield an operand, not a bool.
    Logic(LogicOp, Box<Expr>, Box<Expr>),
    Range {
        start: Box<Expr>,
        end: Box<Expr>,
        inclusive: bool,
    },
    /// `if` and the ternary `c ? a : b`.
    If {
        cond: Box<Expr>,
        then_branch: Box<Expr>,
        else_branch: Option<Box<Expr>>,
    },
    Block(Block),
    While {
        label: Option<Name>,
        cond: Box<Expr>,
        body: Box<Expr>,
        loop_id: u32,
    },
    Loop {
        label: Option<Name>,
        body: Box<Expr>,
        loop_id: u32,
    },
    For {
        label: Option<Name>,
        var: Binding,
        iter: Box<Expr>,
        body: Box<Expr>,
        loop_id: u32,
    },
    Break {
        label: Option<Name>,
        value: Option<Box<Expr>>,
    },
    Continue {
        label: Option<Name>,
    },
    Return(Option<Box<Expr>>),
    Call {
        callee: Box<Expr>,
        args: Vec<Expr>,
    },
    /// `receiver.method(args)`; `push` and `pop` mutate the receiver when it is a place.
    Method {
        receiver: Box<Expr>,
        method: Name,
        args: Vec<Expr>,
    },
    Index {
        base: Box<Expr>,
        index: Box<Expr>,
    },
    /// `target = value` or `target op= value`; the target is a `Var` or an `Index` chain
    /// rooted at a `Var`.
    Assign {
        target: Box<Expr>,
        op: Option<BinOp>,
        value: Box<Expr>,
    },
    Let {
        binding: Binding,
        value: Option<Box<Expr>>,
    },
    /// A named function declaration: binds the name, yields the function.
    FunDecl {
        binding: Binding,
        func: Rc<Function>,
    },
    Lambda(Rc<Function>),
    /// A `break` or `continue` outside any loop: an error when (and only if) it runs, as
    /// in the reference, so output printed before it is kept.
    Misplaced(&'static str),
}

#[derive(Debug)]
pub enum FPart {
    Lit(String),
    Hole(Expr, FormatSpec),
}

#[derive(Debug)]
pub struct Block {
    pub stmts: Vec<Expr>,
    /// Cells of hoisted, captured function declarations, created when the block is entered
    /// (so a closure defined earlier in the block can capture a function defined later).
    pub entry_cells: Vec<u32>,
}

#[derive(Debug)]
pub struct Var {
    pub name: Name,
    pub res: Res,
}

/// A declaration site: `let x`, a parameter, a `for` variable, a `fun` name.
#[derive(Debug)]
pub struct Binding {
    pub name: Name,
    pub span: Span,
    pub res: Res,
}

/// Where a name lives, decided by the resolver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Res {
    #[default]
    Unresolved,
    /// A slot in the function's frame (a VM register).
    Local(u32),
    /// A variable captured by some closure: it lives in a shared cell of this frame.
    Cell(u32),
    /// A variable of an enclosing function, reached through this closure's captures.
    Upvalue(u32),
    /// A global, by index in the session's global table.
    Global(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Not,
    BitNot,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    BitAnd,
    BitOr,
    BitXor,
    Shl,
    Shr,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Pow => "**",
            BinOp::BitAnd => "&",
            BinOp::BitOr => "|",
            BinOp::BitXor => "^",
            BinOp::Shl => "<<",
            BinOp::Shr => ">>",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogicOp {
    And,
    Or,
}

#[derive(Debug)]
pub struct Param {
    pub binding: Binding,
    pub default: Option<Expr>,
}

/// A function literal: a declaration, a lambda, or the top level of a program.
#[derive(Debug)]
pub struct Function {
    pub name: Name,
    pub params: Vec<Param>,
    pub body: Expr,
    pub span: Span,
    /// Filled by the resolver.
    pub layout: FrameLayout,
}

/// What the resolver learned about a function's frame.
#[derive(Debug, Default)]
pub struct FrameLayout {
    /// Local slots, parameters first.
    pub num_slots: u32,
    /// Cells for captured variables.
    pub num_cells: u32,
    /// Parameters that closures capture: (parameter index, cell) pairs, moved into
    /// their cells on entry.
    pub captured_params: Vec<(u32, u32)>,
    /// Where each of this closure's upvalues comes from in the enclosing frame.
    pub captures: Vec<Capture>,
    /// Number of loops (ids 0..num_loops).
    pub num_loops: u32,
    /// The top-level code of a program or REPL input (its `let`s are globals).
    pub is_script: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capture {
    /// A cell of the enclosing frame.
    Cell(u32),
    /// An upvalue of the enclosing closure.
    Upvalue(u32),
}

impl Function {
    /// The arity range min..=max: every parameter up to the last one without a default
    /// must be passed.
    pub fn arity(&self) -> (usize, usize) {
        let min = self
            .params
            .iter()
            .rposition(|p| p.default.is_none())
            .map_or(0, |i| i + 1);
        (min, self.params.len())
    }
}
