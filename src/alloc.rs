//! The allocator's settings for a process that runs Ruchy programs.
//!
//! glibc serves a request of 128 KiB or more with its own `mmap`, and returns it to the
//! system when freed; its threshold then grows to the size freed, but only after the
//! first such round trip. A program that builds a big array again and again (the `sieve`
//! workload: a million 16-byte values, five times) paid for every round trip with fresh,
//! zeroed pages: 20,000 page faults where 4,500 do, and 62 against 56 ms (paired,
//! `scripts/interleave.py`, 7 rounds; LuaJIT 60 ms). So arrays up to 32 MiB come from
//! the heap, and up to 64 MiB of free memory at its top is kept for the next one.

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
