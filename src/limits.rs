//! Run-time limits shared by every tier: recursion depth and the interrupt flag.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Default `--max-depth`: deep enough for `d(100000)` with room to spare.
pub const DEFAULT_MAX_DEPTH: usize = 200_000;

pub struct Limits {
    /// Ruchy call frames allowed at once; one more is `Recursion limit exceeded`.
    pub max_depth: usize,
    /// Set by a Ctrl-C handler (or a test); polled at calls and loop back-edges.
    pub interrupt: Arc<AtomicBool>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: DEFAULT_MAX_DEPTH,
            interrupt: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl Limits {
    #[inline]
    pub fn interrupted(&self) -> bool {
        self.interrupt.load(Ordering::Relaxed)
    }

    pub fn clear_interrupt(&self) {
        self.interrupt.store(false, Ordering::Relaxed);
    }
}
