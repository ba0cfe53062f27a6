//! Arrays in place: `a[i]`, `a[i] = v` and `a.push(v)` on scalar elements read and write
//! the array's buffer directly (its layout is measured at startup, `runtime::ArrayLayout`),
//! with the helpers as the cold fallback.
//!
//! **Hoisting out of loops.** An access checks that the register holds an array, that the
//! array is unshared (for a write), and loads its length and buffer: five loads and three
//! branches before the element. When a loop does nothing to an array register but index
//! it (no instruction of the loop, nested loops included, writes the register or reads it
//! otherwise), none of that can change while the loop runs:
//! - the register keeps the same `Rc`, and nothing else can reach the frame's register
//!   (captured variables live in cells, callees in their own windows);
//! - its length and buffer change only through a push, pop or assignment of the register,
//!   which would read or write it;
//! - its counts change only when the value is copied (a read of the register) or another
//!   holder drops it: if the entry found the array unshared there is no other holder, and
//!   writing in place stays what `Rc::make_mut` would do for the whole loop. A loop that
//!   only reads needs no count: another holder's write copies its own array first.
//! - the helpers on the cold path (a heap element, an index out of bounds) write in place
//!   too, or raise an error that leaves the code.
//!
//! So the loop's entry (`LOOPENTER`, or the OSR entry for a loop it jumps into) reads the
//! buffer and length once into variables, and each access is a bounds check and the
//! element. If the register does not hold a suitable array at the entry, the length is 0:
//! every access misses to its helper, which does the general thing.

use std::collections::HashMap;

use super::*;
use crate::bytecode::dataflow::defs;
use crate::bytecode::proto::{PlaceOp, PlaceRoot, Proto};
use crate::jit::runtime::ArrayLayout;

/// An array register a loop's entry reads once.
pub(super) struct HoistedArray {
    /// The loop's `LOOPENTER` pc.
    enter: usize,
    reg: Reg,
    /// The loop writes elements or pushes: its entry also requires the array unshared.
    writes: bool,
    /// An OSR entry jumps into the loop, and reads the array too.
    midway: bool,
    /// What the entry read: the buffer and length, or, in a loop that pushes (which moves
    /// both), the array's `Rc` pointer.
    read: Hoisted,
    /// An access used it (for the counts `:ir` shows).
    used: bool,
}

#[derive(Clone, Copy)]
enum Hoisted {
    BufferAndLength { buffer: Variable, len: Variable },
    Pointer(Variable),
}

/// The arrays one activation's loops read at their entries.
#[derive(Default)]
pub(super) struct ArrayHoisting {
    arrays: Vec<HoistedArray>,
    /// GETINDEX / SETINDEX / push pc -> index in `arrays`.
    at: HashMap<usize, usize>,
}

/// An array access that compiled code does in place: (array register, whether it writes,
/// whether it pushes), given the types before it.
fn in_place_access(proto: &Proto, op: &Op, state: &[Ty]) -> Option<(Reg, bool, bool)> {
    let t = |r: Reg| state[r as usize];
    let (base, writes, pushes) = match *op {
        Op::GetIndex { base, index, .. } if t(index) == Ty::Int => (base, false, false),
        Op::SetIndex { base, index, src } if t(index) == Ty::Int && t(src).is_unboxed() => {
            (base, true, false)
        }
        Op::PlaceUpdate { place, src, .. } if t(src).is_unboxed() => {
            let p = &proto.places[place as usize];
            match p.root {
                PlaceRoot::Reg(root) if p.depth == 0 && p.op == PlaceOp::Push => (root, true, true),
                _ => return None,
            }
        }
        _ => return None,
    };
    (t(base) == Ty::Boxed).then_some((base, writes, pushes))
}

/// Whether loop `header..=back` does nothing to register `r` but index it and push to it.
fn only_accessed(proto: &Proto, header: usize, back: usize, r: Reg) -> bool {
    (header..=back).all(|pc| match proto.code[pc] {
        Op::GetIndex { dst, base, index } if base == r => dst != r && index != r,
        Op::SetIndex { base, index, src } if base == r => index != r && src != r,
        Op::PlaceUpdate {
            dst, place, src, ..
        } if proto.places[place as usize].root == PlaceRoot::Reg(r) => {
            let p = &proto.places[place as usize];
            p.depth == 0 && p.op == PlaceOp::Push && dst != r && src != r
        }
        ref op => !uses(op, proto).contains(&r) && !defs(op, proto).contains(&r),
    })
}

/// Where an access finds the array.
enum Source {
    /// The buffer and length its loop's entry read.
    Hoisted { len: ClValue, buffer: ClValue },
    /// The array's `Rc`: its loop's entry read it, or this access checked it.
    Rc(ClValue),
}

impl Translator<'_, '_> {
    /// Assigns each in-place array access to the outermost loop around it that does
    /// nothing else to its array. `loops` are (`LOOPENTER` pc, header, back edge pc),
    /// outermost first.
    pub(super) fn plan_array_hoisting(
        &mut self,
        loops: &[(usize, usize, usize)],
        osr_header: Option<usize>,
    ) {
        if self.settings.array.is_none() {
            return;
        }
        let proto = self.an.env.proto;
        for &(enter, header, back) in loops {
            for pc in header..=back {
                let Some(state) = self.an.types.states[pc].as_deref() else {
                    continue;
                };
                let Some((base, ..)) = in_place_access(proto, &proto.code[pc], state) else {
                    continue;
                };
                if self.arrays.at.contains_key(&pc) {
                    continue;
                }
                let known = self
                    .arrays
                    .arrays
                    .iter()
                    .position(|h| h.enter == enter && h.reg == base);
                let index = match known {
                    Some(index) => index,
                    None if only_accessed(proto, header, back, base) => {
                        // Every use of the register in the loop is an access (helpers'
                        // ones included): a push is the one that moves the buffer.
                        let pushes = (header..=back).any(|q| {
                            matches!(proto.code[q], Op::PlaceUpdate { .. })
                                && uses(&proto.code[q], proto).contains(&base)
                        });
                        let writes = pushes
                            || (header..=back).any(|q| {
                                matches!(proto.code[q], Op::SetIndex { base: b, .. } if b == base)
                            });
                        let read = if pushes {
                            Hoisted::Pointer(self.b.declare_var(I64))
                        } else {
                            Hoisted::BufferAndLength {
                                buffer: self.b.declare_var(I64),
                                len: self.b.declare_var(I64),
                            }
                        };
                        self.arrays.arrays.push(HoistedArray {
                            enter,
                            reg: base,
                            writes,
                            midway: osr_header.is_some_and(|h| (header..=back).contains(&h)),
                            read,
                            used: false,
                        });
                        self.arrays.arrays.len() - 1
                    }
                    None => continue,
                };
                self.arrays.at.insert(pc, index);
            }
        }
    }

    /// Reads the hoisted arrays `which` selects. When the register does not hold a
    /// suitable array, the length is 0, or the pointer is to `runtime::EMPTY_ARRAY`
    /// (length and capacity 0): every access then misses to its helper.
    pub(super) fn read_hoisted_arrays(&mut self, which: impl Fn(usize, bool) -> bool) {
        let Some(layout) = self.settings.array else {
            return;
        };
        let mine: Vec<(Reg, bool, Hoisted)> = self
            .arrays
            .arrays
            .iter()
            .filter(|h| which(h.enter, h.midway))
            .map(|h| (h.reg, h.writes, h.read))
            .collect();
        for (reg, writes, read) in mine {
            match read {
                Hoisted::BufferAndLength { buffer, len } => {
                    let zero = self.iconst(0);
                    self.b.def_var(buffer, zero);
                    self.b.def_var(len, zero);
                }
                Hoisted::Pointer(rc) => {
                    let empty = self.iconst(runtime::EMPTY_ARRAY.as_ptr() as i64);
                    self.b.def_var(rc, empty);
                }
            }
            let join = self.b.create_block();
            let rc = self.array_in(reg, join);
            if writes {
                self.unshared(&layout, rc, join);
            }
            match read {
                Hoisted::BufferAndLength { buffer, len } => {
                    let length = self.b.ins().load(I64, flags(), rc, layout.len);
                    let start = self.b.ins().load(I64, flags(), rc, layout.buffer);
                    self.b.def_var(len, length);
                    self.b.def_var(buffer, start);
                }
                Hoisted::Pointer(pointer) => self.b.def_var(pointer, rc),
            }
            self.b.ins().jump(join, &[]);
            self.b.switch_to_block(join);
        }
    }

    /// Where the access at `pc` finds `base`'s array: what its loop's entry read, or the
    /// register, checked here (branching to `miss` unless it holds an array, and, for a
    /// write, an unshared one).
    fn array_source(
        &mut self,
        layout: &ArrayLayout,
        pc: usize,
        base: Reg,
        write: bool,
        miss: Block,
    ) -> Source {
        let Some(&index) = self.arrays.at.get(&pc) else {
            let rc = self.array_in(base, miss);
            if write {
                self.unshared(layout, rc, miss);
            }
            return Source::Rc(rc);
        };
        let h = &mut self.arrays.arrays[index];
        self.hoisted_array_accesses += 1;
        if !h.used {
            h.used = true;
            self.hoisted_arrays += 1;
        }
        match h.read {
            Hoisted::BufferAndLength { buffer, len } => Source::Hoisted {
                len: self.b.use_var(len),
                buffer: self.b.use_var(buffer),
            },
            Hoisted::Pointer(rc) => Source::Rc(self.b.use_var(rc)),
        }
    }

    /// Branches to `miss` unless register `r` holds an array; returns the pointer to its
    /// `Rc` allocation (see `runtime::ArrayLayout`).
    fn array_in(&mut self, r: Reg, miss: Block) -> ClValue {
        let tag = self.load_tag(r);
        let is_array = self
            .b
            .ins()
            .icmp_imm_s(IntCC::Equal, tag, Type::Array.index() as i64);
        let next = self.b.create_block();
        self.b.ins().brif(is_array, next, &[], miss, &[]);
        self.b.switch_to_block(next);
        self.load_payload(r, I64)
    }

    /// Branches to `miss` unless both of the array's counts are 1: then a write in place
    /// is what `Rc::make_mut` would do.
    fn unshared(&mut self, layout: &ArrayLayout, rc: ClValue, miss: Block) {
        let strong = self.b.ins().load(I64, flags(), rc, layout.strong);
        let weak = self.b.ins().load(I64, flags(), rc, layout.weak);
        let strong = self.b.ins().bxor_imm_u(strong, 1);
        let weak = self.b.ins().bxor_imm_u(weak, 1);
        let other = self.b.ins().bor(strong, weak);
        let next = self.b.create_block();
        self.b.ins().brif(other, miss, &[], next, &[]);
        self.b.switch_to_block(next);
    }

    /// The address of element `i` of `base`'s array for the access at `pc` (a write needs
    /// the array unshared), branching to `miss` unless there is one and `0 <= i < len`.
    fn element(
        &mut self,
        layout: &ArrayLayout,
        pc: usize,
        base: Reg,
        i: ClValue,
        write: bool,
        miss: Block,
    ) -> ClValue {
        let source = self.array_source(layout, pc, base, write, miss);
        let len = match source {
            Source::Hoisted { len, .. } => len,
            Source::Rc(rc) => self.b.ins().load(I64, flags(), rc, layout.len),
        };
        let inside = self.b.ins().icmp(IntCC::UnsignedLessThan, i, len);
        let next = self.b.create_block();
        self.b.ins().brif(inside, next, &[], miss, &[]);
        self.b.switch_to_block(next);
        let buffer = match source {
            Source::Hoisted { buffer, .. } => buffer,
            Source::Rc(rc) => self.b.ins().load(I64, flags(), rc, layout.buffer),
        };
        let offset = self.b.ins().ishl_imm_u(i, 4);
        self.b.ins().iadd(buffer, offset)
    }

    /// Branches to `miss` if the value at `address` is a heap value (reading it would
    /// need a count, overwriting it a release).
    fn scalar_at(&mut self, address: ClValue, miss: Block) -> ClValue {
        let tag = self.b.ins().load(I64, flags(), address, 0);
        // Heap tags are 4..=7 (string, array, range, function).
        let shifted = self.b.ins().iadd_imm_s(tag, -4);
        let heap = self.b.ins().icmp_imm_u(IntCC::UnsignedLessThan, shifted, 4);
        let next = self.b.create_block();
        self.b.ins().brif(heap, miss, &[], next, &[]);
        self.b.switch_to_block(next);
        tag
    }

    /// A cold block for the in-place paths' misses: what follows it (the helper) runs there.
    fn miss_block(&mut self) -> Block {
        let miss = self.b.create_block();
        self.b.set_cold_block(miss);
        miss
    }

    /// `dst = base[i]` in place for a scalar element; continues at `done`, or in the miss
    /// block (current on return) for everything else.
    pub(super) fn get_in_place(
        &mut self,
        layout: &ArrayLayout,
        pc: usize,
        (dst, base, i): (Reg, Reg, ClValue),
        done: Block,
    ) {
        let miss = self.miss_block();
        let address = self.element(layout, pc, base, i, false, miss);
        let tag = self.scalar_at(address, miss);
        let payload = self.b.ins().load(I64, flags(), address, 8);
        self.store_boxed(dst, tag, payload);
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(miss);
    }

    /// `base[i] = value` in place over a scalar element of an unshared array.
    pub(super) fn set_in_place(
        &mut self,
        layout: &ArrayLayout,
        pc: usize,
        (base, i): (Reg, ClValue),
        (tag, payload): (ClValue, ClValue),
        done: Block,
    ) {
        let miss = self.miss_block();
        let address = self.element(layout, pc, base, i, true, miss);
        self.scalar_at(address, miss);
        self.b.ins().store(flags(), tag, address, 0);
        self.b.ins().store(flags(), payload, address, 8);
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(miss);
    }

    /// `root.push(value)` in place on an unshared array with room left; `dst` becomes nil.
    pub(super) fn push_in_place(
        &mut self,
        layout: &ArrayLayout,
        pc: usize,
        (dst, root): (Reg, Reg),
        (tag, payload): (ClValue, ClValue),
        done: Block,
    ) {
        let miss = self.miss_block();
        let Source::Rc(rc) = self.array_source(layout, pc, root, true, miss) else {
            unreachable!("a loop that pushes hoists the array's pointer")
        };
        let len = self.b.ins().load(I64, flags(), rc, layout.len);
        let cap = self.b.ins().load(I64, flags(), rc, layout.cap);
        let room = self.b.ins().icmp(IntCC::UnsignedLessThan, len, cap);
        let next = self.b.create_block();
        self.b.ins().brif(room, next, &[], miss, &[]);
        self.b.switch_to_block(next);
        let buffer = self.b.ins().load(I64, flags(), rc, layout.buffer);
        let offset = self.b.ins().ishl_imm_u(len, 4);
        let address = self.b.ins().iadd(buffer, offset);
        self.b.ins().store(flags(), tag, address, 0);
        self.b.ins().store(flags(), payload, address, 8);
        let longer = self.b.ins().iadd_imm_s(len, 1);
        self.b.ins().store(flags(), longer, rc, layout.len);
        // The result (nil) is usually a temporary nothing reads: then the register keeps
        // its old value, which no one will read either.
        if self.an.live.is_live(pc + 1, dst as usize) {
            let nil = self.iconst(TAG_NIL);
            let zero = self.iconst(0);
            self.store_boxed(dst, nil, zero);
        }
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(miss);
    }
}
