//! The tiering policy: when a call runs compiled code. With `--tier jit` every function is
//! compiled at its first call, for that call's argument types; a function that deopts more
//! than `jit::MAX_DEOPTS` times is blacklisted and stays in the VM.

use std::rc::Rc;

use crate::function::Closure;
use crate::profile::signature_key;
use crate::vm::{proto_of, Vm};

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
        jit.compile(closure, key, self.globals).ok()
    }
}
