//! A random program generator for differential testing. It writes valid Ruchy programs
//! over the whole core language: globals, functions calling earlier functions, recursion
//! (deep-ish, and mutual), closures that capture and mutate, nested and labeled loops with
//! `break` and `continue`, ints, floats, strings, bools and arrays, variables that change
//! type mid-loop (int to float), and the errors a program can run into (overflow, division
//! by zero, out of bounds, the recursion limit).
//!
//! It tracks the type of every variable in scope, so most programs run to the end, and it
//! estimates the work a program does (loop trips times calls), so none runs for long. One
//! statement per line, and a block's `}` on a line of its own, so that the shrinker can
//! delete lines and blocks.

use crate::common::Rng;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Ty {
    Int,
    /// An int or a float: may change from one to the other.
    Num,
    Float,
    Str,
    Bool,
    /// An array of numbers, never empty (its elements are `Num`).
    Arr,
    /// A closure of one number, returning a number.
    Fn1,
}

#[derive(Clone)]
struct Var {
    name: String,
    ty: Ty,
    /// Loop variables and parameters of recursive functions are read, never assigned.
    assignable: bool,
}

#[derive(Clone)]
struct Func {
    name: String,
    params: Vec<Ty>,
    returns: Ty,
    /// Estimated work of one call.
    cost: u64,
    /// Recursive functions are called with a depth as their first argument.
    depth_param: bool,
}

/// Where statements are being written.
#[derive(Clone, Copy, PartialEq)]
enum Place {
    TopLevel,
    Function,
}

pub struct Generator {
    rng: Rng,
    out: String,
    indent: usize,
    scopes: Vec<Vec<Var>>,
    funcs: Vec<Func>,
    fresh: usize,
    place: Place,
    /// Loops around the current statement: `(label, whether its break needs a value)`.
    loops: Vec<(Option<String>, bool)>,
    /// What the function being written returns.
    returns: Ty,
    /// Product of the trip counts of the loops around the current statement.
    multiplier: u64,
    /// Work estimated so far in the current body, and its budget.
    cost: u64,
    budget: u64,
    /// Nesting of blocks, to keep programs readable.
    depth: usize,
}

const INT_TYPES: [Ty; 1] = [Ty::Int];

impl Generator {
    pub fn new(seed: u64) -> Generator {
        Generator {
            rng: Rng::new(seed),
            out: String::new(),
            indent: 0,
            scopes: vec![Vec::new()],
            funcs: Vec::new(),
            fresh: 0,
            place: Place::TopLevel,
            loops: Vec::new(),
            returns: Ty::Num,
            multiplier: 1,
            cost: 0,
            budget: 0,
            depth: 0,
        }
    }

    /// One whole program.
    pub fn program(mut self) -> String {
        for _ in 0..1 + self.rng.below(3) {
            let ty = *self
                .rng
                .pick(&[Ty::Int, Ty::Num, Ty::Float, Ty::Str, Ty::Arr]);
            let value = self.literal(ty);
            let name = self.name("g");
            self.line(&format!("let {name} = {value}"));
            self.declare(&name, ty, true);
        }
        for _ in 0..1 + self.rng.below(4) {
            match self.rng.below(10) {
                0..=1 => self.recursive_function(),
                2 => self.mutual_recursion(),
                3 => self.summing_function(),
                _ => self.function(),
            }
        }
        self.place = Place::TopLevel;
        self.budget = if self.rng.chance(15) { 150_000 } else { 20_000 };
        self.cost = 0;
        self.multiplier = 1;
        for _ in 0..3 + self.rng.below(8) {
            self.statement();
        }
        // Something always shows the state at the end.
        let shown: Vec<String> = self
            .visible()
            .into_iter()
            .filter(|v| v.ty != Ty::Fn1)
            .map(|v| v.name)
            .collect();
        if !shown.is_empty() {
            self.line(&format!("println({})", shown.join(", ")));
        }
        self.out
    }

    // ---- names, scopes and output

    fn name(&mut self, prefix: &str) -> String {
        self.fresh += 1;
        format!("{prefix}{}", self.fresh)
    }

    fn line(&mut self, text: &str) {
        for _ in 0..self.indent {
            self.out.push_str("    ");
        }
        // Newlines carry no meaning: a line starting with `[` or `-` would continue the
        // expression before it (as an index or a subtraction).
        if text.starts_with('[') || text.starts_with('-') {
            self.out.push_str(&format!("({text})"));
        } else {
            self.out.push_str(text);
        }
        self.out.push('\n');
    }

    fn open(&mut self, head: &str) {
        self.line(&format!("{head} {{"));
        self.indent += 1;
        self.depth += 1;
        self.scopes.push(Vec::new());
    }

    fn close(&mut self) {
        self.scopes.pop();
        self.depth -= 1;
        self.indent -= 1;
        self.line("}");
    }

    fn declare(&mut self, name: &str, ty: Ty, assignable: bool) {
        self.scopes.last_mut().expect("a scope").push(Var {
            name: name.to_string(),
            ty,
            assignable,
        });
    }

    /// The variables in scope, the innermost binding of each name.
    fn visible(&self) -> Vec<Var> {
        let mut out: Vec<Var> = Vec::new();
        for scope in self.scopes.iter().rev() {
            for v in scope.iter().rev() {
                if !out.iter().any(|o| o.name == v.name) {
                    out.push(v.clone());
                }
            }
        }
        out.reverse();
        out
    }

    fn var_of(&mut self, accept: &[Ty]) -> Option<Var> {
        let vars: Vec<Var> = self
            .visible()
            .into_iter()
            .filter(|v| accept.contains(&v.ty))
            .collect();
        (!vars.is_empty()).then(|| self.rng.pick(&vars).clone())
    }

    /// Counts one statement's work; false when the body's budget is spent.
    fn spend(&mut self, work: u64) -> bool {
        let total = self.multiplier.saturating_mul(work);
        if self.cost.saturating_add(total) > self.budget {
            return false;
        }
        self.cost += total;
        true
    }

    // ---- functions

    fn function_body(&mut self, params: &[(String, Ty, bool)], returns: Ty, budget: u64) -> u64 {
        self.place = Place::Function;
        self.returns = returns;
        self.budget = budget;
        self.cost = 0;
        self.multiplier = 1;
        for (name, ty, assignable) in params {
            self.declare(name, *ty, *assignable);
        }
        for _ in 0..1 + self.rng.below(5) {
            self.statement();
        }
        let result = self.expr(returns, 0);
        self.line(&result);
        self.cost.max(1)
    }

    fn function(&mut self) {
        let name = self.name("f");
        let params: Vec<(String, Ty, bool)> = (0..self.rng.below(4))
            .map(|_| {
                let ty = *self
                    .rng
                    .pick(&[Ty::Num, Ty::Num, Ty::Int, Ty::Int, Ty::Arr, Ty::Str]);
                (self.name("p"), ty, true)
            })
            .collect();
        let returns = *self
            .rng
            .pick(&[Ty::Num, Ty::Num, Ty::Int, Ty::Str, Ty::Arr]);
        let list: Vec<&str> = params.iter().map(|p| p.0.as_str()).collect();
        self.open(&format!("fun {name}({})", list.join(", ")));
        let cost = self.function_body(&params, returns, 3_000);
        self.close();
        self.funcs.push(Func {
            name,
            params: params.iter().map(|p| p.1).collect(),
            returns,
            cost,
            depth_param: false,
        });
    }

    /// `fun r(n, acc) { if n <= 0 { return acc } ... r(n - 1, ...) }`: called with depths
    /// from 3 to past the recursion limit of the test (2000).
    fn recursive_function(&mut self) {
        let name = self.name("r");
        let n = self.name("n");
        let acc = self.name("acc");
        self.open(&format!("fun {name}({n}, {acc})"));
        self.line(&format!("if {n} <= 0 {{ return {acc} }}"));
        let params = [(n.clone(), Ty::Int, false), (acc.clone(), Ty::Num, true)];
        self.place = Place::Function;
        self.returns = Ty::Num;
        self.budget = 40;
        self.cost = 0;
        self.multiplier = 1;
        for (p, ty, assignable) in &params {
            self.declare(p, *ty, *assignable);
        }
        for _ in 0..self.rng.below(3) {
            self.statement();
        }
        let step = self.without(&acc, Ty::Num);
        self.line(&format!("{name}({n} - 1, {acc} + {step})"));
        let cost = self.cost.max(1);
        self.close();
        self.funcs.push(Func {
            name,
            params: vec![Ty::Int, Ty::Num],
            returns: Ty::Num,
            cost,
            depth_param: true,
        });
    }

    /// `fun s(n, x) { if n < k { return BASE } ...; return TERM + s(n - 1, X) }`, or the
    /// tree form `return s(n - 1, X) + s(n - 2, x)` behind a wrapper that keeps `n` small:
    /// tier 2 turns the last call into a loop with a running sum. Terms and bases of
    /// either sign and size test the restarts that keep it exact; a base test of
    /// `n == 0` gives no bound on the depth (the loop counts its levels).
    fn summing_function(&mut self) {
        let tree = self.rng.chance(40);
        let name = self.name("s");
        let n = self.name("n");
        let x = self.name("x");
        self.open(&format!("fun {name}({n}, {x})"));
        let params = [(n.clone(), Ty::Int, false), (x.clone(), Ty::Int, false)];
        self.place = Place::Function;
        self.returns = Ty::Int;
        self.budget = 20;
        self.cost = 0;
        self.multiplier = 1;
        for (p, ty, assignable) in &params {
            self.declare(p, *ty, *assignable);
        }
        let k = self.rng.range(-1, 3);
        let test = match self.rng.below(3) {
            0 => format!("{n} < {k}"),
            1 => format!("{n} <= {k}"),
            _ => format!("{n} == 0"),
        };
        let base = self.expr(Ty::Int, 1);
        self.line(&format!("if {test} {{ return {base} }}"));
        for _ in 0..self.rng.below(2) {
            self.statement();
        }
        let next = self.expr(Ty::Int, 1);
        if tree {
            self.line(&format!(
                "return {name}({n} - 1, {next}) + {name}({n} - 2, {x})"
            ));
        } else {
            let term = self.expr(Ty::Int, 1);
            self.line(&format!("return {term} + {name}({n} - 1, {next})"));
        }
        let cost = self.cost.max(1);
        self.close();
        if !tree {
            self.funcs.push(Func {
                name,
                params: vec![Ty::Int, Ty::Int],
                returns: Ty::Int,
                cost,
                depth_param: true,
            });
            return;
        }
        let wrapper = self.name("w");
        self.line(&format!(
            "fun {wrapper}(n, x) {{ return {name}(n % 13, x) }}"
        ));
        self.funcs.push(Func {
            name: wrapper,
            params: vec![Ty::Int, Ty::Int],
            returns: Ty::Int,
            cost: cost.saturating_mul(400),
            depth_param: false,
        });
    }

    /// Two functions that call each other, defined in either order.
    fn mutual_recursion(&mut self) {
        let even = self.name("even");
        let odd = self.name("odd");
        let first = format!("fun {even}(n) {{ if n == 0 {{ true }} else {{ {odd}(n - 1) }} }}");
        let second = format!("fun {odd}(n) {{ if n == 0 {{ false }} else {{ {even}(n - 1) }} }}");
        if self.rng.chance(50) {
            self.line(&first);
            self.line(&second);
        } else {
            self.line(&second);
            self.line(&first);
        }
        for name in [even, odd] {
            self.funcs.push(Func {
                name,
                params: vec![Ty::Int],
                returns: Ty::Bool,
                cost: 1,
                depth_param: true,
            });
        }
    }

    /// A call of a function returning `ty`, if one fits the budget.
    fn call(&mut self, ty: Ty, depth: usize) -> Option<String> {
        let fitting: Vec<Func> = self
            .funcs
            .iter()
            .filter(|f| f.returns == ty || (ty == Ty::Num && f.returns == Ty::Int))
            .cloned()
            .collect();
        if fitting.is_empty() {
            return None;
        }
        let f = self.rng.pick(&fitting).clone();
        let mut args = Vec::new();
        let mut work = f.cost;
        for (i, p) in f.params.iter().enumerate() {
            if i == 0 && f.depth_param {
                let depth = match self.rng.below(20) {
                    0 => 2_500,
                    1..=3 => 1_500,
                    4..=8 => 200,
                    _ => self.rng.range(0, 20),
                };
                work = work.saturating_mul(depth as u64 + 1);
                args.push(depth.to_string());
            } else {
                args.push(self.expr(*p, depth + 1));
            }
        }
        if !self.spend(work) {
            return None;
        }
        Some(format!("{}({})", f.name, args.join(", ")))
    }

    // ---- statements

    fn statement(&mut self) {
        if !self.spend(1) {
            return;
        }
        let nested = self.depth < 3;
        match self.rng.below(100) {
            0..=14 => self.let_statement(),
            15..=29 => self.assignment(),
            30..=39 => {
                let e = self.printable(0);
                self.line(&format!("println({e})"));
            }
            40..=43 => {
                let (a, b) = (self.printable(1), self.printable(1));
                self.line(&format!("println(\"{{}} and {{}}\", {a}, {b})"));
            }
            44..=51 if nested => self.if_statement(),
            52..=59 if nested => self.for_range(),
            60..=63 if nested => self.while_loop(),
            64..=66 if nested => self.loop_with_break_value(),
            67..=68 if nested => self.for_array(),
            69..=70 if nested && self.depth < 2 => self.labeled_loops(),
            71..=76 => self.array_statement(),
            77..=80 => self.closure(),
            81..=83 if !self.loops.is_empty() => self.break_or_continue(),
            84..=86 if self.place == Place::Function => {
                let cond = self.expr(Ty::Bool, 1);
                let value = self.stored(self.returns);
                self.line(&format!("if {cond} {{ return {value} }}"));
            }
            87..=92 => {
                let ty = *self.rng.pick(&[Ty::Num, Ty::Int, Ty::Str, Ty::Bool]);
                if let Some(call) = self.call(ty, 0) {
                    self.line(&call);
                }
            }
            _ => {
                let e = self.printable(0);
                self.line(&format!("print({e})"));
                self.line("println()");
            }
        }
    }

    fn let_statement(&mut self) {
        let ty = *self.rng.pick(&[
            Ty::Int,
            Ty::Int,
            Ty::Num,
            Ty::Num,
            Ty::Float,
            Ty::Str,
            Ty::Bool,
            Ty::Arr,
        ]);
        let value = self.stored(ty);
        let name = self.name("v");
        let keyword = *self.rng.pick(&["let", "let mut", "var"]);
        self.line(&format!("{keyword} {name} = {value}"));
        self.declare(&name, ty, true);
    }

    /// An assignment to a variable in scope, sometimes changing an int to a float.
    fn assignment(&mut self) {
        let Some(target) = self.var_of(&[Ty::Int, Ty::Num, Ty::Float, Ty::Str, Ty::Bool, Ty::Arr])
        else {
            return self.let_statement();
        };
        if !target.assignable {
            return;
        }
        let name = &target.name;
        let text = match target.ty {
            Ty::Int => match self.rng.below(4) {
                0 => format!("{name} += {}", self.without(name, Ty::Int)),
                1 => format!("{name} -= {}", self.without(name, Ty::Int)),
                2 => format!("{name} = {}", self.without(name, Ty::Int)),
                _ => format!("{name} %= {}", self.rng.range(1, 9)),
            },
            Ty::Num | Ty::Float => match self.rng.below(4) {
                0 => format!("{name} += {}", self.without(name, Ty::Num)),
                1 => format!("{name} = {}", self.without(name, target.ty)),
                // Mid-loop type changes: an int variable gets a float, or back.
                2 if target.ty == Ty::Num => format!("{name} = {}", self.literal(Ty::Float)),
                2 => format!("{name} /= {}", self.literal(Ty::Float)),
                _ => format!("{name} -= {}", self.without(name, Ty::Num)),
            },
            Ty::Str => match self.rng.below(2) {
                0 => format!("{name} += {}", self.literal(Ty::Str)),
                _ => format!("{name} = {}", self.stored(Ty::Str)),
            },
            Ty::Bool => format!("{name} = {}", self.expr(Ty::Bool, 1)),
            _ => format!("{name} = {}", self.stored(Ty::Arr)),
        };
        self.line(&text);
    }

    fn if_statement(&mut self) {
        let cond = self.expr(Ty::Bool, 1);
        self.open(&format!("if {cond}"));
        self.statements(3);
        if self.rng.chance(30) {
            self.scopes.pop();
            let cond = self.expr(Ty::Bool, 1);
            self.indent -= 1;
            self.line(&format!("}} else if {cond} {{"));
            self.indent += 1;
            self.scopes.push(Vec::new());
            self.statements(2);
        }
        if self.rng.chance(50) {
            self.scopes.pop();
            self.indent -= 1;
            self.line("} else {");
            self.indent += 1;
            self.scopes.push(Vec::new());
            self.statements(3);
        }
        self.close();
    }

    /// One to `most` statements.
    fn statements(&mut self, most: usize) {
        for _ in 0..1 + self.rng.below(most) {
            self.statement();
        }
    }

    /// Trip count of a new loop, small enough for the budget.
    fn trips(&mut self) -> u64 {
        let wanted = match self.rng.below(10) {
            0 => self.rng.range(0, 1) as u64,
            1 if self.place == Place::TopLevel => 1_500,
            _ => self.rng.range(2, 12) as u64,
        };
        let room = (self.budget.saturating_sub(self.cost) / 4) / self.multiplier.max(1);
        wanted.min(room.max(1))
    }

    fn in_loop(&mut self, trips: u64, label: Option<String>, break_value: bool, n: usize) {
        let saved = self.multiplier;
        self.multiplier = self.multiplier.saturating_mul(trips.max(1));
        self.loops.push((label, break_value));
        self.statements(n);
        self.loops.pop();
        self.multiplier = saved;
    }

    fn for_range(&mut self) {
        let trips = self.trips();
        let i = self.name("i");
        // Now and then at the edges of the JIT's range guards (±2^30) or past them.
        let start = match self.rng.below(10) {
            0 => 1_073_741_820,
            1 => -1_073_741_826,
            2 => 3_037_000_497,
            _ => self.rng.range(-3, 3),
        };
        let head = match self.rng.below(2) {
            0 => format!("for {i} in {start}..{}", start + trips as i64),
            _ => format!("for {i} in {start}..={}", start + trips as i64 - 1),
        };
        self.open(&head);
        self.declare(&i, Ty::Int, false);
        let n = 1 + self.rng.below(4);
        self.in_loop(trips, None, false, n);
        self.close();
    }

    fn while_loop(&mut self) {
        if self.rng.chance(50) {
            return self.counting_loop();
        }
        let trips = self.trips();
        let k = self.name("k");
        self.line(&format!("var {k} = 0"));
        self.open(&format!("while {k} < {trips}"));
        // The counter moves first, so `continue` cannot skip it.
        self.line(&format!("{k} += 1"));
        let n = 1 + self.rng.below(4);
        self.in_loop(trips, None, false, n);
        self.close();
        self.declare(&k, Ty::Int, false);
    }

    /// A loop counting up to a bound held in a variable, from a start at the edges of the
    /// JIT's range guards (±2^30), past them, or near the int limits. The counter is
    /// visible (read-only) in the body, so arithmetic on it is a candidate for the checks
    /// that loop bounds prove away, and the guards both pass and fail.
    fn counting_loop(&mut self) {
        let trips = self.trips() as i128;
        let start: i128 = match self.rng.below(8) {
            0 => 1_073_741_820,
            1 => -1_073_741_826,
            2 => -1_073_741_824 - trips / 2,
            3 => 3_037_000_497,
            4 => i64::MAX as i128 - trips + 2,
            _ => self.rng.range(-5, 5) as i128,
        };
        let inclusive = self.rng.chance(50);
        let bound = (start + trips - inclusive as i128).min(i64::MAX as i128);
        let (c, n) = (self.name("c"), self.name("n"));
        self.line(&format!("let {n} = {bound}"));
        self.line(&format!("var {c} = {start}"));
        let test = if inclusive { "<=" } else { "<" };
        self.open(&format!("while {c} {test} {n}"));
        // The counter moves first, so `continue` cannot skip it.
        self.line(&format!("{c} += 1"));
        self.declare(&c, Ty::Int, false);
        let k = 1 + self.rng.below(4);
        self.in_loop(trips as u64, None, false, k);
        self.close();
    }

    fn loop_with_break_value(&mut self) {
        let trips = self.trips();
        let k = self.name("k");
        let v = self.name("v");
        self.line(&format!("var {k} = 0"));
        // Now and then the body starts with a short `if` that only copies a value: the
        // shape whose branch the JIT turns into a select, at a `loop` head (which once
        // made loop rotation hang the compiler).
        let head_if = self.rng.chance(25).then(|| self.name("t"));
        if let Some(t) = &head_if {
            self.line(&format!("var {t} = 0"));
        }
        self.open(&format!("let {v} = loop"));
        if let Some(t) = &head_if {
            let cond = self.expr(Ty::Bool, 1);
            self.line(&format!("if {cond} {{ {t} = {k} }}"));
        }
        self.line(&format!("{k} += 1"));
        let value = self.expr(Ty::Num, 1);
        self.line(&format!("if {k} > {trips} {{ break {value} }}"));
        let n = 1 + self.rng.below(3);
        self.in_loop(trips, None, true, n);
        self.close();
        if let Some(t) = head_if {
            self.line(&format!("println({t})"));
        }
        self.declare(&k, Ty::Int, false);
        self.declare(&v, Ty::Num, true);
    }

    fn for_array(&mut self) {
        let Some(array) = self.var_of(&[Ty::Arr]) else {
            return self.for_range();
        };
        let x = self.name("x");
        self.open(&format!("for {x} in {}", array.name));
        self.declare(&x, Ty::Num, false);
        let n = 1 + self.rng.below(3);
        // Arrays grow by pushes; count them as a dozen elements.
        self.in_loop(12, None, false, n);
        self.close();
    }

    fn labeled_loops(&mut self) {
        let label = self.name("'l");
        let (outer, inner) = (self.trips().min(8), self.trips().min(8));
        let (i, j) = (self.name("i"), self.name("j"));
        self.open(&format!("{label}: for {i} in 0..{outer}"));
        self.declare(&i, Ty::Int, false);
        let saved = self.multiplier;
        self.multiplier = self.multiplier.saturating_mul(outer.max(1));
        self.loops.push((Some(label.clone()), false));
        self.open(&format!("for {j} in 0..{inner}"));
        self.declare(&j, Ty::Int, false);
        let cond = self.expr(Ty::Bool, 1);
        let jump = *self.rng.pick(&["break", "continue"]);
        self.line(&format!("if {cond} {{ {jump} {label} }}"));
        let n = 1 + self.rng.below(3);
        self.in_loop(inner, None, false, n);
        self.close();
        self.loops.pop();
        self.multiplier = saved;
        self.close();
    }

    fn break_or_continue(&mut self) {
        let (label, break_value) = self.loops.last().cloned().expect("in a loop");
        let cond = self.expr(Ty::Bool, 1);
        let jump = match (self.rng.chance(50), break_value) {
            (true, _) => "continue".to_string(),
            // A `loop` whose value is used breaks with a number.
            (false, true) => format!("break {}", self.expr(Ty::Num, 2)),
            (false, false) => "break".to_string(),
        };
        let target = match label {
            Some(l) if self.rng.chance(50) => format!(" {l}"),
            _ => String::new(),
        };
        self.line(&format!("if {cond} {{ {jump}{target} }}"));
    }

    fn array_statement(&mut self) {
        let Some(array) = self.var_of(&[Ty::Arr]) else {
            return self.let_statement();
        };
        let a = &array.name;
        let text = match self.rng.below(5) {
            0 | 1 => format!("{a}.push({})", self.expr(Ty::Num, 1)),
            2 => format!("{a}[{}] = {}", self.index(a), self.expr(Ty::Num, 1)),
            3 => format!("if len({a}) > 1 {{ {a}.pop() }}"),
            // Sometimes out of bounds on purpose.
            _ => format!("{a}[len({a}) + {}] = 0", self.rng.range(-3, 1)),
        };
        self.line(&text);
    }

    fn closure(&mut self) {
        let name = self.name("c");
        let x = self.name("x");
        let captured = self.var_of(&[Ty::Num, Ty::Int]).filter(|v| v.assignable);
        let body = match captured {
            // A closure that changes the variable it captured (by reference).
            Some(v) if self.rng.chance(40) => {
                format!("{{ {0} += 1; {0} + {x} }}", v.name)
            }
            _ if self.rng.chance(30) => {
                // A nested function: it sees its parameter and the globals, not the
                // enclosing locals.
                let saved = std::mem::take(&mut self.scopes);
                let params = vec![Var {
                    name: x.clone(),
                    ty: Ty::Num,
                    assignable: false,
                }];
                self.scopes = vec![saved[0].clone(), params];
                let body = self.expr(Ty::Num, 1);
                self.scopes = saved;
                self.line(&format!("fun {name}({x}) {{ {body} }}"));
                self.declare(&name, Ty::Fn1, false);
                return;
            }
            _ => {
                self.declare(&x, Ty::Num, false);
                let body = self.expr(Ty::Num, 1);
                self.scopes.last_mut().expect("scope").pop();
                body
            }
        };
        self.line(&format!("let {name} = |{x}| {body}"));
        self.declare(&name, Ty::Fn1, false);
    }

    // ---- expressions

    /// An expression of type `ty`, without the variable `exclude` (so that assignments in
    /// loops grow values polynomially, not exponentially).
    fn without(&mut self, exclude: &str, ty: Ty) -> String {
        for _ in 0..4 {
            let e = self.expr(ty, 1);
            if !mentions(&e, exclude) {
                return e;
            }
        }
        self.literal(ty)
    }

    /// A value to store in a variable: strings and arrays from literals and conversions,
    /// never from other string or array variables (which could double in a loop).
    fn stored(&mut self, ty: Ty) -> String {
        match ty {
            Ty::Str => match self.rng.below(4) {
                0 => format!("str({})", self.expr(Ty::Num, 1)),
                1 => format!("f\"<{{{}}}>\"", self.leaf(Ty::Int)),
                2 => format!("{} * {}", self.literal(Ty::Str), self.rng.range(0, 3)),
                _ => self.literal(Ty::Str),
            },
            Ty::Arr => {
                let n = 1 + self.rng.below(4);
                let items: Vec<String> = (0..n).map(|_| self.expr(Ty::Num, 2)).collect();
                format!("[{}]", items.join(", "))
            }
            _ => self.expr(ty, 0),
        }
    }

    /// Something to print: any type, including whole arrays and string concatenations.
    fn printable(&mut self, depth: usize) -> String {
        match self.rng.below(8) {
            0 => self.expr(Ty::Str, depth),
            1 => self.expr(Ty::Bool, depth),
            2 => self.expr(Ty::Arr, depth),
            3 => format!("type_of({})", self.expr(Ty::Num, depth + 1)),
            4 => format!("f\"[{{{}:.2}}]\"", self.leaf(Ty::Num)),
            5 => self.expr(Ty::Float, depth),
            _ => self.expr(Ty::Num, depth),
        }
    }

    fn index(&mut self, array: &str) -> String {
        format!("({}) % len({array})", self.expr(Ty::Int, 2))
    }

    fn literal(&mut self, ty: Ty) -> String {
        match ty {
            Ty::Int | Ty::Num => match self.rng.below(40) {
                0 => "9223372036854775807".into(),
                1 => "4611686018427387904".into(),
                2 => "-9223372036854775807".into(),
                3 => "0".into(),
                _ => self.rng.range(-5, 40).to_string(),
            },
            Ty::Float => self
                .rng
                .pick(&["0.5", "2.25", "-1.5", "1e3", "0.1", "3.0", "-0.0", "1e20"])
                .to_string(),
            Ty::Str => self
                .rng
                .pick(&["\"\"", "\"a\"", "\"xyz\"", "\"Hi!\"", "\"a\\tb\""])
                .to_string(),
            Ty::Bool => self.rng.pick(&["true", "false"]).to_string(),
            Ty::Arr => "[1, 2.5, 3]".into(),
            Ty::Fn1 => "|x| x".into(),
        }
    }

    fn expr(&mut self, ty: Ty, depth: usize) -> String {
        if depth >= 3 || self.rng.chance(25) {
            return self.leaf(ty);
        }
        let d = depth + 1;
        match ty {
            Ty::Int => match self.rng.below(16) {
                0 => format!("({} + {})", self.expr(Ty::Int, d), self.expr(Ty::Int, d)),
                1 => format!("({} - {})", self.expr(Ty::Int, d), self.expr(Ty::Int, d)),
                2 => format!("({} * {})", self.expr(Ty::Int, d), self.leaf(Ty::Int)),
                3 => format!("({} / {})", self.expr(Ty::Int, d), self.divisor()),
                4 => format!("({} % {})", self.expr(Ty::Int, d), self.divisor()),
                5 => {
                    let op = *self.rng.pick(&["&", "|", "^", "<<", ">>"]);
                    format!("({} {op} {})", self.expr(Ty::Int, d), self.leaf(Ty::Int))
                }
                6 => format!("(-{})", self.expr(Ty::Int, d)),
                7 => format!("(~{})", self.expr(Ty::Int, d)),
                8 => match self.var_of(&[Ty::Arr]) {
                    Some(a) => format!("len({})", a.name),
                    None => format!("len({})", self.expr(Ty::Str, d)),
                },
                9 => {
                    let f = *self.rng.pick(&["floor", "ceil", "round"]);
                    format!("{f}({})", self.expr(Ty::Float, d))
                }
                10 => format!("abs({})", self.expr(Ty::Int, d)),
                11 => {
                    let f = *self.rng.pick(&["min", "max"]);
                    format!("{f}({}, {})", self.expr(Ty::Int, d), self.expr(Ty::Int, d))
                }
                12 => self.conditional(Ty::Int, d),
                13 => self.call(Ty::Int, d).unwrap_or_else(|| self.leaf(Ty::Int)),
                14 => format!("int({})", self.expr(Ty::Num, d)),
                _ => self.leaf(Ty::Int),
            },
            Ty::Num => match self.rng.below(14) {
                0 => format!("({} + {})", self.expr(Ty::Num, d), self.expr(Ty::Num, d)),
                1 => format!("({} - {})", self.expr(Ty::Num, d), self.expr(Ty::Num, d)),
                2 => format!("({} * {})", self.expr(Ty::Num, d), self.leaf(Ty::Num)),
                3 => format!("({} / {})", self.expr(Ty::Num, d), self.divisor()),
                4 => format!("({} % {})", self.expr(Ty::Num, d), self.divisor()),
                5 => format!("({} ** {})", self.leaf(Ty::Num), self.rng.range(0, 4)),
                6 => match self.var_of(&[Ty::Arr]) {
                    Some(a) => format!("{}[{}]", a.name, self.index(&a.name)),
                    None => self.leaf(Ty::Num),
                },
                7 => match self.var_of(&[Ty::Fn1]) {
                    Some(c) if self.spend(1) => format!("{}({})", c.name, self.expr(Ty::Num, d)),
                    _ => self.leaf(Ty::Num),
                },
                8 => self.conditional(Ty::Num, d),
                9 => self.call(Ty::Num, d).unwrap_or_else(|| self.leaf(Ty::Num)),
                10 => self.expr(Ty::Int, d),
                11 => self.expr(Ty::Float, d),
                12 => format!("abs({})", self.expr(Ty::Num, d)),
                _ => self.leaf(Ty::Num),
            },
            Ty::Float => match self.rng.below(6) {
                0 => format!("({} + {})", self.expr(Ty::Float, d), self.expr(Ty::Num, d)),
                1 => format!("({} * {})", self.expr(Ty::Num, d), self.expr(Ty::Float, d)),
                2 => format!("({} / {})", self.expr(Ty::Float, d), self.expr(Ty::Num, d)),
                3 => format!("sqrt(abs({}))", self.expr(Ty::Num, d)),
                4 => format!("float({})", self.expr(Ty::Int, d)),
                _ => self.leaf(Ty::Float),
            },
            Ty::Str => match self.rng.below(7) {
                0 => format!("({} + {})", self.expr(Ty::Str, d), self.expr(Ty::Str, d)),
                1 => format!("({} + {})", self.expr(Ty::Str, d), self.expr(Ty::Num, d)),
                2 => format!("({} + {})", self.expr(Ty::Int, d), self.expr(Ty::Str, d)),
                3 => format!("str({})", self.expr(Ty::Num, d)),
                4 => format!("f\"{{{}}}:{{{}}}\"", self.leaf(Ty::Num), self.leaf(Ty::Int)),
                5 => self.call(Ty::Str, d).unwrap_or_else(|| self.leaf(Ty::Str)),
                _ => self.leaf(Ty::Str),
            },
            Ty::Bool => match self.rng.below(8) {
                0 | 1 => {
                    let op = *self.rng.pick(&["<", "<=", ">", ">=", "==", "!="]);
                    format!("({} {op} {})", self.expr(Ty::Num, d), self.expr(Ty::Num, d))
                }
                2 => format!("({} == {})", self.expr(Ty::Str, d), self.expr(Ty::Str, d)),
                3 => format!("(!{})", self.expr(Ty::Bool, d)),
                4 => format!("({} && {})", self.expr(Ty::Bool, d), self.expr(Ty::Bool, d)),
                5 => format!("({} || {})", self.expr(Ty::Bool, d), self.expr(Ty::Bool, d)),
                6 => self
                    .call(Ty::Bool, d)
                    .unwrap_or_else(|| self.leaf(Ty::Bool)),
                _ => format!("({} % 2 == 0)", self.expr(Ty::Int, d)),
            },
            Ty::Arr => match self.rng.below(3) {
                0 => {
                    let (a, b) = (self.leaf(Ty::Arr), self.leaf(Ty::Arr));
                    format!("({a} + {b})")
                }
                _ => self.leaf(Ty::Arr),
            },
            Ty::Fn1 => self.leaf(Ty::Fn1),
        }
    }

    /// A divisor: mostly a nonzero constant, sometimes an expression that may be zero.
    fn divisor(&mut self) -> String {
        match self.rng.below(10) {
            0 => self.expr(Ty::Int, 2),
            1 => self.literal(Ty::Float),
            _ => self.rng.range(1, 9).to_string(),
        }
    }

    fn conditional(&mut self, ty: Ty, depth: usize) -> String {
        let cond = self.expr(Ty::Bool, depth);
        let (a, b) = (self.expr(ty, depth), self.expr(ty, depth));
        match self.rng.below(2) {
            0 => format!("({cond} ? {a} : {b})"),
            _ => format!("(if {cond} {{ {a} }} else {{ {b} }})"),
        }
    }

    fn leaf(&mut self, ty: Ty) -> String {
        let accept: &[Ty] = match ty {
            Ty::Int => &INT_TYPES,
            Ty::Num => &[Ty::Int, Ty::Num, Ty::Float],
            other => &[other][..],
        };
        let accept = accept.to_vec();
        if self.rng.chance(70) {
            if let Some(v) = self.var_of(&accept) {
                return v.name;
            }
        }
        self.literal(ty)
    }
}

/// Whether the expression text mentions the variable `name` (as a whole word).
fn mentions(expr: &str, name: &str) -> bool {
    expr.split(|c: char| !c.is_alphanumeric() && c != '_')
        .any(|word| word == name)
}
