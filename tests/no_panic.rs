//! Thousands of random, truncated and mutated inputs through the lexer, parser, resolver
//! and every tier: none may panic, and every tier must print the same bytes and fail with
//! the same error at the same place. Each run has a small recursion limit and a watchdog
//! that interrupts endless loops, so a mutation that removes `i += 1` cannot hang the test.

mod common;

use std::time::Duration;

use common::{run_one, Config, Rng};
use ruchy_jit::session::Tier;

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
    match rng.below(5) {
        0 => bytes.truncate(rng.below(bytes.len() + 1)),
        4 => {
            // Raw bytes, invalid UTF-8 included (it becomes U+FFFD, as when a file is
            // read lossily), spliced into the program.
            let i = rng.below(bytes.len() + 1);
            let noise: Vec<u8> = (0..1 + rng.below(12)).map(|_| rng.next() as u8).collect();
            bytes.splice(i..i, noise);
        }
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
    let mut rng = Rng::new(seed);
    let tiers: Vec<Config> = [
        Config::plain(Tier::Ast),
        Config::plain(Tier::Vm),
        Config::plain(Tier::Jit),
        Config::plain(Tier::Auto),
        Config {
            thresholds: 1,
            tier2: Some(1),
            ..Config::plain(Tier::Auto)
        },
    ]
    .into_iter()
    .filter(|c| c.available())
    .collect();
    let mut compared = 0;
    for i in 0..count {
        let base = &corpus[rng.below(corpus.len())];
        let input = mutate(&mut rng, base);
        let mut outcomes = Vec::new();
        for &tier in &tiers {
            let run_input = input.clone();
            let result = std::panic::catch_unwind(move || {
                run_one(&run_input, tier, 2_000, Duration::from_millis(200))
            });
            match result {
                Ok(outcome) => outcomes.push((tier, outcome)),
                Err(_) => panic!("input #{i} panicked under {}:\n{input}", tier.name()),
            }
        }
        let Some((first_tier, Some(first))) = outcomes.first().cloned() else {
            continue;
        };
        for (tier, outcome) in &outcomes[1..] {
            let Some(other) = outcome else { continue };
            assert!(
                *other == first,
                "input #{i}: {} and {} differ\n--- program\n{input}\n--- {}\n{:?}\n--- {}\n{:?}",
                first_tier.name(),
                tier.name(),
                first_tier.name(),
                &first,
                tier.name(),
                other,
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

/// The front end alone (lexer, parser, resolver) on many more inputs: random bytes,
/// deep nesting and mutated programs. Nothing panics and nothing hangs: each input is
/// handled in well under a second (a hang would show as a timeout here).
#[test]
fn the_front_end_takes_any_input() {
    let corpus = corpus();
    let mut rng = Rng::new(0xf00d_cafe_1234_5678);
    let mut inputs: Vec<String> = Vec::new();
    for _ in 0..20_000 {
        let base = &corpus[rng.below(corpus.len())];
        inputs.push(mutate(&mut rng, base));
    }
    for _ in 0..2_000 {
        let bytes: Vec<u8> = (0..rng.below(200)).map(|_| rng.next() as u8).collect();
        inputs.push(String::from_utf8_lossy(&bytes).into_owned());
    }
    for open in [
        "(", "[", "{", "-", "!", "if x {", "f(", "[[", "\"", "/*", "|x| ",
    ] {
        inputs.push(open.repeat(50_000));
    }
    let options = ruchy_jit::session::Options {
        tier: Tier::Vm,
        ..Default::default()
    };
    for input in inputs {
        let options = options.clone();
        let started = std::time::Instant::now();
        let text = input.clone();
        // The stack `ruchy` itself runs on.
        let result = ruchy_jit::stack::run_with_stack(64 << 20, move || {
            std::panic::catch_unwind(move || {
                let mut session =
                    ruchy_jit::session::Session::new(&options, Box::new(std::io::sink()))
                        .expect("session");
                let _ = session.compile("fuzz.ruchy", &text);
            })
        });
        let shown: String = input.chars().take(300).collect();
        assert!(result.is_ok(), "the front end panicked on:\n{shown}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the front end took {:?} on:\n{shown}",
            started.elapsed()
        );
    }
}

/// A file that is not UTF-8 is a syntax error at its first bad byte (exit code 1), not a
/// failure to read it.
#[test]
fn a_file_that_is_not_utf8_is_a_syntax_error_with_its_location() {
    let dir = std::env::temp_dir().join(format!("ruchy-utf8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("bad.ruchy");
    std::fs::write(&file, b"println(1)\nlet x = \"a\xffb\"\n").expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ruchy"))
        .arg("run")
        .arg(&file)
        .env("NO_COLOR", "1")
        .output()
        .expect("run ruchy");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not valid UTF-8 (byte 0xff)"), "{stderr}");
    assert!(stderr.contains("bad.ruchy:2:11"), "{stderr}");
    assert!(stderr.contains("\n  |           ^\n"), "{stderr}");
}
