//! Range analysis: the overflow checks a loop's bounds prove away.
//!
//! Ruchy's int arithmetic is checked (overflow is an error), so compiled code tests a flag
//! after every `+`, `-` and `*`. In a counting loop most of those tests can never fire:
//! in `while c <= n { .. c * c .. c = c + 1 }`, `c` stays within `[c0, n + 1]`, and if
//! `c0` and `n` are small, `c * c` and `c + 1` cannot overflow.
//!
//! Nothing is known about `c0` and `n` when the code is compiled, so the analysis
//! *assumes* that the values a loop's proofs rest on lie within `±BOUND`, and the loop's
//! entry checks that assumption once (a range guard, hoisted out of the loop). If it does
//! not hold, the code deoptimizes at the loop's entry: the VM runs the loop with every
//! check, and the function's next compilation makes no range assumptions at all.
//!
//! What the analysis knows inside a loop `L`:
//! - a register that no instruction of `L` writes (loop-invariant) lies within `±BOUND`,
//!   if `L`'s entry guards it;
//! - the induction variable of a counting loop lies within `[-BOUND, BOUND + step]`: a
//!   `while` whose header is `c <= n` or `c < n` (exit when false), where the only write
//!   of `c` in `L` is `c = c + step` (a positive immediate, or an invariant register the
//!   guard keeps within `[1, BOUND]`), outside any nested loop. Each iteration then adds
//!   the step once, after the header found `c <= n`, so `c <= n + step`; and `c` never
//!   drops below where it started. The guard checks `c`'s start and `n`;
//! - the variable of `for v in start..end` lies within `[-BOUND, BOUND - 1]` when the guard
//!   keeps the counter's start and `end` within `±BOUND`, and only the loop's header writes
//!   the variable and the counter;
//! - an accumulator of a loop whose iterations are bounded lies within `[-BOUND, BOUND]`
//!   widened by `2 * BOUND + 1` times what one iteration can add: a register whose only
//!   writes in `L` are `s = s + x` and `s = s - x` (outside nested loops), where the
//!   interval of each `x` is known without `s`. The bound on iterations holds for a
//!   `for` over an int range, and for a counting `while` whose increment runs on every
//!   iteration (nothing between the header and the increment jumps past it but out of the
//!   loop; a body jumps backwards only in its nested loops, so each write runs at most
//!   once per iteration). The guard checks `s` at the entry, like the others;
//! - facts of enclosing loops about registers `L` does not write;
//! - within a straight run of instructions, the intervals of values computed from those
//!   (temporaries, constants, copies);
//! - after a compare-and-branch on ints, what the branch taken says about its operands, in
//!   the run of instructions that only that edge reaches: past `if n < 2 { return n }`,
//!   `n >= 2`, so `n - 1` and `n - 2` cannot overflow. These facts are exact (no guard),
//!   and they also hold outside loops: fib's and tak's subtractions lose their checks.
//!
//! An `Add`, `Sub` or `Mul` of ints whose operands' intervals keep the exact result
//! within `i64` needs no check. A remainder by a constant `k` lies within `±(|k| - 1)`,
//! whatever it divides. Intervals are computed in `i128`, so the analysis itself
//! cannot overflow.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::bytecode::dataflow::{defs, successors};
use crate::bytecode::op::{Op, Reg};
use crate::bytecode::proto::Proto;
use crate::jit::infer::{Env, Plan, Ty, Types};

/// The range a loop entry's guard keeps an assumed value in: `[-BOUND, BOUND]`. Products
/// of two such values, and sums of a few of those, stay far from `i64`'s limits.
pub const BOUND: i64 = 1 << 30;

/// One register a loop entry checks, and the interval it must lie in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Check {
    pub reg: Reg,
    pub lo: i64,
    pub hi: i64,
}

/// A loop whose entry guards some registers.
#[derive(Clone, Debug)]
pub struct LoopGuard {
    /// The `LOOPENTER` instruction, where the checks run (and the deopt lands).
    pub enter: usize,
    /// The loop's first instruction after `LOOPENTER`, and its `BACKEDGE`.
    pub header: usize,
    pub back: usize,
    pub checks: Vec<Check>,
}

/// The analysis' result for one compilation.
#[derive(Default)]
pub struct Ranges {
    /// Arithmetic instructions (by pc) that cannot overflow.
    pub unchecked: HashSet<usize>,
    /// How many of them lie outside every loop (proven by branch tests and constants).
    pub outside_loops: usize,
    /// Loops with range guards, outermost first.
    pub guards: Vec<LoopGuard>,
}

impl Ranges {
    /// The checks to run at the `LOOPENTER` at `pc`.
    pub fn checks_at(&self, enter: usize) -> &[Check] {
        self.guards
            .iter()
            .find(|g| g.enter == enter)
            .map_or(&[], |g| &g.checks)
    }

    /// The checks of every loop around `pc` (an OSR entry at a loop header skips their
    /// `LOOPENTER`s, so it runs them itself).
    pub fn checks_around(&self, pc: usize) -> Vec<Check> {
        let mut all: BTreeSet<Check> = BTreeSet::new();
        for g in &self.guards {
            if (g.header..=g.back).contains(&pc) {
                all.extend(g.checks.iter().copied());
            }
        }
        all.into_iter().collect()
    }
}

/// A closed interval of exact values.
#[derive(Clone, Copy, Debug)]
struct Interval {
    lo: i128,
    hi: i128,
}

impl Interval {
    fn fits_i64(self) -> bool {
        self.lo >= i64::MIN as i128 && self.hi <= i64::MAX as i128
    }
}

/// What is assumed of a register throughout a loop, and which loop's guard assumes it.
#[derive(Clone, Debug)]
struct Fact {
    range: Interval,
    /// The checks that must hold for the fact to be true.
    needs: Needs,
}

/// The checks (owner loop index, check) a fact rests on.
type Needs = Vec<(usize, Check)>;

/// A known interval during the scan, with the checks it rests on.
type Known = (Interval, Needs);

/// What holds on one edge of a branch: registers and the intervals they lie in.
type EdgeFacts = Vec<(Reg, Interval)>;

/// A register a loop adds to (see `accumulators`): what one iteration can add to it, and
/// the checks that rests on.
struct Accumulator {
    reg: Reg,
    per_iteration: Interval,
    needs: Needs,
}

struct LoopInfo {
    enter: usize,
    header: usize,
    back: usize,
    parent: Option<usize>,
}

/// Finds the arithmetic that loop bounds and branch tests prove cannot overflow, and the
/// guards each loop entry needs for that. For an OSR entry (`env.osr`), which skips the
/// entries of the loops around its header, those loops' guarded registers must be ints
/// there too. Without `env.range_guards` (a guard failed before), loops assume nothing,
/// and only exact facts (branch tests, constants) remove checks.
pub fn analyze(env: &Env, types: &Types) -> Ranges {
    let code = &env.proto.code;
    let all_loops = find_loops(code);
    let loops: &[LoopInfo] = if env.range_guards { &all_loops } else { &[] };
    let leaders = leaders(code, env.argc);
    let edges = edge_facts(env, types);
    let osr_header = env.osr.as_ref().map(|o| o.0);
    let int_at = |pc: usize, r: Reg| {
        types.states[pc]
            .as_deref()
            .is_some_and(|s| s[r as usize] == Ty::Int)
    };
    let mut facts: Vec<HashMap<Reg, Fact>> = Vec::with_capacity(loops.len());
    let mut used: Vec<BTreeSet<Check>> = vec![BTreeSet::new(); loops.len()];
    let mut unchecked = HashSet::new();
    for (index, l) in loops.iter().enumerate() {
        let written: HashSet<Reg> = (l.header..=l.back)
            .flat_map(|pc| defs(&code[pc], env.proto))
            .collect();
        // A fact is only assumed where its guard can run, on an int: at this loop's
        // LOOPENTER, and at an OSR entry inside the loop (the LOOPENTER may then be
        // unreachable).
        let osr_inside = osr_header.is_some_and(|h| (l.header..=l.back).contains(&h));
        let entered = types.states[l.enter].is_some();
        let guardable = |r: Reg| {
            int_at(l.header, r)
                && (!entered || int_at(l.enter, r))
                && (!osr_inside || osr_header.is_some_and(|h| int_at(h, r)))
        };
        let mut mine: HashMap<Reg, Fact> = HashMap::new();
        if let Some(parent) = l.parent {
            for (r, f) in &facts[parent] {
                if !written.contains(r) {
                    mine.insert(*r, f.clone());
                }
            }
        }
        // The checks that bound the loop's iterations (to `2 * BOUND + 1`), if they are.
        let mut trips: Option<Needs> = None;
        if let Some(iv) = induction(env.proto, loops, index, &written) {
            // The checks the fact rests on: the variable's start, the bound (unless a
            // small constant) and the step (unless a positive constant).
            let mut needs = vec![(index, check(iv.reg, -BOUND, BOUND))];
            let mut ok = guardable(iv.reg);
            match iv.bound {
                Operand::Reg(n) => {
                    ok &= guardable(n);
                    needs.push((index, check(n, -BOUND, BOUND)));
                }
                Operand::Imm(v) => ok &= (-BOUND..=BOUND).contains(&v),
            }
            let step_hi = match iv.step {
                Operand::Imm(k) => k,
                Operand::Reg(s) => {
                    ok &= guardable(s);
                    needs.push((index, check(s, 1, BOUND)));
                    BOUND
                }
            };
            if ok {
                let range = Interval {
                    lo: -(BOUND as i128),
                    hi: BOUND as i128 + step_hi as i128,
                };
                if runs_every_iteration(code, l, iv.increment, env.argc) {
                    trips = Some(needs.clone());
                }
                mine.insert(iv.reg, Fact { range, needs });
            }
        }
        if let Some((var, base)) = for_range(env.proto, l) {
            // `for var in start..end`: var runs from the counter's start up to end - 1.
            let end = base + 1;
            if guardable(base) && guardable(end) {
                let needs = vec![
                    (index, check(base, -BOUND, BOUND)),
                    (index, check(end, -BOUND, BOUND)),
                ];
                let range = Interval {
                    lo: -(BOUND as i128),
                    hi: BOUND as i128 - 1,
                };
                trips.get_or_insert_with(|| needs.clone());
                mine.insert(var, Fact { range, needs });
            }
        }
        let own_pcs = own_instructions(loops, index);
        for &pc in &own_pcs {
            for r in operands(&code[pc]) {
                if !written.contains(&r) && !mine.contains_key(&r) && guardable(r) {
                    let c = check(r, -BOUND, BOUND);
                    let range = Interval {
                        lo: -(BOUND as i128),
                        hi: BOUND as i128,
                    };
                    mine.insert(
                        r,
                        Fact {
                            range,
                            needs: vec![(index, c)],
                        },
                    );
                }
            }
        }
        if let Some(trip_needs) = trips {
            // What each write of an accumulator adds is known from the other facts: a
            // first scan finds it.
            let addends = scan(env, types, &own_pcs, &leaders, &mine, &edges, |_, _| {});
            for acc in accumulators(env.proto, loops, index, &addends) {
                if mine.contains_key(&acc.reg) || !guardable(acc.reg) {
                    continue;
                }
                let max_iterations = 2 * BOUND as i128 + 1;
                let range = Interval {
                    lo: -(BOUND as i128) + max_iterations * acc.per_iteration.lo,
                    hi: BOUND as i128 + max_iterations * acc.per_iteration.hi,
                };
                if range.fits_i64() {
                    let mut needs = acc.needs;
                    needs.push((index, check(acc.reg, -BOUND, BOUND)));
                    needs.extend(trip_needs.iter().copied());
                    mine.insert(acc.reg, Fact { range, needs });
                }
            }
        }
        scan(
            env,
            types,
            &own_pcs,
            &leaders,
            &mine,
            &edges,
            |pc, needs| {
                unchecked.insert(pc);
                for (owner, c) in needs {
                    used[*owner].insert(*c);
                }
            },
        );
        facts.push(mine);
    }
    // The code outside every loop: only exact facts hold there.
    let outside: Vec<usize> = (0..code.len())
        .filter(|pc| !all_loops.iter().any(|l| (l.header..=l.back).contains(pc)))
        .collect();
    let mut outside_loops = 0;
    let no_facts = HashMap::new();
    scan(
        env,
        types,
        &outside,
        &leaders,
        &no_facts,
        &edges,
        |pc, _| {
            outside_loops += 1;
            unchecked.insert(pc);
        },
    );
    let guards = loops
        .iter()
        .zip(used)
        .filter(|(_, checks)| !checks.is_empty())
        .map(|(l, checks)| LoopGuard {
            enter: l.enter,
            header: l.header,
            back: l.back,
            checks: checks.into_iter().collect(),
        })
        .collect();
    Ranges {
        unchecked,
        outside_loops,
        guards,
    }
}

/// What a branch says about its int operands on an edge that is the only way into its
/// successor: by pc, the intervals registers lie in when execution arrives there. A
/// compare with an immediate bounds its register on both edges (`n < 2` taken: `n <= 1`;
/// not taken: `n >= 2`); a strict compare of two registers keeps each one unit from the
/// end of `i64` (`y < x`: `x > i64::MIN`, so `x - 1` cannot overflow).
fn edge_facts(env: &Env, types: &Types) -> HashMap<usize, EdgeFacts> {
    use Op::*;
    let code = &env.proto.code;
    let mut ways_in = vec![0usize; code.len() + 1];
    for (pc, op) in code.iter().enumerate() {
        for s in successors(op, pc, env.argc) {
            ways_in[s] += 1;
        }
    }
    let (min, max) = (i64::MIN as i128, i64::MAX as i128);
    let at_most = |hi: i128| Interval { lo: min, hi };
    let at_least = |lo: i128| Interval { lo, hi: max };
    let mut facts: HashMap<usize, EdgeFacts> = HashMap::new();
    for (pc, op) in code.iter().enumerate() {
        let Some(state) = types.states[pc].as_deref() else {
            continue;
        };
        let int = |r: Reg| state[r as usize] == Ty::Int;
        // (register, interval) pairs when the test holds (falls through), and when not.
        let (holds, fails): (EdgeFacts, EdgeFacts) = match *op {
            JumpIfNotLtI { a, imm, .. } if int(a) => {
                let k = imm as i128;
                (vec![(a, at_most(k - 1))], vec![(a, at_least(k))])
            }
            JumpIfNotLeI { a, imm, .. } if int(a) => {
                let k = imm as i128;
                (vec![(a, at_most(k))], vec![(a, at_least(k + 1))])
            }
            JumpIfNotGtI { a, imm, .. } if int(a) => {
                let k = imm as i128;
                (vec![(a, at_least(k + 1))], vec![(a, at_most(k))])
            }
            JumpIfNotGeI { a, imm, .. } if int(a) => {
                let k = imm as i128;
                (vec![(a, at_least(k))], vec![(a, at_most(k - 1))])
            }
            JumpIfNotEqI { a, imm, .. } if int(a) => {
                let k = imm as i128;
                (vec![(a, Interval { lo: k, hi: k })], vec![])
            }
            JumpIfNotNeI { a, imm, .. } if int(a) => {
                let k = imm as i128;
                (vec![], vec![(a, Interval { lo: k, hi: k })])
            }
            // a < b: a is below some int, b above one.
            JumpIfNotLt { a, b, .. } if int(a) && int(b) => {
                (vec![(a, at_most(max - 1)), (b, at_least(min + 1))], vec![])
            }
            JumpIfNotGe { a, b, .. } if int(a) && int(b) => {
                (vec![], vec![(a, at_most(max - 1)), (b, at_least(min + 1))])
            }
            // a > b.
            JumpIfNotGt { a, b, .. } if int(a) && int(b) => {
                (vec![(a, at_least(min + 1)), (b, at_most(max - 1))], vec![])
            }
            JumpIfNotLe { a, b, .. } if int(a) && int(b) => {
                (vec![], vec![(a, at_least(min + 1)), (b, at_most(max - 1))])
            }
            _ => continue,
        };
        let target = op.target().expect("a compare-and-branch has a target") as usize;
        if target == pc + 1 {
            continue;
        }
        for (to, known) in [(pc + 1, holds), (target, fails)] {
            if ways_in[to] == 1 && !known.is_empty() {
                facts.entry(to).or_default().extend(known);
            }
        }
    }
    facts
}

fn check(reg: Reg, lo: i64, hi: i64) -> Check {
    Check { reg, lo, hi }
}

/// Walks a loop's own instructions (or those outside every loop) in order, keeping the
/// intervals of the registers computed since the last join point, and what the branch
/// into each run says (`edges`); calls `proven` for each arithmetic instruction that
/// cannot overflow, with the checks its proof needs. Returns what was known of the
/// operands of each int `+` and `-` (by pc; left, right).
fn scan(
    env: &Env,
    types: &Types,
    pcs: &[usize],
    leaders: &HashSet<usize>,
    facts: &HashMap<Reg, Fact>,
    edges: &HashMap<usize, EdgeFacts>,
    mut proven: impl FnMut(usize, &[(usize, Check)]),
) -> HashMap<usize, [Option<Known>; 2]> {
    use Op::*;
    let code = &env.proto.code;
    let mut operands_known = HashMap::new();
    let mut known: HashMap<Reg, Known> = HashMap::new();
    let mut previous: Option<usize> = None;
    for &pc in pcs {
        // A join point, or what follows a nested loop or a jump: only the loop's
        // facts hold here.
        if leaders.contains(&pc) || previous.is_none_or(|p| p + 1 != pc) {
            known.clear();
        }
        previous = Some(pc);
        let Some(state) = types.states[pc].as_deref() else {
            known.clear();
            continue;
        };
        let lookup = |known: &HashMap<Reg, Known>, r: Reg| -> Option<Known> {
            if state[r as usize] != Ty::Int {
                return None;
            }
            known
                .get(&r)
                .cloned()
                .or_else(|| facts.get(&r).map(|f| (f.range, f.needs.clone())))
        };
        // The edge into this instruction narrows what is known (with the checks that
        // already rest on it, if any).
        for &(r, edge) in edges.get(&pc).map_or(&[][..], |v| &v[..]) {
            let narrowed = match lookup(&known, r) {
                Some((x, needs)) => (
                    Interval {
                        lo: x.lo.max(edge.lo),
                        hi: x.hi.min(edge.hi),
                    },
                    needs,
                ),
                None if state[r as usize] == Ty::Int => (edge, Vec::new()),
                None => continue,
            };
            known.insert(r, narrowed);
        }
        let op = code[pc];
        // What follows an instruction that never falls through is reached by jumps only
        // (a leader) or not at all: nothing computed here is known there.
        if !successors(&op, pc, env.argc).contains(&(pc + 1)) {
            previous = None;
        }
        let arith = match op {
            Add { dst, a, b } | Sub { dst, a, b } | Mul { dst, a, b } => {
                Some((dst, lookup(&known, a), lookup(&known, b)))
            }
            AddI { dst, a, imm } | SubI { dst, a, imm } | MulI { dst, a, imm } => {
                let k = imm as i128;
                let constant = (Interval { lo: k, hi: k }, Vec::new());
                Some((dst, lookup(&known, a), Some(constant)))
            }
            _ => None,
        };
        let native = || env.decide(pc, state).0 == Plan::Native;
        if let Some((_, x, y)) = &arith {
            operands_known.insert(pc, [x.clone(), y.clone()]);
        }
        match (arith, op) {
            (Some((dst, Some((x, mut needs)), Some((y, more)))), _) if native() => {
                let result = combine(op, x, y);
                if result.fits_i64() {
                    needs.extend(more);
                    proven(pc, &needs);
                    known.insert(dst, (result, needs));
                } else {
                    known.remove(&dst);
                }
            }
            (_, ModI { dst, a, imm }) if imm != 0 && state[a as usize] == Ty::Int && native() => {
                // Whatever the dividend, the remainder is smaller than the divisor.
                let k = (imm as i128).abs() - 1;
                known.insert(dst, (Interval { lo: -k, hi: k }, Vec::new()));
            }
            (_, LoadInt { dst, value }) => {
                let v = value as i128;
                known.insert(dst, (Interval { lo: v, hi: v }, Vec::new()));
            }
            (_, LoadConst { dst, k }) => match env.proto.const_values[k as usize] {
                crate::value::Value::Int(v) => {
                    let v = v as i128;
                    known.insert(dst, (Interval { lo: v, hi: v }, Vec::new()));
                }
                _ => {
                    known.remove(&dst);
                }
            },
            (_, Move { dst, src }) => match lookup(&known, src) {
                Some(k) => {
                    known.insert(dst, k);
                }
                None => {
                    known.remove(&dst);
                }
            },
            _ => {
                for r in defs(&op, env.proto) {
                    known.remove(&r);
                }
            }
        }
    }
    operands_known
}

/// The exact result interval of `x op y`.
fn combine(op: Op, x: Interval, y: Interval) -> Interval {
    use Op::*;
    match op {
        Add { .. } | AddI { .. } => Interval {
            lo: x.lo + y.lo,
            hi: x.hi + y.hi,
        },
        Sub { .. } | SubI { .. } => Interval {
            lo: x.lo - y.hi,
            hi: x.hi - y.lo,
        },
        _ => {
            let corners = [x.lo * y.lo, x.lo * y.hi, x.hi * y.lo, x.hi * y.hi];
            Interval {
                lo: *corners.iter().min().expect("four corners"),
                hi: *corners.iter().max().expect("four corners"),
            }
        }
    }
}

/// The registers an arithmetic instruction reads (the candidates for invariant facts).
fn operands(op: &Op) -> Vec<Reg> {
    use Op::*;
    match *op {
        Add { a, b, .. } | Sub { a, b, .. } | Mul { a, b, .. } => vec![a, b],
        AddI { a, .. } | SubI { a, .. } | MulI { a, .. } => vec![a],
        Move { src, .. } => vec![src],
        _ => vec![],
    }
}

enum Operand {
    Reg(Reg),
    Imm(i64),
}

/// A counting loop's induction variable: `reg` goes up by `step` while `reg <= bound`
/// (or `<`).
struct Induction {
    reg: Reg,
    bound: Operand,
    step: Operand,
    /// The pc of `reg = reg + step`.
    increment: usize,
}

fn induction(
    proto: &Proto,
    loops: &[LoopInfo],
    index: usize,
    written: &HashSet<Reg>,
) -> Option<Induction> {
    use Op::*;
    let code = &proto.code;
    let l = &loops[index];
    // The header's test, leaving the loop when it fails.
    let (reg, bound, exit) = match code[l.header] {
        JumpIfNotLe { a, b, target } | JumpIfNotLt { a, b, target } => (a, Operand::Reg(b), target),
        JumpIfNotGe { a, b, target } | JumpIfNotGt { a, b, target } => (b, Operand::Reg(a), target),
        JumpIfNotLeI { a, imm, target } | JumpIfNotLtI { a, imm, target } => {
            (a, Operand::Imm(imm as i64), target)
        }
        _ => return None,
    };
    if (exit as usize) <= l.back {
        return None;
    }
    if let Operand::Reg(n) = bound {
        if written.contains(&n) || n == reg {
            return None;
        }
    }
    // The one write of `reg` in the loop: `reg = reg + step`, not inside a nested loop.
    let writers: Vec<usize> = (l.header..=l.back)
        .filter(|&pc| defs(&code[pc], proto).contains(&reg))
        .collect();
    let [increment] = writers[..] else {
        return None;
    };
    if in_nested_loop(loops, index, increment) {
        return None;
    }
    let step = match code[increment] {
        AddI { dst, a, imm } if dst == reg && a == reg && imm > 0 => Operand::Imm(imm as i64),
        Add { dst, a, b } if dst == reg && a == reg && b != reg && !written.contains(&b) => {
            Operand::Reg(b)
        }
        Add { dst, a, b } if dst == reg && b == reg && a != reg && !written.contains(&a) => {
            Operand::Reg(a)
        }
        _ => return None,
    };
    Some(Induction {
        reg,
        bound,
        step,
        increment,
    })
}

/// Whether the instruction at `pc` in loop `l` runs on every iteration that passes the
/// header: nothing from the header to it jumps anywhere but forward up to it or out of the
/// loop (a `continue` goes to the back edge, past it), and nothing after it jumps back in
/// between.
fn runs_every_iteration(code: &[Op], l: &LoopInfo, pc: usize, argc: usize) -> bool {
    let before = (l.header + 1..pc).all(|at| {
        successors(&code[at], at, argc)
            .iter()
            .all(|&s| (at + 1..=pc).contains(&s) || s > l.back)
    });
    let after = (pc..l.back).all(|at| {
        successors(&code[at], at, argc)
            .iter()
            .all(|&s| !(l.header + 1..=pc).contains(&s))
    });
    before && after
}

/// The accumulators of loop `index`: registers whose only writes in the loop add or
/// subtract a value whose interval `addends` knows (by pc, left and right operand), each
/// outside nested loops. Returns each with what one iteration can add to it (its writes'
/// intervals, each widened to include 0: a write may be skipped) and the checks that rests
/// on.
fn accumulators(
    proto: &Proto,
    loops: &[LoopInfo],
    index: usize,
    addends: &HashMap<usize, [Option<Known>; 2]>,
) -> Vec<Accumulator> {
    use Op::*;
    let code = &proto.code;
    let l = &loops[index];
    let mut writes: HashMap<Reg, Vec<usize>> = HashMap::new();
    for (pc, op) in code.iter().enumerate().take(l.back + 1).skip(l.header) {
        for r in defs(op, proto) {
            writes.entry(r).or_default().push(pc);
        }
    }
    let mut found = Vec::new();
    'registers: for (reg, pcs) in writes {
        let mut per_iteration = Interval { lo: 0, hi: 0 };
        let mut needs = Vec::new();
        for pc in pcs {
            if in_nested_loop(loops, index, pc) {
                continue 'registers;
            }
            let known = |side: usize| addends.get(&pc).and_then(|k| k[side].clone());
            let added = match code[pc] {
                Add { dst, a, b } if dst == reg && a == reg && b != reg => known(1),
                Add { dst, a, b } if dst == reg && b == reg && a != reg => known(0),
                Sub { dst, a, b } if dst == reg && a == reg && b != reg => {
                    known(1).map(|(x, n)| {
                        (
                            Interval {
                                lo: -x.hi,
                                hi: -x.lo,
                            },
                            n,
                        )
                    })
                }
                AddI { dst, a, imm } if dst == reg && a == reg => {
                    let k = imm as i128;
                    Some((Interval { lo: k, hi: k }, Vec::new()))
                }
                SubI { dst, a, imm } if dst == reg && a == reg => {
                    let k = -(imm as i128);
                    Some((Interval { lo: k, hi: k }, Vec::new()))
                }
                _ => None,
            };
            let Some((x, more)) = added else {
                continue 'registers;
            };
            per_iteration.lo += x.lo.min(0);
            per_iteration.hi += x.hi.max(0);
            needs.extend(more);
        }
        found.push(Accumulator {
            reg,
            per_iteration,
            needs,
        });
    }
    found.sort_by_key(|a| a.reg);
    found
}

/// A `for var in start..end` loop over an int range: its header is `FORRANGE`, and only the
/// header writes the variable and the counter (`base`; the end is in `base + 1`). Returns
/// `(var, base)`.
fn for_range(proto: &Proto, l: &LoopInfo) -> Option<(Reg, Reg)> {
    let Op::ForRangeNext { base, var, exit } = proto.code[l.header] else {
        return None;
    };
    if (exit as usize) <= l.back {
        return None;
    }
    let only_the_header_writes = |r: Reg| {
        (l.header..=l.back)
            .filter(|&pc| defs(&proto.code[pc], proto).contains(&r))
            .eq([l.header])
    };
    let end = base + 1;
    let end_kept = !(l.header..=l.back).any(|pc| defs(&proto.code[pc], proto).contains(&end));
    (only_the_header_writes(var) && only_the_header_writes(base) && end_kept).then_some((var, base))
}

fn in_nested_loop(loops: &[LoopInfo], index: usize, pc: usize) -> bool {
    let l = &loops[index];
    loops.iter().enumerate().any(|(i, other)| {
        i != index
            && other.enter > l.enter
            && other.back <= l.back
            && (other.enter..=other.back).contains(&pc)
    })
}

/// Every loop with its `LOOPENTER`, header and `BACKEDGE`, outermost first, each with the
/// innermost loop around it.
fn find_loops(code: &[Op]) -> Vec<LoopInfo> {
    let mut loops = Vec::new();
    for (pc, op) in code.iter().enumerate() {
        if let Op::BackEdge { id, target } = *op {
            let header = target as usize;
            if header > 0 && code[header - 1] == (Op::LoopEnter { id }) {
                loops.push(LoopInfo {
                    enter: header - 1,
                    header,
                    back: pc,
                    parent: None,
                });
            }
        }
    }
    loops.sort_by_key(|l| (l.enter, std::cmp::Reverse(l.back)));
    for i in 0..loops.len() {
        loops[i].parent = (0..i)
            .rev()
            .find(|&j| loops[j].enter < loops[i].enter && loops[i].back <= loops[j].back);
    }
    loops
}

/// The loop's instructions from its header to its back edge, less those of nested loops
/// (each loop proves its own arithmetic, with its parents' facts).
fn own_instructions(loops: &[LoopInfo], index: usize) -> Vec<usize> {
    let l = &loops[index];
    (l.header..=l.back)
        .filter(|&pc| !in_nested_loop(loops, index, pc))
        .collect()
}

/// Instructions more than one path may reach: jump targets.
fn leaders(code: &[Op], argc: usize) -> HashSet<usize> {
    let mut targets = HashSet::new();
    for (pc, op) in code.iter().enumerate() {
        for s in successors(op, pc, argc) {
            if s != pc + 1 {
                targets.insert(s);
            }
        }
    }
    targets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_of_products_take_every_corner() {
        let x = Interval { lo: -3, hi: 2 };
        let y = Interval { lo: -5, hi: 4 };
        let p = combine(Op::Mul { dst: 0, a: 0, b: 0 }, x, y);
        assert_eq!((p.lo, p.hi), (-12, 15));
        let d = combine(Op::Sub { dst: 0, a: 0, b: 0 }, x, y);
        assert_eq!((d.lo, d.hi), (-7, 7));
    }

    #[test]
    fn the_bound_keeps_sums_of_squares_in_range() {
        let b = BOUND as i128 + 1;
        assert!(Interval {
            lo: 0,
            hi: 4 * b * b
        }
        .fits_i64());
    }
}
