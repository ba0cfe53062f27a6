//! THE opcode enum, and its disassembler right beside it.
//!
//! Register-based, like Lua's: operands name registers of the current frame (`r0` ..),
//! so `a = b + c` is one instruction, not four stack pushes and pops. Parameters are the
//! first registers, then the function's locals, then temporaries. A call takes the callee
//! in register `base` and the arguments in `base+1 ..`, and leaves the result in `base`;
//! the callee's frame starts at `base+1`, so its parameters are already in place.
//!
//! Every loop has an id; its one back edge (`BackEdge`) counts iterations, polls the
//! interrupt flag, and is where on-stack replacement will enter compiled code.

use std::fmt::Write as _;

use crate::bytecode::proto::{Const, Proto};

pub type Reg = u16;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    LoadNil {
        dst: Reg,
    },
    LoadBool {
        dst: Reg,
        value: bool,
    },
    LoadInt {
        dst: Reg,
        value: i32,
    },
    /// A constant from the pool: a float, a large int, a string.
    LoadConst {
        dst: Reg,
        k: u16,
    },
    Move {
        dst: Reg,
        src: Reg,
    },

    GetGlobal {
        dst: Reg,
        global: u32,
    },
    /// Defines or assigns a global.
    SetGlobal {
        global: u32,
        src: Reg,
    },
    GetUpval {
        dst: Reg,
        upval: u16,
    },
    SetUpval {
        upval: u16,
        src: Reg,
    },
    GetCell {
        dst: Reg,
        cell: u16,
    },
    SetCell {
        cell: u16,
        src: Reg,
    },
    /// A fresh cell holding `src`: a new binding of a captured variable.
    NewCell {
        cell: u16,
        src: Reg,
    },
    /// Creates a closure of nested function `func`, capturing per its capture list.
    Closure {
        dst: Reg,
        func: u16,
    },

    NewArray {
        dst: Reg,
        first: Reg,
        count: u16,
    },
    NewRange {
        dst: Reg,
        start: Reg,
        end: Reg,
        inclusive: bool,
    },
    /// An f-string: the holes are in `first ..`, the literal pieces in template `template`.
    FString {
        dst: Reg,
        first: Reg,
        template: u16,
    },

    Add {
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    Sub {
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    Mul {
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    Div {
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    Mod {
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    Pow {
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    BitAnd {
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    BitOr {
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    BitXor {
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    Shl {
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    Shr {
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    Eq {
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    Ne {
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    Lt {
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    Le {
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    Gt {
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    Ge {
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    /// `a + imm` with a small int immediate (`i + 1`).
    AddI {
        dst: Reg,
        a: Reg,
        imm: i16,
    },
    SubI {
        dst: Reg,
        a: Reg,
        imm: i16,
    },
    MulI {
        dst: Reg,
        a: Reg,
        imm: i16,
    },
    ModI {
        dst: Reg,
        a: Reg,
        imm: i16,
    },
    Neg {
        dst: Reg,
        a: Reg,
    },
    Not {
        dst: Reg,
        a: Reg,
    },
    BitNot {
        dst: Reg,
        a: Reg,
    },

    Jump {
        target: u32,
    },
    JumpIfFalse {
        cond: Reg,
        target: u32,
    },
    JumpIfTrue {
        cond: Reg,
        target: u32,
    },
    /// Fused compare and branch: jump to `target` unless `a < b` (resp. `<=`, `==`, ...).
    /// `if a < b {` and `while a < b {` are one instruction.
    JumpIfNotLt {
        a: Reg,
        b: Reg,
        target: u32,
    },
    JumpIfNotLe {
        a: Reg,
        b: Reg,
        target: u32,
    },
    JumpIfNotGt {
        a: Reg,
        b: Reg,
        target: u32,
    },
    JumpIfNotGe {
        a: Reg,
        b: Reg,
        target: u32,
    },
    JumpIfNotEq {
        a: Reg,
        b: Reg,
        target: u32,
    },
    JumpIfNotNe {
        a: Reg,
        b: Reg,
        target: u32,
    },
    /// The same against a small int immediate (`if n < 2 {`).
    JumpIfNotLtI {
        a: Reg,
        imm: i16,
        target: u32,
    },
    JumpIfNotLeI {
        a: Reg,
        imm: i16,
        target: u32,
    },
    JumpIfNotGtI {
        a: Reg,
        imm: i16,
        target: u32,
    },
    JumpIfNotGeI {
        a: Reg,
        imm: i16,
        target: u32,
    },
    JumpIfNotEqI {
        a: Reg,
        imm: i16,
        target: u32,
    },
    JumpIfNotNeI {
        a: Reg,
        imm: i16,
        target: u32,
    },

    /// Counts an entry into loop `id`.
    LoopEnter {
        id: u16,
    },
    /// Where loop `id` is left (normally or by `break`): closes its timing when profiling.
    LoopExit {
        id: u16,
    },
    /// The loop's back edge: counts an iteration, polls the interrupt flag, jumps back.
    BackEdge {
        id: u16,
        target: u32,
    },
    /// Head of `for v in a..b`: `base` holds the next value, `base+1` the exclusive end.
    /// Jumps to `exit` when done, else puts the value in `var` and advances.
    ForRangeNext {
        base: Reg,
        var: Reg,
        exit: u32,
    },
    /// Checks a literal range's bounds (ints) before the loop; `inclusive` adds one to the end.
    ForRangePrep {
        base: Reg,
        inclusive: bool,
    },
    /// Head of `for v in xs` over an array or range value in `base` (index in `base+1`).
    ForIterNext {
        base: Reg,
        var: Reg,
        exit: u32,
    },
    ForIterPrep {
        base: Reg,
    },

    /// Calls `base` with `argc` arguments in `base+1 ..`; the result goes to `base`.
    Call {
        base: Reg,
        argc: u8,
    },
    /// Calls the function in a global directly (`fib(n - 1)`): no register load of the
    /// callee. Arguments in `base+1 ..`, result to `base`.
    CallGlobal {
        base: Reg,
        argc: u8,
        global: u32,
    },
    Return {
        src: Reg,
    },
    /// When argument `param` was passed, jump over its default value's code.
    ArgGiven {
        param: u16,
        target: u32,
    },

    GetIndex {
        dst: Reg,
        base: Reg,
        index: Reg,
    },
    /// `base[index] = src` on the array in register `base`, in place.
    SetIndex {
        base: Reg,
        index: Reg,
        src: Reg,
    },
    /// Updates a place (a variable followed by indices in `first ..`) in place; the place's
    /// root, depth and operation are in `proto.places[place]`. The result goes to `dst`.
    PlaceUpdate {
        dst: Reg,
        place: u16,
        first: Reg,
        src: Reg,
    },
    /// `recv.method(args)`: receiver in `base`, arguments after it; result to `base`.
    CallMethod {
        base: Reg,
        argc: u8,
        method: u16,
    },
    /// Raises a fixed error (a `break` outside a loop).
    Fail {
        message: u16,
    },
}

impl Op {
    pub fn name(&self) -> &'static str {
        use Op::*;
        match self {
            LoadNil { .. } => "LOADNIL",
            LoadBool { .. } => "LOADBOOL",
            LoadInt { .. } => "LOADINT",
            LoadConst { .. } => "LOADK",
            Move { .. } => "MOVE",
            GetGlobal { .. } => "GETGLOBAL",
            SetGlobal { .. } => "SETGLOBAL",
            GetUpval { .. } => "GETUPVAL",
            SetUpval { .. } => "SETUPVAL",
            GetCell { .. } => "GETCELL",
            SetCell { .. } => "SETCELL",
            NewCell { .. } => "NEWCELL",
            Closure { .. } => "CLOSURE",
            NewArray { .. } => "NEWARRAY",
            NewRange { .. } => "NEWRANGE",
            FString { .. } => "FSTRING",
            Add { .. } => "ADD",
            Sub { .. } => "SUB",
            Mul { .. } => "MUL",
            Div { .. } => "DIV",
            Mod { .. } => "MOD",
            Pow { .. } => "POW",
            BitAnd { .. } => "BAND",
            BitOr { .. } => "BOR",
            BitXor { .. } => "BXOR",
            Shl { .. } => "SHL",
            Shr { .. } => "SHR",
            Eq { .. } => "EQ",
            Ne { .. } => "NE",
            Lt { .. } => "LT",
            Le { .. } => "LE",
            Gt { .. } => "GT",
            Ge { .. } => "GE",
            AddI { .. } => "ADDI",
            SubI { .. } => "SUBI",
            MulI { .. } => "MULI",
            ModI { .. } => "MODI",
            Neg { .. } => "NEG",
            Not { .. } => "NOT",
            BitNot { .. } => "BNOT",
            Jump { .. } => "JMP",
            JumpIfFalse { .. } => "JMPIFNOT",
            JumpIfTrue { .. } => "JMPIF",
            JumpIfNotLt { .. } => "JMPNLT",
            JumpIfNotLe { .. } => "JMPNLE",
            JumpIfNotGt { .. } => "JMPNGT",
            JumpIfNotGe { .. } => "JMPNGE",
            JumpIfNotEq { .. } => "JMPNEQ",
            JumpIfNotNe { .. } => "JMPNNE",
            JumpIfNotLtI { .. } => "JMPNLTI",
            JumpIfNotLeI { .. } => "JMPNLEI",
            JumpIfNotGtI { .. } => "JMPNGTI",
            JumpIfNotGeI { .. } => "JMPNGEI",
            JumpIfNotEqI { .. } => "JMPNEQI",
            JumpIfNotNeI { .. } => "JMPNNEI",
            LoopEnter { .. } => "LOOPENTER",
            LoopExit { .. } => "LOOPEXIT",
            BackEdge { .. } => "BACKEDGE",
            ForRangeNext { .. } => "FORRANGE",
            ForRangePrep { .. } => "FORRANGEPREP",
            ForIterNext { .. } => "FORITER",
            ForIterPrep { .. } => "FORITERPREP",
            Call { .. } => "CALL",
            CallGlobal { .. } => "CALLGLOBAL",
            Return { .. } => "RETURN",
            ArgGiven { .. } => "ARGGIVEN",
            GetIndex { .. } => "GETINDEX",
            SetIndex { .. } => "SETINDEX",
            PlaceUpdate { .. } => "PLACE",
            CallMethod { .. } => "CALLMETHOD",
            Fail { .. } => "FAIL",
        }
    }

    /// The jump target of a branching instruction (where the JIT will split blocks).
    pub fn target(&self) -> Option<u32> {
        let mut op = *self;
        op.target_field().map(|t| *t)
    }

    /// Whether this is a two-way branch on a condition (`JMPIFNOT`, `JMPIF`, the fused
    /// compare-and-branches): one that either jumps or falls through.
    pub fn is_conditional_jump(&self) -> bool {
        use Op::*;
        matches!(
            self,
            JumpIfFalse { .. }
                | JumpIfTrue { .. }
                | JumpIfNotLt { .. }
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
                | JumpIfNotNeI { .. }
        )
    }

    /// Points a branching instruction at `to` (used when patching forward jumps).
    pub fn set_target(&mut self, to: u32) {
        let name = self.name();
        match self.target_field() {
            Some(t) => *t = to,
            None => unreachable!("{name} has no jump target"),
        }
    }

    /// The one list of branching instructions and where their target is.
    fn target_field(&mut self) -> Option<&mut u32> {
        use Op::*;
        match self {
            Jump { target }
            | JumpIfFalse { target, .. }
            | JumpIfTrue { target, .. }
            | JumpIfNotLt { target, .. }
            | JumpIfNotLe { target, .. }
            | JumpIfNotGt { target, .. }
            | JumpIfNotGe { target, .. }
            | JumpIfNotEq { target, .. }
            | JumpIfNotNe { target, .. }
            | JumpIfNotLtI { target, .. }
            | JumpIfNotLeI { target, .. }
            | JumpIfNotGtI { target, .. }
            | JumpIfNotGeI { target, .. }
            | JumpIfNotEqI { target, .. }
            | JumpIfNotNeI { target, .. }
            | BackEdge { target, .. }
            | ArgGiven { target, .. } => Some(target),
            ForRangeNext { exit, .. } | ForIterNext { exit, .. } => Some(exit),
            _ => None,
        }
    }

    /// Operands in assembly form, constants and names shown by value.
    pub fn operands(&self, proto: &Proto, globals: &dyn Fn(u32) -> String) -> String {
        use Op::*;
        let r = |x: &Reg| format!("r{x}");
        let k = |x: &u16| match proto.consts.get(*x as usize) {
            Some(c) => c.to_string(),
            None => format!("k{x}?"),
        };
        match self {
            LoadNil { dst } => r(dst),
            LoadBool { dst, value } => format!("{}, {value}", r(dst)),
            LoadInt { dst, value } => format!("{}, {value}", r(dst)),
            LoadConst { dst, k: c } => format!("{}, {}", r(dst), k(c)),
            Move { dst, src } => format!("{}, {}", r(dst), r(src)),
            GetGlobal { dst, global } => format!("{}, {}", r(dst), globals(*global)),
            SetGlobal { global, src } => format!("{}, {}", globals(*global), r(src)),
            GetUpval { dst, upval } => format!("{}, upval{upval}", r(dst)),
            SetUpval { upval, src } => format!("upval{upval}, {}", r(src)),
            GetCell { dst, cell } => format!("{}, cell{cell}", r(dst)),
            SetCell { cell, src } | NewCell { cell, src } => format!("cell{cell}, {}", r(src)),
            Closure { dst, func } => {
                let name = proto
                    .children
                    .get(*func as usize)
                    .map(|c| c.name.to_string())
                    .unwrap_or_default();
                format!("{}, <function {name}>", r(dst))
            }
            NewArray { dst, first, count } => {
                format!("{}, [r{first} .. {count} items]", r(dst))
            }
            NewRange {
                dst,
                start,
                end,
                inclusive,
            } => format!(
                "{}, {}{}{}",
                r(dst),
                r(start),
                if *inclusive { "..=" } else { ".." },
                r(end)
            ),
            FString {
                dst,
                first,
                template,
            } => format!("{}, holes from r{first}, template {template}", r(dst)),
            Add { dst, a, b }
            | Sub { dst, a, b }
            | Mul { dst, a, b }
            | Div { dst, a, b }
            | Mod { dst, a, b }
            | Pow { dst, a, b }
            | BitAnd { dst, a, b }
            | BitOr { dst, a, b }
            | BitXor { dst, a, b }
            | Shl { dst, a, b }
            | Shr { dst, a, b }
            | Eq { dst, a, b }
            | Ne { dst, a, b }
            | Lt { dst, a, b }
            | Le { dst, a, b }
            | Gt { dst, a, b }
            | Ge { dst, a, b } => format!("{}, {}, {}", r(dst), r(a), r(b)),
            AddI { dst, a, imm }
            | SubI { dst, a, imm }
            | MulI { dst, a, imm }
            | ModI { dst, a, imm } => {
                format!("{}, {}, {imm}", r(dst), r(a))
            }
            Neg { dst, a } | Not { dst, a } | BitNot { dst, a } => format!("{}, {}", r(dst), r(a)),
            Jump { target } => format!("-> {target}"),
            JumpIfFalse { cond, target } | JumpIfTrue { cond, target } => {
                format!("{} -> {target}", r(cond))
            }
            JumpIfNotLt { a, b, target }
            | JumpIfNotLe { a, b, target }
            | JumpIfNotGt { a, b, target }
            | JumpIfNotGe { a, b, target }
            | JumpIfNotEq { a, b, target }
            | JumpIfNotNe { a, b, target } => format!("{}, {} -> {target}", r(a), r(b)),
            JumpIfNotLtI { a, imm, target }
            | JumpIfNotLeI { a, imm, target }
            | JumpIfNotGtI { a, imm, target }
            | JumpIfNotGeI { a, imm, target }
            | JumpIfNotEqI { a, imm, target }
            | JumpIfNotNeI { a, imm, target } => format!("{}, {imm} -> {target}", r(a)),
            LoopEnter { id } | LoopExit { id } => format!("loop{id}"),
            BackEdge { id, target } => format!("loop{id} -> {target}"),
            ForRangeNext { base, var, exit } | ForIterNext { base, var, exit } => {
                format!("{} := next of r{base}, exit -> {exit}", r(var))
            }
            ForRangePrep { base, inclusive } => {
                format!(
                    "r{base}{}r{}",
                    if *inclusive { "..=" } else { ".." },
                    base + 1
                )
            }
            ForIterPrep { base } => format!("iterate r{base}"),
            Call { base, argc } => format!(
                "{}, {argc} arg{}",
                r(base),
                if *argc == 1 { "" } else { "s" }
            ),
            CallGlobal { base, argc, global } => format!(
                "{}, {}, {argc} arg{}",
                r(base),
                globals(*global),
                if *argc == 1 { "" } else { "s" }
            ),
            Return { src } => r(src),
            ArgGiven { param, target } => format!("param {param} -> {target}"),
            GetIndex { dst, base, index } => format!("{}, {}[{}]", r(dst), r(base), r(index)),
            SetIndex { base, index, src } => format!("{}[{}], {}", r(base), r(index), r(src)),
            PlaceUpdate {
                dst,
                place,
                first,
                src,
            } => {
                let p = &proto.places[*place as usize];
                format!(
                    "{}, {} {}, indices from r{first}",
                    r(dst),
                    p.describe(globals),
                    r(src)
                )
            }
            CallMethod { base, argc, method } => format!("{}.{}({argc} args)", r(base), k(method)),
            Fail { message } => k(message),
        }
    }
}

/// Disassembles a prototype and, after it, every function nested in it.
pub fn disassemble(proto: &Proto, globals: &dyn Fn(u32) -> String, out: &mut String) {
    let (min, max) = (proto.min_args, proto.max_args);
    let _ = writeln!(
        out,
        "function {} ({} param{}, {} registers, {} cells, {} upvalues, {} loops){}",
        proto.name,
        if min == max {
            max.to_string()
        } else {
            format!("{min}-{max}")
        },
        if max == 1 { "" } else { "s" },
        proto.num_regs,
        proto.num_cells,
        proto.captures.len(),
        proto.num_loops,
        if proto.line > 0 {
            format!(", line {}", proto.line)
        } else {
            String::new()
        }
    );
    let _ = writeln!(out, "  {:>4}  {:>4}  {:<12} operands", "pc", "line", "op");
    let mut last_line = 0;
    for (pc, op) in proto.code.iter().enumerate() {
        let line = proto.lines[pc];
        let line_text = if line != last_line {
            line.to_string()
        } else {
            String::new()
        };
        last_line = line;
        let _ = writeln!(
            out,
            "  {:>4}  {:>4}  {:<12} {}",
            pc,
            line_text,
            op.name(),
            op.operands(proto, globals)
        );
    }
    if !proto.consts.is_empty() {
        let list: Vec<String> = proto
            .consts
            .iter()
            .enumerate()
            .map(|(i, c)| format!("k{i}={c}"))
            .collect();
        let _ = writeln!(out, "  constants: {}", list.join(", "));
    }
    for child in &proto.children {
        out.push('\n');
        disassemble(child, globals, out);
    }
}

impl std::fmt::Display for Const {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Const::Int(i) => write!(f, "{i}"),
            Const::Float(x) => f.write_str(&crate::value::float_to_string(*x)),
            Const::Str(s) => write!(f, "{s:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_targets_read_and_patch() {
        let mut op = Op::JumpIfNotLtI {
            a: 0,
            imm: 2,
            target: 0,
        };
        op.set_target(7);
        assert_eq!(op.target(), Some(7));
        assert_eq!(Op::Return { src: 0 }.target(), None);
    }

    #[test]
    fn an_instruction_is_small() {
        assert!(std::mem::size_of::<Op>() <= 12);
    }
}
