//! Differential fuzzing across tiers: random programs (see `generator/`) run under the
//! tree-walker, the VM, the JIT (tier 1 and tier 2), tiering with low thresholds, and with
//! `--deopt-stress`;
//! any difference in output, error kind or error location fails the test and prints the
//! program shrunk to the lines that still show the difference, with the two configurations
//! that disagree.
//!
//! A fixed seed in CI (`RUCHY_DIFF_COUNT` programs, default 3000); `scripts/fuzz.sh` runs
//! long campaigns with fresh seeds (`RUCHY_DIFF_SEED`).

mod common;
mod generator;

use std::time::Duration;

use common::{run_one, Config, Outcome};
use ruchy_jit::session::Tier;

/// The recursion limit of these runs (the generator calls some recursions past it).
const MAX_DEPTH: usize = 2_000;

/// Long enough for every generated program in every tier; a run that hits it is left out
/// of the comparison (its output would depend on timing).
const WATCHDOG: Duration = Duration::from_secs(5);

fn configs() -> Vec<Config> {
    let auto = |thresholds, deopt_stress, tier2| Config {
        tier: Tier::Auto,
        thresholds,
        deopt_stress,
        tier2,
    };
    let jit = |deopt_stress, tier2| Config {
        tier: Tier::Jit,
        thresholds: 0,
        deopt_stress,
        tier2,
    };
    [
        Config::plain(Tier::Ast),
        Config::plain(Tier::Vm),
        jit(0, None),
        jit(1, None),
        jit(3, None),
        jit(0, Some(0)),
        jit(2, Some(0)),
        auto(1, 0, None),
        auto(2, 2, Some(2)),
        auto(0, 0, None),
    ]
    .into_iter()
    .filter(|c| c.available())
    .collect()
}

/// Two configurations that disagree, with what each did.
type Disagreement = (Config, String, Config, String);

/// What every configuration did on `program`, or the first two that disagree (a panic
/// counts as an outcome of its own).
fn run_all(program: &str, configs: &[Config]) -> Result<Outcome, Disagreement> {
    let mut first: Option<(Config, Outcome)> = None;
    for &config in configs {
        let text = program.to_string();
        let outcome =
            match std::panic::catch_unwind(move || run_one(&text, config, MAX_DEPTH, WATCHDOG)) {
                Ok(outcome) => outcome,
                Err(_) => Some(("PANIC".to_string(), None)),
            };
        if outcome.is_none() {
            continue;
        }
        match &first {
            None => first = Some((config, outcome)),
            Some((c, o)) if *o != outcome => {
                return Err((*c, describe(o), config, describe(&outcome)));
            }
            Some(_) => {}
        }
    }
    Ok(first.and_then(|f| f.1))
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        None => "(interrupted by the watchdog)".into(),
        Some((out, None)) => format!("stdout:\n{out}(no error)"),
        Some((out, Some((kind, lo, hi)))) => {
            format!("stdout:\n{out}error: {kind} at bytes {lo}..{hi}")
        }
    }
}

/// The line ranges the shrinker tries to delete: each block (a line ending in `{` through
/// its closing line), then each single line.
fn deletable(lines: &[String]) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        if !line.trim_end().ends_with('{') {
            continue;
        }
        let mut depth = 0i32;
        for (end, l) in lines.iter().enumerate().skip(start) {
            depth += l.matches('{').count() as i32 - l.matches('}').count() as i32;
            if depth <= 0 {
                ranges.push((start, end + 1));
                break;
            }
        }
    }
    ranges.sort_by_key(|r| std::cmp::Reverse(r.1 - r.0));
    ranges.extend((0..lines.len()).map(|i| (i, i + 1)));
    ranges
}

/// Deletes blocks and lines for as long as the smaller program still shows a
/// disagreement (any, not necessarily the same one).
fn shrink(program: &str, configs: &[Config]) -> String {
    let mut lines: Vec<String> = program.lines().map(String::from).collect();
    loop {
        let mut progress = false;
        for (start, end) in deletable(&lines) {
            if end > lines.len() {
                continue;
            }
            let mut candidate = lines.clone();
            candidate.drain(start..end);
            let text = candidate.join("\n") + "\n";
            if run_all(&text, configs).is_err() {
                lines = candidate;
                progress = true;
                break;
            }
        }
        if !progress {
            return lines.join("\n") + "\n";
        }
    }
}

#[test]
fn random_programs_print_the_same_in_every_tier() {
    let seed: u64 = std::env::var("RUCHY_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x00d1_ff00_5eed_0001);
    let count: u64 = std::env::var("RUCHY_DIFF_COUNT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3_000);
    let configs = configs();
    let mut errors = 0;
    let mut kinds: std::collections::BTreeMap<String, u64> = Default::default();
    for i in 0..count {
        let program_seed = seed.wrapping_mul(6364136223846793005).wrapping_add(i);
        let program = generator::Generator::new(program_seed).program();
        if std::env::var_os("RUCHY_DIFF_PRINT").is_some() {
            eprintln!("--- program #{i}\n{program}");
        }
        let outcome = run_all(&program, &configs);
        if let Err((a, what_a, b, what_b)) = outcome {
            let small = shrink(&program, &configs);
            let (a2, what_a2, b2, what_b2) =
                run_all(&small, &configs).expect_err("the shrunk program still disagrees");
            panic!(
                "program #{i} (RUCHY_DIFF_SEED={seed}): {} and {} disagree\n\
                 --- the program shrunk ({} of {} lines):\n{small}\n\
                 --- {}:\n{what_a2}\n--- {}:\n{what_b2}\n\n\
                 --- the whole program:\n{program}\n--- {}:\n{what_a}\n--- {}:\n{what_b}",
                a.name(),
                b.name(),
                small.lines().count(),
                program.lines().count(),
                a2.name(),
                b2.name(),
                a.name(),
                b.name(),
            );
        }
        if std::env::var_os("RUCHY_DIFF_PRINT").is_some() {
            if let Ok(o) = &outcome {
                eprintln!("--- outcome of #{i}: {}", describe(o));
            }
        }
        if let Ok(Some((_, Some((kind, _, _))))) = outcome {
            errors += 1;
            *kinds.entry(kind).or_default() += 1;
        }
    }
    eprintln!(
        "{count} programs agreed under {} configurations; {errors} ended in an error: {kinds:?}",
        configs.len()
    );
    // The generator must write mostly programs that run to the end: those test the most.
    assert!(
        errors * 2 < count,
        "{errors} of {count} programs ended in an error"
    );
}
