//! Places in the VM: a root (register, cell, upvalue or global) followed by indices held in
//! consecutive registers, updated in place with copy-on-write at each level.

use std::rc::Rc;

use crate::builtins;
use crate::bytecode::op::Reg;
use crate::bytecode::proto::{Place, PlaceOp, PlaceRoot};
use crate::error::ErrorKind;
use crate::function::Closure;
use crate::globals::Globals;
use crate::ops;
use crate::value::Upvalue;
use crate::value::Value;

/// Applies `place.op` to the place; returns the instruction's result (the new value, or
/// what `push`/`pop` return).
#[allow(clippy::too_many_arguments)]
pub(super) fn update(
    regs: &mut [Value],
    cells: &mut [Upvalue],
    globals: &mut Globals,
    place: &Place,
    cell_base: usize,
    closure: &Rc<Closure>,
    first: Reg,
    src: Reg,
) -> Result<Value, ErrorKind> {
    let start = first as usize;
    let indices: Vec<Value> = regs[start..start + place.depth as usize].to_vec();
    let value = regs[src as usize].clone();
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
        PlaceRoot::Reg(r) => apply(&mut regs[r as usize]),
        PlaceRoot::Cell(c) => {
            let cell = cells[cell_base + c as usize].clone();
            let mut slot = cell.borrow_mut();
            apply(&mut slot)
        }
        PlaceRoot::Upval(u) => {
            let cell = closure.captures[u as usize].clone();
            let mut slot = cell.borrow_mut();
            apply(&mut slot)
        }
        PlaceRoot::Global(g) => match globals.get_mut(g) {
            Some(slot) => apply(slot),
            None => Err(ErrorKind::UndefinedVariable(place.name.to_string())),
        },
    }
}
