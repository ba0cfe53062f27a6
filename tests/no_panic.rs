//! Thousands of random, truncated and mutated inputs through the lexer, parser, resolver
//! and tree-walker: none may panic. Each run has a small recursion limit and a watchdog
//! that interrupts endless loops, so a mutation that removes `i += 1` cannot hang the test.

use std::sync::atomic::Ordering;
use std::time::Duration;

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
            out.push(std::fs::read_to_string(p).expect("read"));
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

/// Runs one input on a fresh session; panics propagate to the caller.
fn run_one(src: &str, tier: Tier) {
    let options = Options {
        tier,
        max_depth: 2_000,
        ..Options::default()
    };
    let src = src.to_string();
    ruchy_jit::stack::run_with_stack(64 << 20, move || {
        let mut session = Session::new(&options, Box::new(std::io::sink())).expect("tier");
        let flag = session.limits.interrupt.clone();
        let watchdog = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            flag.store(true, Ordering::Relaxed);
        });
        let _ = session.run_program("fuzz.ruchy", &src);
        drop(watchdog);
    });
}

#[test]
fn random_and_mutated_inputs_never_panic() {
    let corpus = corpus();
    assert!(!corpus.is_empty());
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let tiers: Vec<Tier> = [Tier::Ast, Tier::Vm, Tier::Jit, Tier::Auto]
        .into_iter()
        .filter(|t| t.available().is_ok())
        .collect();
    for i in 0..3000 {
        let base = &corpus[rng.below(corpus.len())];
        let input = mutate(&mut rng, base);
        let tier = tiers[i % tiers.len()];
        let input_for_report = input.clone();
        let result = std::panic::catch_unwind(move || run_one(&input, tier));
        assert!(
            result.is_ok(),
            "input #{i} panicked under --tier {}:\n{input_for_report}",
            tier.name()
        );
    }
}
