//! Profiles: the always-on counters the VM keeps for the JIT and the tiering policy, the
//! optional timing, and the reports built from them (`report.rs`).
//!
//! Counters live inside each function's `Proto` (interior mutability, no lookups), so
//! their memory is bounded by the size of the program, whatever it does at run time:
//! a fixed table of 4 argument signatures plus an "other" count per function, two counts
//! per loop, and one feedback word per instruction.

pub mod report;
pub mod timing;

use std::cell::Cell;
use std::time::Duration;

use crate::value::{Type, Value};

/// How many distinct argument signatures a function remembers; the rest count as "other".
pub const SIGNATURE_SLOTS: usize = 4;
/// Arguments that take part in a signature (4 bits each, plus the count).
pub const SIGNATURE_ARGS: usize = 7;

/// A packed argument signature: the argument count in the low 4 bits, then 4 bits per
/// argument type. `0` means an empty slot (a real key always has a nonzero count marker).
pub type SigKey = u32;

/// The type bit of a value (`1 << type index`), for feedback words.
#[inline(always)]
pub fn type_bit(v: &Value) -> u32 {
    1 << v.type_of().index()
}

/// In one pass over a call's arguments: the callee's signature key (`None` when there are
/// too many arguments to pack) and the call site's feedback word (type bits of the first
/// four arguments, one byte each).
#[inline(always)]
pub fn call_keys(args: &[Value]) -> (Option<SigKey>, u32) {
    let mut key = 0x8 | args.len() as u32;
    let mut site = 0;
    for (i, a) in args.iter().enumerate().take(SIGNATURE_ARGS) {
        let t = a.type_of().index() as u32;
        key |= (t + 1) << (4 + 4 * i);
        if i < 4 {
            site |= (1 << t) << (8 * i);
        }
    }
    ((args.len() <= SIGNATURE_ARGS).then_some(key), site)
}

/// The signature key of `args`, or `None` when there are too many arguments to pack.
#[inline(always)]
pub fn signature_key(args: &[Value]) -> Option<SigKey> {
    if args.len() > SIGNATURE_ARGS {
        return None;
    }
    // Bit 3 of the low nibble marks a used key, so a zero-argument call is not "empty".
    let mut key = 0x8 | args.len() as u32;
    for (i, a) in args.iter().enumerate() {
        key |= (a.type_of().index() as u32 + 1) << (4 + 4 * i);
    }
    Some(key)
}

/// The signature key of these argument types (what `signature_key` gives for values of
/// them), or `None` when there are too many to pack.
pub fn key_of_types(types: &[Type]) -> Option<SigKey> {
    if types.len() > SIGNATURE_ARGS {
        return None;
    }
    let mut key = 0x8 | types.len() as u32;
    for (i, t) in types.iter().enumerate() {
        key |= (t.index() as u32 + 1) << (4 + 4 * i);
    }
    Some(key)
}

/// The argument types of a packed signature.
pub fn signature_types(key: SigKey) -> Vec<Type> {
    let n = (key & 0x7) as usize;
    (0..n)
        .filter_map(|i| {
            let t = ((key >> (4 + 4 * i)) & 0xf) as u8;
            Type::from_index(t.wrapping_sub(1))
        })
        .collect()
}

/// `(int, float)`.
pub fn signature_text(key: SigKey) -> String {
    let names: Vec<&str> = signature_types(key)
        .into_iter()
        .map(Type::short_name)
        .collect();
    format!("({})", names.join(", "))
}

/// Type names of a feedback byte's set bits.
pub fn type_bits_text(bits: u32) -> String {
    let names: Vec<&str> = Type::ALL
        .iter()
        .filter(|t| bits & (1 << t.index()) != 0)
        .map(|t| t.short_name())
        .collect();
    if names.is_empty() {
        "-".to_string()
    } else {
        names.join("|")
    }
}

#[derive(Default)]
pub struct LoopCounters {
    pub entries: Cell<u64>,
    /// Back edges taken: completed iterations.
    pub iterations: Cell<u64>,
    /// With timing on: time spent in the loop over the entries that left it normally (or by
    /// `break`), and the iterations those entries made.
    pub timed: Cell<Duration>,
    pub timed_iterations: Cell<u64>,
}

/// Everything the VM counts about one function.
pub struct FunctionCounters {
    pub calls: Cell<u64>,
    pub sig_keys: [Cell<SigKey>; SIGNATURE_SLOTS],
    pub sig_counts: [Cell<u64>; SIGNATURE_SLOTS],
    /// Calls whose signature did not fit the table.
    pub other_sigs: Cell<u64>,
    /// Type bits of the values returned.
    pub return_types: Cell<u32>,
    pub loops: Box<[LoopCounters]>,
    /// One word per instruction: for arithmetic and comparisons the operand type bits
    /// (left operand in the low byte, right in the next); for calls the argument type bits
    /// (one byte per argument position, the first four).
    pub feedback: Box<[Cell<u32>]>,
    /// With timing on: time in the function (outermost activations only, so recursion is
    /// counted once) and time in its own code (callees excluded).
    pub total_time: Cell<Duration>,
    pub self_time: Cell<Duration>,
    /// Activations of this function currently running (for counting recursion once).
    pub active: Cell<u32>,
}

impl FunctionCounters {
    pub fn new(code_len: usize, num_loops: usize) -> FunctionCounters {
        FunctionCounters {
            calls: Cell::new(0),
            sig_keys: Default::default(),
            sig_counts: Default::default(),
            other_sigs: Cell::new(0),
            return_types: Cell::new(0),
            loops: (0..num_loops).map(|_| LoopCounters::default()).collect(),
            feedback: (0..code_len).map(|_| Cell::new(0)).collect(),
            total_time: Cell::new(Duration::ZERO),
            self_time: Cell::new(Duration::ZERO),
            active: Cell::new(0),
        }
    }

    /// Counts a call with these arguments.
    #[inline(always)]
    pub fn record_call(&self, args: &[Value]) {
        self.record_signature(signature_key(args));
    }

    /// Counts a call with this signature (`None`: too many arguments to pack).
    #[inline(always)]
    pub fn record_signature(&self, key: Option<SigKey>) {
        self.calls.set(self.calls.get() + 1);
        let Some(key) = key else {
            self.other_sigs.set(self.other_sigs.get() + 1);
            return;
        };
        for i in 0..SIGNATURE_SLOTS {
            let k = self.sig_keys[i].get();
            if k == key {
                self.sig_counts[i].set(self.sig_counts[i].get() + 1);
                return;
            }
            if k == 0 {
                self.sig_keys[i].set(key);
                self.sig_counts[i].set(1);
                return;
            }
        }
        self.other_sigs.set(self.other_sigs.get() + 1);
    }

    /// Adds back edges counted elsewhere to loop `id`'s iterations (and zeroes the count).
    #[inline(always)]
    pub fn add_iterations(&self, id: u16, count: &mut u64) {
        let n = std::mem::take(count);
        if n > 0 {
            let l = &self.loops[id as usize];
            l.iterations.set(l.iterations.get() + n);
        }
    }

    /// ORs type bits into an instruction's feedback word (a store only when new bits show).
    #[inline(always)]
    pub fn feedback(&self, pc: usize, bits: u32) {
        let cell = &self.feedback[pc];
        let old = cell.get();
        if old & bits != bits {
            cell.set(old | bits);
        }
    }

    /// Signatures seen, most frequent first, with their counts.
    pub fn signatures(&self) -> Vec<(SigKey, u64)> {
        let mut sigs: Vec<(SigKey, u64)> = (0..SIGNATURE_SLOTS)
            .map(|i| (self.sig_keys[i].get(), self.sig_counts[i].get()))
            .filter(|(k, _)| *k != 0)
            .collect();
        sigs.sort_by_key(|s| std::cmp::Reverse(s.1));
        sigs
    }

    /// Calls with the most frequent signature / all calls (1.0 for a function never called).
    pub fn stability(&self) -> f64 {
        let calls = self.calls.get();
        if calls == 0 {
            return 1.0;
        }
        let top = self.signatures().first().map_or(0, |s| s.1);
        top as f64 / calls as f64
    }

    pub fn reset(&self) {
        self.calls.set(0);
        for i in 0..SIGNATURE_SLOTS {
            self.sig_keys[i].set(0);
            self.sig_counts[i].set(0);
        }
        self.other_sigs.set(0);
        self.return_types.set(0);
        for l in self.loops.iter() {
            l.entries.set(0);
            l.iterations.set(0);
            l.timed.set(Duration::ZERO);
            l.timed_iterations.set(0);
        }
        for f in self.feedback.iter() {
            f.set(0);
        }
        self.total_time.set(Duration::ZERO);
        self.self_time.set(Duration::ZERO);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_keys_match_the_separate_computations() {
        let args = [Value::Int(1), Value::str("s"), Value::Float(0.5)];
        let (key, site) = call_keys(&args);
        assert_eq!(key, signature_key(&args));
        assert_eq!(
            site,
            type_bit(&args[0]) | type_bit(&args[1]) << 8 | type_bit(&args[2]) << 16
        );
        assert_eq!(call_keys(&vec![Value::Nil; 9]).0, None);
    }

    #[test]
    fn signatures_pack_and_unpack() {
        let key = signature_key(&[Value::Int(1), Value::Float(2.0)]).unwrap();
        assert_eq!(signature_text(key), "(int, float)");
        assert_eq!(signature_text(signature_key(&[]).unwrap()), "()");
        assert_ne!(signature_key(&[]).unwrap(), 0);
        let many = vec![Value::Nil; 8];
        assert!(signature_key(&many).is_none());
    }

    #[test]
    fn the_signature_table_is_bounded() {
        let c = FunctionCounters::new(0, 0);
        for _ in 0..95 {
            c.record_call(&[Value::Int(1), Value::Int(2)]);
        }
        for _ in 0..5 {
            c.record_call(&[Value::Float(1.0), Value::Float(2.0)]);
        }
        assert_eq!(c.calls.get(), 100);
        assert!((c.stability() - 0.95).abs() < 1e-12);
        // Six more distinct signatures: four slots in all, the rest is "other".
        for v in [
            Value::Nil,
            Value::Bool(true),
            Value::str("s"),
            Value::array(vec![]),
        ] {
            c.record_call(&[v]);
        }
        assert_eq!(c.signatures().len(), SIGNATURE_SLOTS);
        assert_eq!(c.other_sigs.get(), 2);
    }
}
