//! Thousands of random, truncated and mutated inputs through the lexer, parser, resolver
//! and every tier: none may panic, and every tier must print the same bytes and fail with
//! the same error at the same place. Each run has a small recursion limit and a watchdog
//! that interrupts endless loops, so a mutation that removes `i += 1` cannot hang the test.

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ruchy_jit::error::ErrorKind;

use ruchy_jit::session::{Options, Session, Tier};

/// A tiny deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn corpus() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/programs");
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("tests/programs") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "ruchy") {
            let text = std::fs::read_to_string(p).expect("read");
            // Programs that say so are too costly to mutate thousands of times.
            if !text.contains("// fuzz: skip") {
                out.push(text);
            }
        }
    }
    out.sort();
    out
}

const FRAGMENTS: &[&str] = &[
    "fun",
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    "let",
    "x",
    "=",
    "+",
    "-",
    "*",
    "/",
    "%",
    "**",
    "&&",
    "||",
    "|",
    "if",
    "else",
    "while",
    "loop",
    "for",
    "in",
    "..",
    "..=",
    "break",
    "continue",
    "return",
    "\"s\"",
    "f\"{x}\"",
    "1",
    "0",
    "-1",
    "9223372036854775807",
    "2.5",
    "nil",
    "true",
    ";",
    ",",
    ".",
    "push",
    "len",
    "println",
    "'l:",
    "?",
    ":",
    "<<",
    ">>",
    "~",
    "!",
    "==",
    "<",
    "\n",
    " ",
    "/*",
    "*/",
    "#",
    "0x",
    "r\"",
    "'",
    "\\",
];

fn mutate(rng: &mut Rng, src: &str) -> String {
    let mut bytes = src.as_bytes().to_vec();
    match rng.below(4) {
        0 => bytes.truncate(rng.below(bytes.len() + 1)),
        1 => {
            for _ in 0..1 + rng.below(4) {
                if !bytes.is_empty() {
                    let i = rng.below(bytes.len());
                    const NOISE: &[u8] = b" (){}[];=+-*/<>!&|^~.,:?\"'#0123456789xyn\n";
                    bytes[i] = NOISE[rng.below(NOISE.len())];
                }
            }
        }
        2 => {
            let i = rng.below(bytes.len() + 1);
            let frag = FRAGMENTS[rng.below(FRAGMENTS.len())];
            bytes.splice(i..i, frag.bytes());
        }
        _ => {
            let n = 1 + rng.below(40);
            bytes = (0..n)
                .flat_map(|_| {
                    let f = FRAGMENTS[rng.below(FRAGMENTS.len())];
                    format!("{f} ").into_bytes()
                })
                .collect();
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Captures a session's output.
#[derive(Clone, Default)]
struct Captured(Rc<RefCell<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What a run did: its output and its error (message and location), or `None` when the
/// watchdog had to interrupt it (then its output depends on timing).
type Outcome = Option<(Vec<u8>, Option<(String, u32, u32)>)>;

/// An engine configuration: a tier, and for `auto` low thresholds (functions compile at
/// their second call, loops enter compiled code after one iteration) so that random
/// programs move between the VM and compiled code mid-run.
#[derive(Clone, Copy)]
struct Config {
    tier: Tier,
    eager_tiering: bool,
}

impl Config {
    fn name(self) -> String {
        match self.eager_tiering {
            true => format!("{} --jit-threshold 1 --osr-threshold 1", self.tier.name()),
            false => self.tier.name().to_string(),
        }
    }
}

/// Runs one input on a fresh session; panics propagate to the caller.
fn run_one(src: &str, config: Config) -> Outcome {
    let mut options = Options {
        tier: config.tier,
        max_depth: 2_000,
        ..Options::default()
    };
    if config.eager_tiering {
        options.jit.call_threshold = 1;
        options.jit.osr_threshold = 1;
    }
    let src = src.to_string();
    ruchy_jit::stack::run_with_stack(64 << 20, move || {
        let out = Captured::default();
        let mut session = Session::new(&options, Box::new(out.clone())).expect("tier");
        let flag = session.limits.interrupt.clone();
        let watchdog = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            flag.store(true, Ordering::Relaxed);
        });
        let result = session.run_program("fuzz.ruchy", &src);
        drop(watchdog);
        let error = match result {
            Ok(_) => None,
            Err(e) if e.kind == ErrorKind::Interrupted => return None,
            Err(e) => Some((e.kind.to_string(), e.span.lo, e.span.hi)),
        };
        let bytes = out.0.borrow().clone();
        Some((bytes, error))
    })
}

#[test]
fn random_and_mutated_inputs_never_panic_and_every_tier_agrees() {
    let corpus = corpus();
    assert!(!corpus.is_empty());
    // A fixed seed in CI; `RUCHY_FUZZ_SEED` and `RUCHY_FUZZ_COUNT` for longer runs.
    let seed = std::env::var("RUCHY_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_abcd_ef01_u64);
    let count: usize = std::env::var("RUCHY_FUZZ_COUNT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    let mut rng = Rng(seed.max(1));
    let tiers: Vec<Config> = [Tier::Ast, Tier::Vm, Tier::Jit, Tier::Auto]
        .into_iter()
        .filter(|t| t.available().is_ok())
        .map(|tier| Config {
            tier,
            eager_tiering: false,
        })
        .chain(Tier::Auto.available().is_ok().then_some(Config {
            tier: Tier::Auto,
            eager_tiering: true,
        }))
        .collect();
    let mut compared = 0;
    for i in 0..count {
        let base = &corpus[rng.below(corpus.len())];
        let input = mutate(&mut rng, base);
        let mut outcomes = Vec::new();
        for &tier in &tiers {
            let run_input = input.clone();
            let result = std::panic::catch_unwind(move || run_one(&run_input, tier));
            match result {
                Ok(outcome) => outcomes.push((tier, outcome)),
                Err(_) => panic!("input #{i} panicked under --tier {}:\n{input}", tier.name()),
            }
        }
        let Some((first_tier, Some(first))) = outcomes.first().cloned() else {
            continue;
        };
        for (tier, outcome) in &outcomes[1..] {
            let Some(other) = outcome else { continue };
            assert!(
                *other == first,
                "input #{i}: --tier {} and --tier {} differ\n--- program\n{input}\n--- {}\n{:?}\n--- {}\n{:?}",
                first_tier.name(),
                tier.name(),
                first_tier.name(),
                (String::from_utf8_lossy(&first.0), &first.1),
                tier.name(),
                (String::from_utf8_lossy(&other.0), &other.1),
            );
        }
        compared += 1;
    }
    // Most mutants are syntax errors; enough must run for the comparison to mean something.
    assert!(
        compared > count / 3,
        "only {compared} programs were compared"
    );
}
