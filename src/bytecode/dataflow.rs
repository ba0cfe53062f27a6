//! What each instruction reads and writes, and where control goes after it: the facts the
//! JIT's liveness and type analyses are built on. Kept beside the opcode list so that a
//! new opcode is described here too (the matches are exhaustive).

use crate::bytecode::op::{Op, Reg};
use crate::bytecode::proto::{PlaceRoot, Proto, TemplatePart};

/// Registers an instruction reads, in no particular order.
pub fn uses(op: &Op, proto: &Proto) -> Vec<Reg> {
    use Op::*;
    let span = |first: Reg, n: usize| (first..first + n as Reg).collect::<Vec<_>>();
    match *op {
        LoadNil { .. } | LoadBool { .. } | LoadInt { .. } | LoadConst { .. } => vec![],
        GetGlobal { .. } | GetUpval { .. } | GetCell { .. } | Closure { .. } => vec![],
        Move { src, .. } => vec![src],
        SetGlobal { src, .. } | SetUpval { src, .. } | SetCell { src, .. } => vec![src],
        NewCell { src, .. } => vec![src],
        NewArray { first, count, .. } => span(first, count as usize),
        NewRange { start, end, .. } => vec![start, end],
        FString {
            first, template, ..
        } => {
            let holes = proto.templates[template as usize]
                .iter()
                .filter(|p| matches!(p, TemplatePart::Hole(_)))
                .count();
            span(first, holes)
        }
        Add { a, b, .. }
        | Sub { a, b, .. }
        | Mul { a, b, .. }
        | Div { a, b, .. }
        | Mod { a, b, .. }
        | Pow { a, b, .. }
        | BitAnd { a, b, .. }
        | BitOr { a, b, .. }
        | BitXor { a, b, .. }
        | Shl { a, b, .. }
        | Shr { a, b, .. }
        | Eq { a, b, .. }
        | Ne { a, b, .. }
        | Lt { a, b, .. }
        | Le { a, b, .. }
        | Gt { a, b, .. }
        | Ge { a, b, .. } => vec![a, b],
        AddI { a, .. } | SubI { a, .. } | MulI { a, .. } | ModI { a, .. } => vec![a],
        Neg { a, .. } | Not { a, .. } | BitNot { a, .. } => vec![a],
        Jump { .. } | LoopEnter { .. } | LoopExit { .. } | BackEdge { .. } => vec![],
        ArgGiven { .. } | Fail { .. } => vec![],
        JumpIfFalse { cond, .. } | JumpIfTrue { cond, .. } => vec![cond],
        JumpIfNotLt { a, b, .. }
        | JumpIfNotLe { a, b, .. }
        | JumpIfNotGt { a, b, .. }
        | JumpIfNotGe { a, b, .. }
        | JumpIfNotEq { a, b, .. }
        | JumpIfNotNe { a, b, .. } => vec![a, b],
        JumpIfNotLtI { a, .. }
        | JumpIfNotLeI { a, .. }
        | JumpIfNotGtI { a, .. }
        | JumpIfNotGeI { a, .. }
        | JumpIfNotEqI { a, .. }
        | JumpIfNotNeI { a, .. } => vec![a],
        ForRangePrep { base, .. } | ForRangeNext { base, .. } => vec![base, base + 1],
        ForIterPrep { base } => vec![base],
        ForIterNext { base, .. } => vec![base, base + 1, base + 2],
        Call { base, argc } | CallMethod { base, argc, .. } => span(base, argc as usize + 1),
        CallGlobal { base, argc, .. } => span(base + 1, argc as usize),
        Return { src } => vec![src],
        GetIndex { base, index, .. } => vec![base, index],
        SetIndex { base, index, src } => vec![base, index, src],
        PlaceUpdate {
            place, first, src, ..
        } => {
            let p = &proto.places[place as usize];
            let mut regs = span(first, p.depth as usize);
            regs.push(src);
            if let PlaceRoot::Reg(r) = p.root {
                regs.push(r);
            }
            regs
        }
    }
}

/// Registers an instruction writes.
pub fn defs(op: &Op, proto: &Proto) -> Vec<Reg> {
    use Op::*;
    match *op {
        LoadNil { dst }
        | LoadBool { dst, .. }
        | LoadInt { dst, .. }
        | LoadConst { dst, .. }
        | Move { dst, .. }
        | GetGlobal { dst, .. }
        | GetUpval { dst, .. }
        | GetCell { dst, .. }
        | Closure { dst, .. }
        | NewArray { dst, .. }
        | NewRange { dst, .. }
        | FString { dst, .. }
        | Add { dst, .. }
        | Sub { dst, .. }
        | Mul { dst, .. }
        | Div { dst, .. }
        | Mod { dst, .. }
        | Pow { dst, .. }
        | BitAnd { dst, .. }
        | BitOr { dst, .. }
        | BitXor { dst, .. }
        | Shl { dst, .. }
        | Shr { dst, .. }
        | Eq { dst, .. }
        | Ne { dst, .. }
        | Lt { dst, .. }
        | Le { dst, .. }
        | Gt { dst, .. }
        | Ge { dst, .. }
        | AddI { dst, .. }
        | SubI { dst, .. }
        | MulI { dst, .. }
        | ModI { dst, .. }
        | Neg { dst, .. }
        | Not { dst, .. }
        | BitNot { dst, .. }
        | GetIndex { dst, .. } => vec![dst],
        SetGlobal { .. } | SetUpval { .. } | SetCell { .. } | NewCell { .. } => vec![],
        Jump { .. } | JumpIfFalse { .. } | JumpIfTrue { .. } => vec![],
        JumpIfNotLt { .. }
        | JumpIfNotLe { .. }
        | JumpIfNotGt { .. }
        | JumpIfNotGe { .. }
        | JumpIfNotEq { .. }
        | JumpIfNotNe { .. }
        | JumpIfNotLtI { .. }
        | JumpIfNotLeI { .. }
        | JumpIfNotGtI { .. }
        | JumpIfNotGeI { .. }
        | JumpIfNotEqI { .. }
        | JumpIfNotNeI { .. } => vec![],
        LoopEnter { .. } | LoopExit { .. } | BackEdge { .. } | ArgGiven { .. } => vec![],
        Return { .. } | Fail { .. } | SetIndex { .. } => vec![],
        ForRangePrep { base, .. } => vec![base + 1],
        ForRangeNext { base, var, .. } => vec![var, base],
        ForIterPrep { base } => vec![base + 1, base + 2],
        ForIterNext { base, var, .. } => vec![var, base + 1],
        Call { base, .. } | CallGlobal { base, .. } | CallMethod { base, .. } => vec![base],
        PlaceUpdate { dst, place, .. } => {
            let mut regs = vec![dst];
            if let PlaceRoot::Reg(r) = proto.places[place as usize].root {
                regs.push(r);
            }
            regs
        }
    }
}

/// Where control may go after the instruction at `pc`. `argc` (the number of arguments
/// passed, known to code specialized for a signature) decides `ArgGiven` statically.
pub fn successors(op: &Op, pc: usize, argc: usize) -> Vec<usize> {
    use Op::*;
    match *op {
        Return { .. } | Fail { .. } => vec![],
        Jump { target } | BackEdge { target, .. } => vec![target as usize],
        ArgGiven { param, target } => {
            if argc > param as usize {
                vec![target as usize]
            } else {
                vec![pc + 1]
            }
        }
        _ => match op.target() {
            Some(t) => vec![pc + 1, t as usize],
            None => vec![pc + 1],
        },
    }
}
