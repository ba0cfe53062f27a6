//! What the fuzz and stress tests share: a deterministic random generator, output capture,
//! and running one program in-process under one engine configuration with a watchdog.

#![allow(dead_code)]

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;
use std::time::Duration;

use ruchy_jit::error::ErrorKind;
use ruchy_jit::session::{Options, Session, Tier};

/// A tiny deterministic generator (xorshift), so failures reproduce from their seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    /// True with probability `percent` in 100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as usize) as i64
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Captures a session's output.
#[derive(Clone, Default)]
pub struct Captured(pub Rc<RefCell<Vec<u8>>>);

impl Captured {
    /// Takes what was printed so far.
    pub fn take(&self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut *self.0.borrow_mut())).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An engine configuration: a tier; for `auto` optionally low thresholds (functions
/// compile at their second call, loops enter compiled code after a few iterations), so
/// programs move between the VM and compiled code mid-run; and `--deopt-stress`.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    pub tier: Tier,
    /// `--jit-threshold` and `--osr-threshold` (0: the defaults).
    pub thresholds: u64,
    pub deopt_stress: u32,
    /// `--tier2-threshold` (`None`: the default).
    pub tier2: Option<u64>,
}

impl Config {
    pub const fn plain(tier: Tier) -> Config {
        Config {
            tier,
            thresholds: 0,
            deopt_stress: 0,
            tier2: None,
        }
    }

    /// The command line that reproduces this configuration.
    pub fn name(self) -> String {
        let mut name = format!("--tier {}", self.tier.name());
        if self.thresholds > 0 {
            name += &format!(" --jit-threshold {0} --osr-threshold {0}", self.thresholds);
        }
        if let Some(n) = self.tier2 {
            name += &format!(" --tier2-threshold {n}");
        }
        if self.deopt_stress > 0 {
            name += &format!(" --deopt-stress {}", self.deopt_stress);
        }
        name
    }

    pub fn available(self) -> bool {
        self.tier.available().is_ok()
    }
}

/// What a run did: its output and its error (kind and location), or `None` when the
/// watchdog had to interrupt it (then its output depends on timing).
pub type Outcome = Option<(String, Option<(String, u32, u32)>)>;

/// Runs one program on a fresh session (recursion limit `max_depth`), interrupting it
/// after `watchdog`; a panic propagates to the caller.
pub fn run_one(src: &str, config: Config, max_depth: usize, watchdog: Duration) -> Outcome {
    let mut options = Options {
        tier: config.tier,
        max_depth,
        ..Options::default()
    };
    if config.thresholds > 0 {
        options.jit.call_threshold = config.thresholds;
        options.jit.osr_threshold = config.thresholds;
    }
    options.jit.deopt_stress = config.deopt_stress;
    if let Some(n) = config.tier2 {
        options.jit.tier2_threshold = n;
    }
    let src = src.to_string();
    ruchy_jit::stack::run_with_stack(64 << 20, move || {
        let out = Captured::default();
        let mut session = Session::new(&options, Box::new(out.clone())).expect("tier");
        let flag = session.limits.interrupt.clone();
        let (cancel, cancelled) = std::sync::mpsc::channel::<()>();
        let timer = std::thread::spawn(move || {
            if cancelled.recv_timeout(watchdog).is_err() {
                ruchy_jit::limits::request_interrupt(&flag);
            }
        });
        let result = session.run_program("fuzz.ruchy", &src);
        let _ = cancel.send(());
        let _ = timer.join();
        let error = match result {
            Ok(_) => None,
            Err(e) if e.kind == ErrorKind::Interrupted => return None,
            Err(e) => Some((e.kind.to_string(), e.span.lo, e.span.hi)),
        };
        Some((out.take(), error))
    })
}

/// A program in a temporary file of its own, removed when dropped. The tests of one binary
/// run side by side as threads of one process, so the pid alone does not make a name
/// unique: a counter does (two tests once shared a file, and one deleted it under the
/// other).
pub struct TempProgram(std::path::PathBuf);

impl TempProgram {
    /// The file's name ends with `name` (error messages show it).
    pub fn new(name: &str, text: &str) -> TempProgram {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let file = std::env::temp_dir().join(format!("ruchy-{}-{n}-{name}", std::process::id()));
        std::fs::write(&file, text).expect("write program");
        TempProgram(file)
    }

    pub fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temp path")
    }
}

impl Drop for TempProgram {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs `program` (written to a temporary file whose name ends with `name`) with
/// `ruchy run FILE args`; returns stdout, stderr and the exit code.
pub fn ruchy_run(args: &[&str], name: &str, program: &str) -> (String, String, i32) {
    let file = TempProgram::new(name, program);
    ruchy(&[&["run", file.path()], args].concat())
}

/// Runs the `ruchy` binary with `args` (no color); returns stdout, stderr and the exit code.
pub fn ruchy(args: &[&str]) -> (String, String, i32) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ruchy"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run ruchy");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

/// Starts `ruchy repl ARGS` with its standard streams piped (no color).
pub fn spawn_repl(args: &[&str]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_ruchy"))
        .arg("repl")
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the REPL")
}
