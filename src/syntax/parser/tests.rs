//! Parser tests: the tree is printed as an S-expression so precedence is visible.

use super::*;

fn sexp(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Nil => "nil".into(),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::Int(v) => v.to_string(),
        ExprKind::Float(v) => format!("{v:?}"),
        ExprKind::Str(s) => format!("{s:?}"),
        ExprKind::FString(parts) => {
            let inner: Vec<String> = parts
                .iter()
                .map(|p| match p {
                    FPart::Lit(s) => format!("{s:?}"),
                    FPart::Hole(e, _) => sexp(e),
                })
                .collect();
            format!("(f {})", inner.join(" "))
        }
        ExprKind::Var(v) => v.name.to_string(),
        ExprKind::Array(items) => format!("[{}]", list(items)),
        ExprKind::Unary(op, e) => format!("({op:?} {})", sexp(e)),
        ExprKind::Binary(op, a, b) => format!("({} {} {})", op.symbol(), sexp(a), sexp(b)),
        ExprKind::Logic(op, a, b) => format!("({op:?} {} {})", sexp(a), sexp(b)),
        ExprKind::Range {
            start,
            end,
            inclusive,
        } => {
            format!(
                "({} {} {})",
                if *inclusive { "..=" } else { ".." },
                sexp(start),
                sexp(end)
            )
        }
        ExprKind::If {
            cond,
            then_branch,
            else_branch,
        } => match else_branch {
            Some(e) => format!("(if {} {} {})", sexp(cond), sexp(then_branch), sexp(e)),
            None => format!("(if {} {})", sexp(cond), sexp(then_branch)),
        },
        ExprKind::Block(b) => format!("{{{}}}", list(&b.stmts)),
        ExprKind::While { cond, body, .. } => format!("(while {} {})", sexp(cond), sexp(body)),
        ExprKind::Loop { body, .. } => format!("(loop {})", sexp(body)),
        ExprKind::For {
            var, iter, body, ..
        } => {
            format!("(for {} {} {})", var.name, sexp(iter), sexp(body))
        }
        ExprKind::Break { label, value } => format!(
            "(break{}{})",
            label.as_ref().map(|l| format!(" '{l}")).unwrap_or_default(),
            value
                .as_ref()
                .map(|v| format!(" {}", sexp(v)))
                .unwrap_or_default()
        ),
        ExprKind::Continue { .. } => "(continue)".into(),
        ExprKind::Return(v) => match v {
            Some(v) => format!("(return {})", sexp(v)),
            None => "(return)".into(),
        },
        ExprKind::Call { callee, args } => format!("(call {} {})", sexp(callee), list(args)),
        ExprKind::Method {
            receiver,
            method,
            args,
        } => {
            format!("(.{method} {} {})", sexp(receiver), list(args))
        }
        ExprKind::Index { base, index } => format!("(idx {} {})", sexp(base), sexp(index)),
        ExprKind::Assign { target, op, value } => format!(
            "({}= {} {})",
            op.map(|o| o.symbol()).unwrap_or(""),
            sexp(target),
            sexp(value)
        ),
        ExprKind::Let { binding, value } => match value {
            Some(v) => format!("(let {} {})", binding.name, sexp(v)),
            None => format!("(let {})", binding.name),
        },
        ExprKind::FunDecl { binding, func } => {
            format!("(fun {} {})", binding.name, sexp(&func.body))
        }
        ExprKind::Lambda(func) => format!("(lambda {})", sexp(&func.body)),
        ExprKind::Misplaced(what) => format!("(misplaced {what})"),
    }
}

fn list(items: &[Expr]) -> String {
    items.iter().map(sexp).collect::<Vec<_>>().join(" ")
}

fn parse(src: &str) -> String {
    let f = parse_program(src, 0, "test").unwrap_or_else(|e| panic!("{src}: {e}"));
    let ExprKind::Block(b) = &f.body.kind else {
        unreachable!()
    };
    list(&b.stmts)
}

fn parse_err(src: &str) -> String {
    match parse_program(src, 0, "test") {
        Ok(_) => panic!("expected a syntax error for {src:?}"),
        Err(e) => e.kind.to_string(),
    }
}

#[test]
fn power_is_left_associative_and_below_unary() {
    assert_eq!(parse("2 ** 3 ** 2"), "(** (** 2 3) 2)");
    assert_eq!(parse("-2 ** 2"), "(** (Neg 2) 2)");
    assert_eq!(parse("1 + 2 * 3 ** 2"), "(+ 1 (* 2 (** 3 2)))");
}

#[test]
fn c_style_bitwise_precedence() {
    assert_eq!(parse("6 & 3 == 2"), "(& 6 (== 3 2))");
    assert_eq!(parse("1 | 2 ^ 3 & 4"), "(| 1 (^ 2 (& 3 4)))");
    assert_eq!(parse("1 + 2 << 1"), "(<< (+ 1 2) 1)");
    assert_eq!(parse("1 < 2 == true"), "(== (< 1 2) true)");
}

#[test]
fn ranges_logic_ternary_assignment() {
    assert_eq!(parse("0..n + 1"), "(.. 0 (+ n 1))");
    assert_eq!(parse("a || b && c"), "(Or a (And b c))");
    assert_eq!(parse("a || b ? 1 : 2"), "(if (Or a b) 1 2)");
    assert_eq!(parse("c ? 1 : d ? 2 : 3"), "(if c 1 (if d 2 3))");
    assert_eq!(parse("x = y = 5"), "(= x (= y 5))");
    assert_eq!(parse("a[i][j] += 1"), "(+= (idx (idx a i) j) 1)");
    assert_eq!(parse("x **= 2"), "(**= x 2)");
}

#[test]
fn postfix_and_calls() {
    assert_eq!(
        parse("f(1)(2)[0].push(3)"),
        "(.push (idx (call (call f 1) 2) 0) 3)"
    );
    assert_eq!(parse("-a[0]"), "(Neg (idx a 0))");
    // A `(` on the next line starts a new statement.
    assert_eq!(parse("f\n(1)"), "f 1");
}

#[test]
fn block_like_statements_end_at_their_brace() {
    assert_eq!(parse("if a { 1 } else { 2 }\n-1"), "(if a {1} {2}) (Neg 1)");
    assert_eq!(
        parse("let y = if a { 1 } else { 2 } + 10"),
        "(let y (+ (if a {1} {2}) 10))"
    );
    assert_eq!(parse("while x { }\n[1]"), "(while x {}) [1]");
    assert_eq!(parse("let y = a\n[0]"), "(let y (idx a 0))");
}

#[test]
fn functions_and_closures() {
    assert_eq!(
        parse("fun f(a, b: i64, c = 10) -> i64 { a }"),
        "(fun f {a})"
    );
    assert_eq!(parse("fn g() {}"), "(fun g {})");
    assert_eq!(parse("|x| x + 1"), "(lambda (+ x 1))");
    assert_eq!(parse("|| 42"), "(lambda 42)");
    assert_eq!(parse("fun(x) { x }"), "(lambda {x})");
    assert_eq!(parse("let v: Vec<Vec<i64>> = []"), "(let v [])");
}

#[test]
fn loops_labels_break_values() {
    assert_eq!(parse("loop { break 5 }"), "(loop {(break 5)})");
    assert_eq!(
        parse("'outer: for i in 0..3 { break 'outer }"),
        "(for i (.. 0 3) {(break 'outer)})"
    );
    assert_eq!(parse("loop { break\n5 }"), "(loop {(break) 5})");
    assert_eq!(parse("fun f() { return }"), "(fun f {(return)})");
}

#[test]
fn fstrings_parse_their_holes() {
    assert_eq!(parse(r#"f"a {x + 1} b""#), r#"(f "a " (+ x 1) " b")"#);
}

#[test]
fn errors_are_clear() {
    assert!(parse_err("let = 5").contains("expected a name"));
    assert!(parse_err("(1 + 2").contains("expected ')'"));
    assert!(parse_err("1 +").contains("expected an expression"));
    assert!(parse_err("let match = 1").contains("reserved"));
    assert!(parse_err("5 = 3").contains("left side of an assignment"));
    assert!(parse_err("}").contains("unmatched"));
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let src = "(".repeat(5000) + "1" + &")".repeat(5000);
    assert!(parse_err(&src).contains("nested too deeply"));
    let chain = vec!["1"; 5000].join(" + ");
    assert!(parse_err(&chain).contains("nested too deeply"));
    let ok = vec!["1"; 500].join(" + ");
    parse(&ok);
}
