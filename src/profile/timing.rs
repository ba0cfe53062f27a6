//! Timing of running functions and loops (only with `--profile` / `:profile on`): the VM
//! calls in here at function entry and exit and at loop entry and exit.

use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::bytecode::proto::Proto;

/// Timing of running functions and loops (only with `--profile` / `:profile on`).
#[derive(Default)]
pub struct Timing {
    /// One per running activation: its prototype, when it started, time spent in callees.
    pub(crate) frames: Vec<(Rc<Proto>, Instant, Duration)>,
    /// One per running loop: frame depth, prototype, loop id, start, iterations at entry.
    pub(crate) loops: Vec<(usize, Rc<Proto>, u16, Instant, u64)>,
}

impl Timing {
    pub fn enter(&mut self, proto: &Rc<Proto>) {
        let c = &proto.counters;
        c.active.set(c.active.get() + 1);
        self.frames
            .push((proto.clone(), Instant::now(), Duration::ZERO));
    }

    /// Closes the innermost activation: self time always, total time only for the outermost
    /// activation of a function (so recursion is counted once).
    pub fn leave(&mut self, depth: usize) {
        while self.loops.last().is_some_and(|l| l.0 >= depth) {
            self.loops.pop();
        }
        let Some((proto, start, in_callees)) = self.frames.pop() else {
            return;
        };
        let elapsed = start.elapsed();
        let c = &proto.counters;
        c.self_time
            .set(c.self_time.get() + elapsed.saturating_sub(in_callees));
        if c.active.get() == 1 {
            c.total_time.set(c.total_time.get() + elapsed);
        }
        c.active.set(c.active.get() - 1);
        if let Some(parent) = self.frames.last_mut() {
            parent.2 += elapsed;
        }
    }

    /// After an error: every activation still open is abandoned.
    pub fn abandon(&mut self) {
        for (proto, _, _) in self.frames.drain(..) {
            proto.counters.active.set(0);
        }
        self.loops.clear();
    }
}
