//! The code table: each function's compiled versions (one per argument signature, plus
//! OSR entries), its code-table slots, and what it was compiled to, for `:ir`, `:profile`
//! and `ruchydbg`. It lives inside each `Proto`, so the VM finds a function's code from the
//! function itself.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use super::infer::Ty;
use crate::bytecode::proto::Proto;
use crate::function::Closure;
use crate::profile::{signature_text, SigKey};

/// One compiled version of a function.
pub struct CodeEntry {
    pub key: SigKey,
    /// Address of the entry called from Rust (arguments read from the registers).
    pub entry: usize,
    /// The result type the code was inferred to return (`Boxed`: any).
    pub returns: Ty,
    pub signature: String,
    /// The Cranelift IR and the machine code (Cranelift's listing), when kept.
    pub ir: Option<String>,
    pub machine_code: Option<String>,
    pub code_bytes: usize,
    pub compile_time: Duration,
    /// For an OSR entry: the line of the loop it enters.
    pub osr_line: Option<u32>,
    /// 1, or 2 for the optimizing tier.
    pub tier: u8,
    /// Levels of self-calls translated inline (tier 2), and how many calls that was.
    pub unrolled_levels: usize,
    pub inlined: usize,
    /// Real self-calls whose callee's start is translated inline (tier 2, peeling).
    pub peeled: usize,
    /// Self-calls turned into a loop's back edge with a running sum (tier 2,
    /// `translate::accumulate`): the lines of those calls, how many back edges that made
    /// (one per translated activation), and the parameter (by position, from 1) whose
    /// bound proves the recursion's depth, with the bound.
    pub accumulated_lines: Vec<u32>,
    pub accumulated: usize,
    pub depth_measure: Option<(usize, i64)>,
    /// Other callees translated inline: (callee name, line of the call).
    pub inlined_callees: Vec<(String, u32)>,
    /// Overflow checks removed because loop bounds prove them unnecessary, and the loop
    /// entries that guard the proofs' assumptions (`jit::range`).
    pub checks_removed: usize,
    pub guarded_loops: usize,
    /// How many of `checks_removed` lie outside loops (branch tests proved them).
    pub checks_removed_outside_loops: usize,
    /// Array accesses in loops that use the buffer and length their loop's entry read, and
    /// how many arrays were read so (`translate::arrays`).
    pub hoisted_array_accesses: usize,
    pub hoisted_arrays: usize,
    /// Back edges that test their loop's condition themselves, and branches replaced by
    /// selects (`translate::layout`).
    pub rotated_loops: usize,
    pub if_converted: usize,
    /// Closures and code-table slots the code has the addresses of: kept alive with it.
    pub(super) _keep: Kept,
}

/// What compiled code has the addresses of, kept alive with it: closures it calls (its own
/// included), code-table slots, its tier-up counter, and its exit sites.
#[allow(dead_code)] // held, never read: owning them is the point
pub(super) struct Kept {
    pub closures: Vec<Rc<Closure>>,
    pub slots: Vec<Rc<Cell<usize>>>,
    pub tier_up: Option<Rc<super::runtime::TierUp>>,
    /// Boxed: the code holds each site's address, which must not move.
    #[allow(clippy::vec_box)]
    pub exits: Vec<Box<super::runtime::ExitSite>>,
}

/// A function's JIT state, inside its `Proto`.
#[derive(Default)]
pub struct FunctionJit {
    pub(super) entries: RefCell<Vec<Rc<CodeEntry>>>,
    /// Code-table slots, one per signature: the address of the compiled body, or 0. Compiled
    /// callers load the slot at each call, so dropping code only clears it.
    pub(super) slots: RefCell<Vec<(SigKey, Rc<Cell<usize>>)>>,
    /// Signatures that could not be compiled, with the reason.
    pub(super) failed: RefCell<Vec<(SigKey, String)>>,
    /// OSR entries by loop header pc (`None`: could not be compiled).
    pub(super) osr: RefCell<Vec<(usize, Option<Rc<CodeEntry>>)>>,
    /// Dropped code: it may still be running in frames below (it is never freed, as
    /// Cranelift cannot free one function), and it holds the addresses of what it keeps.
    pub(super) retired: RefCell<Vec<Rc<CodeEntry>>>,
    /// Tier-up counters, one per signature compiled at tier 1.
    pub(super) tier_ups: RefCell<Vec<Rc<super::runtime::TierUp>>>,
    pub deopts: Cell<u32>,
    pub blacklisted: Cell<bool>,
    /// A loop's range guard failed (`jit::range`): compile without range assumptions.
    pub no_range_guards: Cell<bool>,
    /// An accumulator loop met a negative or overflowing sum (`translate::accumulate`):
    /// compile without them.
    pub no_accumulator: Cell<bool>,
}

impl FunctionJit {
    pub fn entry(&self, key: SigKey) -> Option<usize> {
        self.entries
            .borrow()
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.entry)
    }

    pub fn return_type(&self, key: SigKey) -> Option<Ty> {
        self.entries
            .borrow()
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.returns)
    }

    pub fn entries(&self) -> Vec<Rc<CodeEntry>> {
        self.entries.borrow().clone()
    }

    pub fn failure(&self, key: SigKey) -> Option<String> {
        self.failed
            .borrow()
            .iter()
            .find(|f| f.0 == key)
            .map(|f| f.1.clone())
    }

    pub fn failures(&self) -> Vec<(SigKey, String)> {
        self.failed.borrow().clone()
    }

    pub(super) fn slot(&self, key: SigKey) -> Rc<Cell<usize>> {
        let mut slots = self.slots.borrow_mut();
        if let Some((_, s)) = slots.iter().find(|(k, _)| *k == key) {
            return s.clone();
        }
        let s = Rc::new(Cell::new(0));
        slots.push((key, s.clone()));
        s
    }

    /// The OSR entry for the loop whose header is at `pc`: `Some(None)` when it could not
    /// be compiled.
    pub fn osr_entry(&self, pc: usize) -> Option<Option<usize>> {
        self.osr
            .borrow()
            .iter()
            .find(|o| o.0 == pc)
            .map(|o| o.1.as_ref().map(|e| e.entry))
    }

    pub fn osr_entries(&self) -> Vec<(usize, Option<Rc<CodeEntry>>)> {
        self.osr.borrow().clone()
    }

    /// The tier-up state for signature `key` (compiled for `closure`).
    pub(super) fn tier_up(&self, key: SigKey, closure: &Rc<Closure>) -> Rc<super::runtime::TierUp> {
        let mut all = self.tier_ups.borrow_mut();
        if let Some(t) = all.iter().find(|t| t.key == key) {
            return t.clone();
        }
        let t = Rc::new(super::runtime::TierUp {
            count: Cell::new(0),
            tier2_body: Cell::new(0),
            closure: Rc::as_ptr(closure),
            key,
        });
        all.push(t.clone());
        t
    }

    /// Moves the tier-1 version for `key` out (it may still be running) for `tier2`.
    pub(super) fn replace_with_tier2(&self, tier2: Rc<CodeEntry>) {
        let key = tier2.key;
        let mut entries = self.entries.borrow_mut();
        let mut retired = self.retired.borrow_mut();
        retired.extend(entries.iter().filter(|e| e.key == key).cloned());
        entries.retain(|e| e.key != key);
        entries.push(tier2);
    }

    /// Forgets all code, running or not (only when none can be running: see
    /// `Jit::flush_code_cache`). Compile failures, deopt counts and the blacklist stay.
    pub(super) fn forget_code(&self) {
        self.entries.borrow_mut().clear();
        self.retired.borrow_mut().clear();
        self.osr.borrow_mut().retain(|o| o.1.is_none());
        self.tier_ups.borrow_mut().clear();
        for (_, s) in self.slots.borrow().iter() {
            s.set(0);
        }
    }

    /// Drops every compiled version: callers fall back to the VM.
    pub(super) fn drop_code(&self) {
        let mut retired = self.retired.borrow_mut();
        retired.append(&mut self.entries.borrow_mut());
        retired.extend(self.osr.borrow_mut().drain(..).filter_map(|o| o.1));
        // Code compiled anew starts at tier 1 again; running tier-1 code keeps its own
        // counter, now without a tier-2 body to hand over to.
        for t in self.tier_ups.borrow_mut().drain(..) {
            t.tier2_body.set(0);
            t.count.set(i64::MIN);
        }
        for (_, s) in self.slots.borrow().iter() {
            s.set(0);
        }
    }
}

/// What a function was compiled to: per signature, the IR and machine code when kept, or
/// why it was not compiled. The text of `ruchydbg ir` and the REPL's `:ir`.
/// `n` and the noun, singular for 1 (`1 array`, `3 arrays`).
fn count(n: usize, one: &str, many: &str) -> String {
    match n {
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    }
}

pub fn describe_code(proto: &Proto) -> String {
    let mut out = String::new();
    let name = &proto.name;
    // The code that can run now (entries, then OSR entries); failing that, the code that
    // was dropped after a deopt, so that what ran is still there to read.
    let mut shown: Vec<(Rc<CodeEntry>, &str)> = proto
        .jit
        .entries()
        .into_iter()
        .chain(proto.jit.osr.borrow().iter().filter_map(|o| o.1.clone()))
        .map(|e| (e, ""))
        .collect();
    if shown.is_empty() {
        shown = proto
            .jit
            .retired
            .borrow()
            .iter()
            .map(|e| (e.clone(), " (dropped after a deopt)"))
            .collect();
    }
    for (e, dropped) in &shown {
        let osr = match e.osr_line {
            Some(line) => format!(" (OSR entry at line {line})"),
            None => String::new(),
        };
        let tier = match e.tier {
            2 if e.unrolled_levels == 0 => " at tier 2".to_string(),
            2 => format!(
                " at tier 2 (self-recursion unrolled {} level{} deep: {} self-calls inlined{})",
                e.unrolled_levels,
                if e.unrolled_levels == 1 { "" } else { "s" },
                e.inlined,
                match e.peeled {
                    0 => String::new(),
                    n => format!(", {n} more peeled (base case tested inline)"),
                }
            ),
            _ => String::new(),
        };
        out.push_str(&format!(
            "; {name}{}{osr}{tier}{dropped} compiled in {} us, {} bytes of machine code; \
             returns {}\n",
            e.signature,
            e.compile_time.as_micros(),
            e.code_bytes,
            e.returns.name()
        ));
        if !e.inlined_callees.is_empty() {
            out.push_str(&format!(
                "; inlined: {}\n",
                super::inlined_text(&e.inlined_callees)
            ));
        }
        if !e.accumulated_lines.is_empty() {
            let lines: Vec<String> = e.accumulated_lines.iter().map(|l| l.to_string()).collect();
            let depth = match e.depth_measure {
                Some((param, bound)) => format!(
                    "its depth bounded by parameter {param} (calls only while it is >= {bound}, \
                     each with it smaller), checked once at the entry"
                ),
                None => "each iteration counting its call depth".to_string(),
            };
            out.push_str(&format!(
                "; accumulator: the self-call{} at line {} {} a loop with a running sum ({}), \
                 {depth}\n",
                if lines.len() == 1 { "" } else { "s" },
                lines.join(", "),
                if lines.len() == 1 { "is" } else { "are" },
                count(e.accumulated, "back edge", "back edges"),
            ));
        }
        let outside = e.checks_removed_outside_loops;
        let in_loops = e.checks_removed - outside;
        if in_loops > 0 && e.guarded_loops == 0 {
            let checks = count(in_loops, "overflow check", "overflow checks");
            out.push_str(&format!(
                "; {checks} in loops removed: the branch tests before them prove they cannot \
                 overflow\n"
            ));
        } else if in_loops > 0 {
            let entries = count(e.guarded_loops, "loop entry", "loop entries");
            let checks = count(in_loops, "overflow check", "overflow checks");
            out.push_str(&format!(
                "; {checks} removed: loop bounds prove them unnecessary, given the range \
                 guards at {entries}\n"
            ));
        }
        if outside > 0 {
            let checks = count(outside, "overflow check", "overflow checks");
            out.push_str(&format!(
                "; {checks} outside loops removed: the branch tests before them prove they \
                 cannot overflow\n"
            ));
        }
        if e.hoisted_array_accesses > 0 {
            let accesses = count(e.hoisted_array_accesses, "array access", "array accesses");
            let arrays = count(e.hoisted_arrays, "array", "arrays");
            out.push_str(&format!(
                "; {accesses} in loops skip the array's checks: each loop's entry checks the \
                 array once ({arrays})\n"
            ));
        }
        if e.rotated_loops + e.if_converted > 0 {
            let rotated = count(e.rotated_loops, "back edge", "back edges");
            let converted = count(e.if_converted, "branch", "branches");
            out.push_str(&format!(
                "; branch layout: loop test repeated at {rotated} (loop rotation), {converted} \
                 turned into selects (if-conversion)\n"
            ));
        }
        match &e.ir {
            Some(ir) => out.push_str(ir),
            None => out.push_str("; (IR not kept: run with the IR switched on)\n"),
        }
        if let Some(asm) = &e.machine_code {
            out.push_str(&format!(
                "\n; machine code of {name}{}:\n{asm}",
                e.signature
            ));
        }
        out.push('\n');
    }
    for (key, reason) in proto.jit.failures() {
        out.push_str(&format!(
            "; {name}{} is not compiled: {reason}\n",
            signature_text(key)
        ));
    }
    if proto.jit.blacklisted.get() {
        out.push_str(&format!(
            "; {name} is blacklisted after {} deopts: it runs in the VM\n",
            proto.jit.deopts.get()
        ));
    } else if shown.is_empty() && proto.jit.failures().is_empty() {
        out.push_str(&format!(
            "; {name} was not compiled (it was never called)\n"
        ));
    }
    out
}

/// Where a function ended: in compiled code (which versions) or in the VM, and why. For
/// `ruchydbg hotspots` and the REPL's `:profile`.
pub fn tier_of(proto: &Proto) -> String {
    let jit = &proto.jit;
    if jit.blacklisted.get() {
        return format!("vm: blacklisted after {} deopts", jit.deopts.get());
    }
    let mut parts = Vec::new();
    let entries = jit.entries();
    if !entries.is_empty() {
        let versions: Vec<String> = entries
            .iter()
            .map(|e| match e.tier {
                2 => format!("{} at tier 2", e.signature),
                _ => e.signature.clone(),
            })
            .collect();
        parts.push(format!("jit {}", versions.join(" ")));
    }
    for (pc, entry) in jit.osr_entries() {
        if entry.is_some() {
            parts.push(format!("jit: OSR entry at line {}", proto.lines[pc]));
        }
    }
    if !parts.is_empty() {
        return parts.join("; ");
    }
    if let Some((key, reason)) = jit.failures().first() {
        return format!(
            "vm: {}{} not compiled: {reason}",
            proto.name,
            signature_text(*key)
        );
    }
    match jit.deopts.get() {
        0 if proto.line == 0 => {
            "vm: the top level runs once (its loops may enter compiled code)".to_string()
        }
        0 => "vm: not hot (or not type-stable) enough to compile".to_string(),
        n => format!("vm: code dropped after {n} deopt(s), not compiled again"),
    }
}
