//! Function values. A closure pairs code with the cells it captured. The code is the
//! resolved syntax tree for the tree-walker and a bytecode prototype for the VM and the
//! JIT; a program runs entirely on one or the other, so a closure never needs both.

use std::rc::Rc;

use crate::bytecode::proto::Proto;
use crate::syntax::ast::{Function, Name};
use crate::value::Upvalue;

pub struct Closure {
    pub code: Code,
    pub captures: Box<[Upvalue]>,
}

pub enum Code {
    Ast(Rc<Function>),
    Bytecode(Rc<Proto>),
}

impl Closure {
    pub fn name(&self) -> &Name {
        match &self.code {
            Code::Ast(f) => &f.name,
            Code::Bytecode(p) => &p.name,
        }
    }
}
