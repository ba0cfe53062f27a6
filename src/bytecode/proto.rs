//! A function prototype: the compiled form of one function literal (or a script's top
//! level), with its constants, line table, nested functions and frame layout.

use std::rc::Rc;

use crate::bytecode::op::{Op, Reg};
use crate::profile::FunctionCounters;
use crate::syntax::ast::{BinOp, Capture, Name};
use crate::syntax::lexer::FormatSpec;
use crate::syntax::source::Span;
use crate::value::Value;

#[derive(Clone, Debug, PartialEq)]
pub enum Const {
    Int(i64),
    Float(f64),
    Str(Rc<String>),
}

impl Const {
    pub fn to_value(&self) -> Value {
        match self {
            Const::Int(i) => Value::Int(*i),
            Const::Float(f) => Value::Float(*f),
            Const::Str(s) => Value::Str(s.clone()),
        }
    }
}

/// Where a place (the target of an index assignment or of `push`/`pop`) starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PlaceRoot {
    Reg(Reg),
    Cell(u16),
    Upval(u16),
    Global(u32),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PlaceOp {
    /// `place = src`
    Assign,
    /// `place op= src`
    Compound(BinOp),
    /// `place.push(src)`
    Push,
    /// `place.pop()`
    Pop,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Place {
    pub root: PlaceRoot,
    /// Number of indices after the root.
    pub depth: u8,
    pub op: PlaceOp,
    /// The root variable's name, for `Undefined variable` and the disassembly.
    pub name: Name,
}

impl Place {
    pub fn describe(&self, globals: &dyn Fn(u32) -> String) -> String {
        let root = match self.root {
            PlaceRoot::Reg(r) => format!("r{r}"),
            PlaceRoot::Cell(c) => format!("cell{c}"),
            PlaceRoot::Upval(u) => format!("upval{u}"),
            PlaceRoot::Global(g) => globals(g),
        };
        let op = match self.op {
            PlaceOp::Assign => "=".to_string(),
            PlaceOp::Compound(op) => format!("{}=", op.symbol()),
            PlaceOp::Push => ".push".to_string(),
            PlaceOp::Pop => ".pop".to_string(),
        };
        format!("{root}{} {op}", "[]".repeat(self.depth as usize))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum TemplatePart {
    Lit(String),
    Hole(FormatSpec),
}

impl Proto {
    /// The span of the callee name of the `CALLGLOBAL` at `pc`.
    pub fn callee_span(&self, pc: usize) -> Span {
        match self
            .callee_spans
            .binary_search_by_key(&(pc as u32), |(p, _)| *p)
        {
            Ok(i) => self.callee_spans[i].1,
            Err(_) => self.spans[pc],
        }
    }
}

pub struct Proto {
    pub name: Name,
    pub code: Vec<Op>,
    /// Source span of each instruction: errors point where the tree-walker's do.
    pub spans: Vec<Span>,
    /// Source line of each instruction, for the disassembly and profiles.
    pub lines: Vec<u32>,
    pub consts: Vec<Const>,
    /// The constants as values, ready to copy into registers.
    pub const_values: Vec<Value>,
    pub children: Vec<Rc<Proto>>,
    /// What a closure of this function captures from the frame that creates it.
    pub captures: Vec<Capture>,
    pub places: Vec<Place>,
    pub templates: Vec<Vec<TemplatePart>>,
    pub num_params: u16,
    /// Registers holding named locals (parameters first); they start as nil on entry, as
    /// in the tree-walker. Temporaries above them are always written before being read.
    pub num_locals: u16,
    pub min_args: usize,
    pub max_args: usize,
    pub num_regs: u16,
    pub num_cells: u16,
    pub num_loops: u16,
    /// Parameters that closures capture: (parameter register, cell), moved into their cells
    /// on entry.
    pub captured_params: Vec<(u16, u16)>,
    /// Line of the function's definition (0 for a script).
    pub line: u32,
    /// Source line of each loop, by loop id.
    pub loop_lines: Vec<u32>,
    /// For each `CALLGLOBAL` (by pc, ascending): the span of the callee's name, where an
    /// `Undefined variable` error points (the instruction's own span is the whole call).
    pub callee_spans: Vec<(u32, Span)>,
    /// What the VM has counted about this function (always on; see `profile`).
    pub counters: FunctionCounters,
    /// Its compiled versions and deopt record (see `jit`).
    pub jit: crate::jit::FunctionJit,
}
