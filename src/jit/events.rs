//! What the JIT reports: compiles, deopts, blacklisting, OSR entries and code-cache flushes,
//! as `--trace-jit`, the REPL's `:deopts` and `ruchydbg` print them.

use std::fmt;
use std::time::Duration;

use super::{CodeEntry, MAX_DEOPTS};

#[derive(Clone, Debug)]
pub enum EventKind {
    Compiled {
        signature: String,
        time: Duration,
        bytes: usize,
        /// 1, or 2 for the optimizing tier.
        tier: u8,
        /// Self-calls translated inline (tier 2).
        inlined: usize,
        /// Self-calls turned into a loop with a running sum (tier 2, `accumulate`).
        accumulated: usize,
        /// Other callees translated inline: (name, line of the call).
        inlined_callees: Vec<(String, u32)>,
    },
    Deopt {
        line: u32,
        reason: String,
        count: u32,
    },
    Blacklisted {
        deopts: u32,
    },
    NotCompiled {
        signature: String,
        reason: String,
    },
    /// A loop entered in compiled code mid-run.
    Osr {
        line: u32,
        iterations: u64,
    },
    CompiledOsr {
        line: u32,
        time: Duration,
        bytes: usize,
        inlined_callees: Vec<(String, u32)>,
    },
    /// All compiled code dropped and its module freed (see `Jit::flush_code_cache`).
    Flushed {
        versions: usize,
        bytes: usize,
    },
}

#[derive(Clone, Debug)]
pub struct Event {
    pub function: String,
    pub kind: EventKind,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let name = &self.function;
        match &self.kind {
            EventKind::Compiled {
                signature,
                time,
                bytes,
                tier: 1,
                ..
            } => write!(
                f,
                "[jit] compiled {name}{signature} in {} us, {bytes} bytes",
                time.as_micros()
            ),
            EventKind::Compiled {
                signature,
                time,
                bytes,
                inlined,
                accumulated,
                ..
            } => write!(
                f,
                "[jit] compiled {name}{signature} at tier 2 ({inlined} self-calls inlined{}) in {} us, {bytes} bytes",
                match accumulated {
                    0 => String::new(),
                    n => format!(", {n} turned into a loop"),
                },
                time.as_micros()
            ),
            EventKind::Deopt {
                line,
                reason,
                count,
            } if *count <= MAX_DEOPTS => write!(
                f,
                "[jit] deopt {name} at line {line}: {reason} (deopt {count} of {MAX_DEOPTS})"
            ),
            EventKind::Deopt {
                line,
                reason,
                count,
            } => write!(
                f,
                "[jit] deopt {name} at line {line}: {reason} (deopt {count}, over the limit of {MAX_DEOPTS})"
            ),
            EventKind::Blacklisted { deopts } => {
                write!(f, "[jit] blacklisted {name} after {deopts} deopts")
            }
            EventKind::NotCompiled { signature, reason } => {
                write!(f, "[jit] not compiled {name}{signature}: {reason}")
            }
            EventKind::Osr { line, iterations } => write!(
                f,
                "[jit] OSR into {name} at line {line} after {iterations} iterations"
            ),
            EventKind::Flushed { versions, bytes } => write!(
                f,
                "[jit] code cache flushed: {versions} compiled versions dropped, about {} KB freed",
                bytes / 1024
            ),
            EventKind::CompiledOsr {
                line, time, bytes, ..
            } => write!(
                f,
                "[jit] compiled {name} (OSR entry at line {line}) in {} us, {bytes} bytes",
                time.as_micros()
            ),
        }?;
        match &self.kind {
            EventKind::Compiled {
                inlined_callees, ..
            }
            | EventKind::CompiledOsr {
                inlined_callees, ..
            } if !inlined_callees.is_empty() => {
                write!(f, "; inlined {}", inlined_text(inlined_callees))
            }
            _ => Ok(()),
        }
    }
}

/// "poly (line 12), scaled (line 12)": callees translated inline, with the line of each call.
pub fn inlined_text(callees: &[(String, u32)]) -> String {
    let parts: Vec<String> = callees
        .iter()
        .map(|(name, line)| format!("{name} (line {line})"))
        .collect();
    parts.join(", ")
}

/// The event of a compiled version (tier 1 or 2).
pub(super) fn compiled_event(code: &CodeEntry) -> EventKind {
    EventKind::Compiled {
        signature: code.signature.clone(),
        time: code.compile_time,
        bytes: code.code_bytes,
        tier: code.tier,
        inlined: code.inlined,
        accumulated: code.accumulated_lines.len(),
        inlined_callees: code.inlined_callees.clone(),
    }
}
