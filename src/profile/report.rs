//! Profile reports for people (`ruchydbg hotspots`, `ruchy run --profile`) and for tools
//! (`--json`, whose shape is documented in `docs/PROFILE_JSON.md`).

use std::fmt::Write as _;
use std::rc::Rc;
use std::time::Duration;

use owo_colors::OwoColorize;

use crate::bytecode::proto::Proto;
use crate::profile::{signature_text, type_bits_text};

/// When a function or loop is worth compiling. Every number is a flag of `ruchydbg hotspots`.
#[derive(Clone, Copy, Debug)]
pub struct Thresholds {
    /// A function is hot above this share of the run's time (when timing is on)...
    pub hot_percent: f64,
    /// ...or above this many calls.
    pub hot_calls: u64,
    /// A function is type-stable above this share of calls with its top signature.
    pub stable: f64,
    /// A loop is an OSR candidate above this many iterations per entry.
    pub osr_iterations: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            hot_percent: 30.0,
            hot_calls: 1000,
            stable: 0.8,
            osr_iterations: 1000,
        }
    }
}

pub struct SignatureShare {
    pub signature: String,
    pub calls: u64,
}

pub struct FunctionReport {
    pub name: String,
    pub line: u32,
    pub calls: u64,
    pub total: Duration,
    pub self_time: Duration,
    /// Share of the run, when timing was on.
    pub percent: Option<f64>,
    pub stability: f64,
    pub signatures: Vec<SignatureShare>,
    pub other_signatures: u64,
    pub return_types: String,
    pub candidate: bool,
    /// Why it is (or is not) a JIT candidate.
    pub reason: String,
    /// Where it ended: compiled code (which versions) or the VM, and why.
    pub tier: String,
}

impl FunctionReport {
    /// `fib:2` (name and line), or `(top level)`.
    pub fn label(&self) -> String {
        if self.line == 0 {
            self.name.clone()
        } else {
            format!("{}:{}", self.name, self.line)
        }
    }
}

pub struct LoopReport {
    pub function: String,
    pub line: u32,
    pub id: u16,
    pub entries: u64,
    pub iterations: u64,
    pub time_per_iteration: Option<Duration>,
    pub osr_candidate: bool,
    pub reason: String,
}

pub struct Report {
    pub timed: bool,
    pub run_time: Duration,
    pub thresholds: Thresholds,
    pub functions: Vec<FunctionReport>,
    pub loops: Vec<LoopReport>,
}

/// Every prototype in these scripts, nested functions included.
pub fn all_protos(scripts: &[Rc<Proto>]) -> Vec<Rc<Proto>> {
    fn walk(p: &Rc<Proto>, out: &mut Vec<Rc<Proto>>) {
        out.push(p.clone());
        for c in &p.children {
            walk(c, out);
        }
    }
    let mut out = Vec::new();
    for s in scripts {
        walk(s, &mut out);
    }
    out
}

pub fn ms(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0} us")
    } else if us < 1e6 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

fn ns(d: Duration) -> String {
    format!("{:.1} ns", d.as_secs_f64() * 1e9)
}

impl Report {
    pub fn build(
        scripts: &[Rc<Proto>],
        timed: bool,
        run_time: Duration,
        thresholds: Thresholds,
        jit_on: bool,
    ) -> Report {
        let mut functions = Vec::new();
        let mut loops = Vec::new();
        for p in all_protos(scripts) {
            let c = &p.counters;
            let calls = c.calls.get();
            let name = if p.line == 0 {
                "(top level)".to_string()
            } else {
                p.name.to_string()
            };
            for (id, l) in c.loops.iter().enumerate() {
                let (entries, iterations) = (l.entries.get(), l.iterations.get());
                if entries == 0 {
                    continue;
                }
                let per_entry = iterations / entries;
                let osr = per_entry > thresholds.osr_iterations;
                let reason = if osr {
                    format!(
                        "OSR candidate: {per_entry} iterations per entry > {}",
                        thresholds.osr_iterations
                    )
                } else {
                    format!(
                        "not an OSR candidate: {per_entry} iterations per entry <= {}",
                        thresholds.osr_iterations
                    )
                };
                let timed_iters = l.timed_iterations.get();
                loops.push(LoopReport {
                    function: name.clone(),
                    line: p.loop_lines.get(id).copied().unwrap_or(0),
                    id: id as u16,
                    entries,
                    iterations,
                    time_per_iteration: (timed && timed_iters > 0)
                        .then(|| l.timed.get() / timed_iters.min(u32::MAX as u64) as u32),
                    osr_candidate: osr,
                    reason,
                });
            }
            if calls == 0 {
                continue;
            }
            let percent = (timed && !run_time.is_zero())
                .then(|| 100.0 * c.total_time.get().as_secs_f64() / run_time.as_secs_f64());
            let stability = c.stability();
            let signatures: Vec<SignatureShare> = c
                .signatures()
                .into_iter()
                .map(|(k, n)| SignatureShare {
                    signature: signature_text(k),
                    calls: n,
                })
                .collect();
            let hot_by_calls = calls > thresholds.hot_calls;
            let hot_by_time = percent.is_some_and(|x| x > thresholds.hot_percent);
            let stable = stability > thresholds.stable;
            let top = signatures
                .first()
                .map(|s| s.signature.clone())
                .unwrap_or_else(|| "(?)".into());
            let (candidate, reason) = match (hot_by_calls || hot_by_time, stable) {
                _ if p.line == 0 => (
                    false,
                    "top level: runs once; only its loops can tier up (OSR)".to_string(),
                ),
                (true, true) => {
                    let why = if hot_by_calls {
                        format!("{calls} calls > {}", thresholds.hot_calls)
                    } else {
                        format!(
                            "{:.1}% of the time > {}%",
                            percent.unwrap_or(0.0),
                            thresholds.hot_percent
                        )
                    };
                    (
                        true,
                        format!(
                            "compile for {top}: hot ({why}), stable ({stability:.2} > {:.2})",
                            thresholds.stable
                        ),
                    )
                }
                (true, false) => (
                    false,
                    format!(
                        "unstable: stability {stability:.2} <= {:.2} (would need a generic compile)",
                        thresholds.stable
                    ),
                ),
                (false, _) => (
                    false,
                    match percent {
                        Some(pc) => format!(
                            "cold: {calls} call{} <= {}, {pc:.1}% of the time <= {}%",
                            if calls == 1 { "" } else { "s" },
                            thresholds.hot_calls,
                            thresholds.hot_percent
                        ),
                        None => format!(
                            "cold: {calls} call{} <= {}",
                            if calls == 1 { "" } else { "s" },
                            thresholds.hot_calls
                        ),
                    },
                ),
            };
            functions.push(FunctionReport {
                name,
                line: p.line,
                calls,
                total: c.total_time.get(),
                self_time: c.self_time.get(),
                percent,
                stability,
                signatures,
                other_signatures: c.other_sigs.get(),
                return_types: type_bits_text(c.return_types.get()),
                candidate,
                reason,
                tier: if jit_on {
                    crate::jit::tier_of(&p)
                } else {
                    "vm (the JIT was off)".to_string()
                },
            });
        }
        if timed {
            functions.sort_by(|a, b| b.total.cmp(&a.total).then(b.calls.cmp(&a.calls)));
        } else {
            functions.sort_by_key(|f| std::cmp::Reverse(f.calls));
        }
        loops.sort_by_key(|l| std::cmp::Reverse(l.iterations));
        Report {
            timed,
            run_time,
            thresholds,
            functions,
            loops,
        }
    }

    fn signature_list(f: &FunctionReport) -> String {
        let mut parts: Vec<String> = f
            .signatures
            .iter()
            .map(|s| {
                format!(
                    "{} {:.0}%",
                    s.signature,
                    100.0 * s.calls as f64 / f.calls as f64
                )
            })
            .collect();
        if f.other_signatures > 0 {
            parts.push(format!(
                "other {:.0}%",
                100.0 * f.other_signatures as f64 / f.calls as f64
            ));
        }
        parts.join(", ")
    }

    /// The human-readable report.
    pub fn text(&self, color: bool) -> String {
        let mut out = String::new();
        let head = |s: &str| -> String {
            if color {
                s.bold().to_string()
            } else {
                s.to_string()
            }
        };
        let mark = |ok: bool, s: &str| -> String {
            match (color, ok) {
                (true, true) => s.green().to_string(),
                (true, false) => s.dimmed().to_string(),
                _ => s.to_string(),
            }
        };
        if self.timed {
            let _ = writeln!(
                out,
                "{} (run took {})",
                head("Hot functions"),
                ms(self.run_time)
            );
            let _ = writeln!(
                out,
                "  {:<20} {:>10} {:>10} {:>10} {:>6} {:>9}  signatures",
                "function", "calls", "total", "self", "%run", "stability"
            );
        } else {
            let _ = writeln!(
                out,
                "{}",
                head("Hot functions (timing off: run with --profile for times)")
            );
            let _ = writeln!(
                out,
                "  {:<20} {:>10} {:>9}  signatures",
                "function", "calls", "stability"
            );
        }
        for f in &self.functions {
            let name = f.label();
            if self.timed {
                let _ = writeln!(
                    out,
                    "  {:<20} {:>10} {:>10} {:>10} {:>5.1}% {:>9.2}  {}",
                    name,
                    f.calls,
                    ms(f.total),
                    ms(f.self_time),
                    f.percent.unwrap_or(0.0),
                    f.stability,
                    Self::signature_list(f)
                );
            } else {
                let _ = writeln!(
                    out,
                    "  {:<20} {:>10} {:>9.2}  {}",
                    name,
                    f.calls,
                    f.stability,
                    Self::signature_list(f)
                );
            }
        }
        let _ = writeln!(out, "\n{}", head("Hot loops"));
        let _ = writeln!(
            out,
            "  {:<20} {:>5} {:>5} {:>10} {:>12} {:>12}",
            "function", "line", "loop", "entries", "iterations", "time/iter"
        );
        for l in &self.loops {
            let _ = writeln!(
                out,
                "  {:<20} {:>5} {:>5} {:>10} {:>12} {:>12}",
                l.function,
                l.line,
                l.id,
                l.entries,
                l.iterations,
                l.time_per_iteration.map(ns).unwrap_or_else(|| "-".into())
            );
        }
        let _ = writeln!(
            out,
            "\n{} (hot: > {} calls{}; stable: > {:.2})",
            head("JIT candidates"),
            self.thresholds.hot_calls,
            if self.timed {
                format!(" or > {}% of the time", self.thresholds.hot_percent)
            } else {
                String::new()
            },
            self.thresholds.stable
        );
        for f in &self.functions {
            let verdict = if f.candidate { "yes" } else { "no " };
            let _ = writeln!(
                out,
                "  {} {:<20} {}",
                mark(f.candidate, verdict),
                f.label(),
                mark(f.candidate, &f.reason)
            );
        }
        let _ = writeln!(
            out,
            "\n{}",
            head("Tiers (where each function ended, and why)")
        );
        for f in &self.functions {
            let _ = writeln!(out, "  {:<20} {}", f.label(), f.tier);
        }
        let _ = writeln!(
            out,
            "\n{} (> {} iterations per entry)",
            head("OSR candidates"),
            self.thresholds.osr_iterations
        );
        for l in &self.loops {
            let verdict = if l.osr_candidate { "yes" } else { "no " };
            let _ = writeln!(
                out,
                "  {} {:<20} {}",
                mark(l.osr_candidate, verdict),
                format!("{} line {}", l.function, l.line),
                mark(l.osr_candidate, &l.reason)
            );
        }
        out
    }

    /// The machine-readable report (schema in `docs/PROFILE_JSON.md`).
    pub fn json(&self) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "{{\"version\":1,\"timed\":{},\"run_time_ns\":{},\"thresholds\":{{\"hot_percent\":{},\"hot_calls\":{},\"stable\":{},\"osr_iterations\":{}}},\"functions\":[",
            self.timed,
            self.run_time.as_nanos(),
            self.thresholds.hot_percent,
            self.thresholds.hot_calls,
            self.thresholds.stable,
            self.thresholds.osr_iterations
        );
        for (i, f) in self.functions.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let sigs: Vec<String> = f
                .signatures
                .iter()
                .map(|s| {
                    format!(
                        "{{\"signature\":{},\"calls\":{}}}",
                        json_str(&s.signature),
                        s.calls
                    )
                })
                .collect();
            let _ = write!(
                out,
                "{{\"name\":{},\"line\":{},\"calls\":{},\"total_ns\":{},\"self_ns\":{},\"percent\":{},\"stability\":{:.6},\"signatures\":[{}],\"other_signatures\":{},\"return_types\":{},\"jit_candidate\":{},\"reason\":{},\"tier\":{}}}",
                json_str(&f.name),
                f.line,
                f.calls,
                f.total.as_nanos(),
                f.self_time.as_nanos(),
                f.percent.map_or("null".to_string(), |p| format!("{p:.3}")),
                f.stability,
                sigs.join(","),
                f.other_signatures,
                json_str(&f.return_types),
                f.candidate,
                json_str(&f.reason),
                json_str(&f.tier)
            );
        }
        out.push_str("],\"loops\":[");
        for (i, l) in self.loops.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "{{\"function\":{},\"line\":{},\"loop\":{},\"entries\":{},\"iterations\":{},\"ns_per_iteration\":{},\"osr_candidate\":{},\"reason\":{}}}",
                json_str(&l.function),
                l.line,
                l.id,
                l.entries,
                l.iterations,
                l.time_per_iteration
                    .map_or("null".to_string(), |d| format!("{:.3}", d.as_secs_f64() * 1e9)),
                l.osr_candidate,
                json_str(&l.reason)
            );
        }
        out.push_str("]}\n");
        out
    }
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
