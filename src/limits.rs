//! Run-time limits shared by every tier: recursion depth and the interrupt flag.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::globals::{FUNCTION_EPOCH, INTERRUPT_PENDING};

/// Default `--max-depth`: deep enough for `d(100000)` with room to spare.
pub const DEFAULT_MAX_DEPTH: usize = 200_000;

pub struct Limits {
    /// Ruchy call frames allowed at once; one more is `Recursion limit exceeded`.
    pub max_depth: usize,
    /// Set by a Ctrl-C handler (or a test) through `request_interrupt`; polled at calls and
    /// loop back-edges.
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

/// Interrupts the code running with this flag (what a Ctrl-C handler calls): sets the flag,
/// which the VM and loops in compiled code poll, and marks the function epoch, which calls
/// in compiled code check.
pub fn request_interrupt(flag: &AtomicBool) {
    flag.store(true, Ordering::Relaxed);
    FUNCTION_EPOCH.fetch_or(INTERRUPT_PENDING, Ordering::Relaxed);
}

impl Limits {
    #[inline]
    pub fn interrupted(&self) -> bool {
        self.interrupt.load(Ordering::Relaxed)
    }

    pub fn clear_interrupt(&self) {
        self.interrupt.store(false, Ordering::Relaxed);
        FUNCTION_EPOCH.fetch_and(!INTERRUPT_PENDING, Ordering::Relaxed);
    }
}
