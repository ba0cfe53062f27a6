//! The tiering policy: when a call runs compiled code, and when a running loop moves into
//! compiled code (on-stack replacement).
//!
//! - `--tier jit`: every function is compiled at its first call, for that call's argument
//!   types.
//! - `--tier auto`: the VM runs with its counters; a function is compiled for a signature
//!   once it is hot (more than `--jit-threshold` calls) and either type-stable (the
//!   signature is its dominant one and takes more than 80% of its calls) or hot with that
//!   signature alone (more than the threshold calls with it). A function called with many
//!   types therefore stays in the VM, and one whose types change in phases (the `poly`
//!   workload) gets one version per phase. A loop is entered in compiled code once it has
//!   made more than `--osr-threshold` iterations.
//!
//! Either way, a function that deopts is compiled again when next hot, and one that deopts
//! more than `jit::MAX_DEOPTS` times is blacklisted and stays in the VM.

use std::rc::Rc;

use crate::function::Closure;
use crate::globals::Globals;
use crate::jit::Jit;
use crate::profile::{signature_key, SigKey};
use crate::value::Value;
use crate::vm::{proto_of, Vm};

/// A function's dominant signature must take more than this share of its calls.
pub const STABILITY: f64 = 0.8;

impl Vm<'_> {
    /// The compiled entry to run for a call of `closure` with the `argc` arguments at
    /// `base`, compiling it first if the policy says so; `None` runs it in the VM.
    pub(crate) fn compiled_entry(
        &mut self,
        closure: &Rc<Closure>,
        base: usize,
        argc: usize,
    ) -> Option<usize> {
        let jit = self.jit.as_mut()?;
        let proto = proto_of(closure);
        if proto.jit.blacklisted.get() {
            return None;
        }
        let key = signature_key(&self.stack[base..base + argc])?;
        // Near the end of the native stack, calls continue in the VM (heap frames).
        if crate::stack::exhausted() {
            return None;
        }
        if let Some(entry) = proto.jit.entry(key) {
            return Some(entry);
        }
        if proto.jit.failure(key).is_some() {
            return None;
        }
        let threshold = jit.options.call_threshold;
        if threshold > 0 && !hot(&proto.counters, key, threshold) {
            return None;
        }
        jit.compile(closure, key, self.globals).ok()
    }
}

impl Vm<'_> {
    /// Tier 2 for `closure`'s tier-1 code that got hot (see `runtime::rt_tier_up`): the
    /// address of its body, or 0.
    pub(crate) fn tier_up(&mut self, closure: &Rc<Closure>, key: SigKey) -> usize {
        match self.jit.as_mut() {
            Some(jit) => jit.compile_tier2(closure, key, self.globals),
            None => 0,
        }
    }
}

/// The OSR entry for the loop at `header` of a running frame (whose registers are
/// `window`), compiling it the first time; `None` keeps the loop in the VM. (Takes the VM's
/// parts: the dispatch loop holds its frame's registers borrowed.)
pub(crate) fn osr_entry(
    jit: Option<&mut Jit>,
    globals: &Globals,
    window: &[Value],
    closure: &Rc<Closure>,
    argc: usize,
    header: usize,
    iterations: u64,
) -> Option<usize> {
    let jit = jit?;
    let proto = proto_of(closure);
    if proto.jit.blacklisted.get() || crate::stack::exhausted() {
        return None;
    }
    match proto.jit.osr_entry(header) {
        Some(entry) => entry,
        None => {
            let entry = jit.compile_osr(closure, header, argc, window, globals)?;
            jit.record_osr(proto, header, iterations);
            Some(entry)
        }
    }
}

/// Whether a function should be compiled for signature `key` after `threshold` calls.
fn hot(counters: &crate::profile::FunctionCounters, key: SigKey, threshold: u64) -> bool {
    let calls = counters.calls.get();
    if calls <= threshold {
        return false;
    }
    let sigs = counters.signatures();
    let with_key = sigs.iter().find(|s| s.0 == key).map_or(0, |s| s.1);
    let dominant = sigs.first().is_some_and(|s| s.0 == key);
    (dominant && counters.stability() > STABILITY) || with_key > threshold
}
