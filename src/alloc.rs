//! Allocation: the allocator's settings for a process that runs Ruchy programs, and the
//! VM's register stack, zeroed by the allocator.
//!
//! glibc serves a request of 128 KiB or more with its own `mmap`, and returns it to the
//! system when freed; its threshold then grows to the size freed, but only after the
//! first such round trip. A program that builds a big array again and again (the `sieve`
//! workload: a million 16-byte values, five times) paid for every round trip with fresh,
//! zeroed pages: 20,000 page faults where 4,500 do, and 62 against 56 ms (paired,
//! `scripts/interleave.py`, 7 rounds; LuaJIT 60 ms). So arrays up to 32 MiB come from
//! the heap, and up to 64 MiB of free memory at its top is kept for the next one.

use crate::value::Value;

/// Sets glibc's `mmap` and trim thresholds (see the module's comment); a no-op elsewhere.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_MMAP_THRESHOLD: i32 = -3;
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        // SAFETY: `mallopt` only changes two numbers in glibc's allocator state, which
        // allocation and freeing read under its own lock; it is called before the engine
        // thread starts, and both values are valid for their parameters (non-negative).
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 32 << 20);
            mallopt(M_TRIM_THRESHOLD, 64 << 20);
        }
    }
}

/// The VM's register stack: values that only ever grow in number, reserved once (the
/// reservation never moves: compiled code keeps pointers into it) and zeroed by the
/// allocator, so that growing it writes nothing. A zeroed `Value` is `Value::Nil` (its
/// tag is 0, see the test below), and every value past the length was never written:
/// the stack never shrinks, and it gives out no `Vec` that could. Growing it to the
/// 65,536-value window a frame needs past its base used to write a megabyte of nils in
/// every process (256 page faults, a fifth of a one-line program's); now the pages are
/// touched only when used.
pub struct RegisterStack {
    values: Vec<Value>,
}

impl RegisterStack {
    /// An empty stack with room for `capacity` values.
    pub fn with_capacity(capacity: usize) -> RegisterStack {
        let layout = std::alloc::Layout::array::<Value>(capacity).expect("a valid size");
        // SAFETY: the layout has a non-zero size (the VM asks for millions of values);
        // `alloc_zeroed` returns memory for `capacity` values aligned for `Value`, or
        // null, which `handle_alloc_error` does not return from. The `Vec` then owns it
        // with length 0, capacity `capacity`, and the global allocator's layout, which is
        // how `Vec` frees it.
        let values = unsafe {
            let memory = std::alloc::alloc_zeroed(layout) as *mut Value;
            if memory.is_null() {
                std::alloc::handle_alloc_error(layout);
            }
            Vec::from_raw_parts(memory, 0, capacity)
        };
        RegisterStack { values }
    }

    pub fn capacity(&self) -> usize {
        self.values.capacity()
    }

    /// Makes the first `len` values usable (nil where new).
    pub fn grow_to(&mut self, len: usize) {
        assert!(len <= self.values.capacity(), "the stack never reallocates");
        if len > self.values.len() {
            // SAFETY: `len` is within the capacity, and every value past the old length
            // is zero bytes (the allocation was zeroed and the stack never shrank), which
            // is a valid `Value::Nil`.
            unsafe { self.values.set_len(len) }
        }
    }
}

impl std::ops::Deref for RegisterStack {
    type Target = [Value];
    fn deref(&self) -> &[Value] {
        &self.values
    }
}

impl std::ops::DerefMut for RegisterStack {
    fn deref_mut(&mut self) -> &mut [Value] {
        &mut self.values
    }
}

#[cfg(test)]
mod tests {
    use super::RegisterStack;
    use crate::value::Value;

    /// A value of zero bytes is nil: what the stack's growth relies on.
    #[test]
    fn zeroed_values_are_nil() {
        let mut stack = RegisterStack::with_capacity(1 << 20);
        stack.grow_to(1000);
        assert!(stack.iter().all(|v| matches!(v, Value::Nil)));
        stack[3] = Value::Int(7);
        stack.grow_to(2000);
        assert!(matches!(stack[3], Value::Int(7)));
        assert!(stack[1000..].iter().all(|v| matches!(v, Value::Nil)));
        assert_eq!(stack.len(), 2000);
    }
}
