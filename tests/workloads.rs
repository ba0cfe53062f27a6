//! The eight workloads of `../shared/bench/` print the same checksums as their C twins
//! (the figures PEERS.md gives for C), at full size, under every built tier.

use std::process::Command;

use ruchy_jit::session::Tier;

const CHECKSUMS: [(&str, &str); 8] = [
    ("fib", "9227465\n"),
    ("loop", "29999998\n"),
    ("nested", "294\n"),
    ("tak", "11\n"),
    ("mandel", "7560780\n"),
    ("sieve", "392490\n"),
    ("strcat", "37500000\n"),
    ("poly", "5985000000\n933933802.5\n"),
];

#[test]
fn every_workload_prints_its_c_checksum_in_every_tier() {
    let bench = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/bench");
    for tier in [Tier::Ast, Tier::Vm, Tier::Jit, Tier::Auto] {
        if tier.available().is_err() {
            continue;
        }
        for (name, want) in CHECKSUMS {
            let file = format!("{bench}/{name}/{name}.ruchy");
            let out = Command::new(env!("CARGO_BIN_EXE_ruchy"))
                .args(["run", &file, "--tier", tier.name()])
                .output()
                .expect("run ruchy");
            assert!(
                out.status.success(),
                "{name} failed under --tier {}",
                tier.name()
            );
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                want,
                "{name} under --tier {}",
                tier.name()
            );
        }
    }
}
