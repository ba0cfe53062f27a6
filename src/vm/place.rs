//! Places in the VM: a root (register, cell, upvalue or global) followed by indices held in
//! consecutive registers, updated in place with copy-on-write at each level.

use std::rc::Rc;

use super::Vm;
use crate::builtins;
use crate::bytecode::op::Reg;
use crate::bytecode::proto::{Place, PlaceOp, PlaceRoot};
use crate::error::ErrorKind;
use crate::function::Closure;
use crate::ops;
use crate::value::Value;

impl Vm<'_> {
    /// Applies `place.op` to the place; returns the instruction's result (the new value, or
    /// what `push`/`pop` return).
    pub(super) fn place_update(
        &mut self,
        place: &Place,
        base: usize,
        cell_base: usize,
        closure: &Rc<Closure>,
        first: Reg,
        src: Reg,
    ) -> Result<Value, ErrorKind> {
        let start = base + first as usize;
        let indices: Vec<Value> = self.stack[start..start + place.depth as usize].to_vec();
        let value = self.stack[base + src as usize].clone();
        let apply = |slot: &mut Value| -> Result<Value, ErrorKind> {
            let mut slot = slot;
            for i in &indices {
                slot = ops::index_slot(slot, i)?;
            }
            match place.op {
                PlaceOp::Assign => {
                    *slot = value.clone();
                    Ok(value)
                }
                PlaceOp::Compound(op) => {
                    let new = ops::binary(op, slot, &value)?;
                    *slot = new.clone();
                    Ok(new)
                }
                PlaceOp::Push => builtins::call_mut_method(slot, "push", &[value]),
                PlaceOp::Pop => builtins::call_mut_method(slot, "pop", &[]),
            }
        };
        match place.root {
            PlaceRoot::Reg(r) => apply(&mut self.stack[base + r as usize]),
            PlaceRoot::Cell(c) => {
                let cell = self.cells[cell_base + c as usize].clone();
                let mut slot = cell.borrow_mut();
                apply(&mut slot)
            }
            PlaceRoot::Upval(u) => {
                let cell = closure.captures[u as usize].clone();
                let mut slot = cell.borrow_mut();
                apply(&mut slot)
            }
            PlaceRoot::Global(g) => match self.globals.get_mut(g) {
                Some(slot) => apply(slot),
                None => Err(ErrorKind::UndefinedVariable(place.name.to_string())),
            },
        }
    }
}
