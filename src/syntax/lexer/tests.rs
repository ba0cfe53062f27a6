//! Lexer tests.

use super::*;

fn toks(src: &str) -> Vec<Tok> {
    tokenize(src, 0)
        .unwrap()
        .into_iter()
        .map(|t| t.tok)
        .filter(|t| *t != Tok::Eof)
        .collect()
}

#[test]
fn numbers() {
    assert_eq!(
        toks("42 0xff 0XFF 5i32 7u8"),
        vec![
            Tok::Int(42),
            Tok::Int(255),
            Tok::Int(255),
            Tok::Int(5),
            Tok::Int(7)
        ]
    );
    assert_eq!(
        toks("1.5 2.0e3 1e10 1e-2"),
        vec![
            Tok::Float(1.5),
            Tok::Float(2000.0),
            Tok::Float(1e10),
            Tok::Float(0.01)
        ]
    );
    assert_eq!(
        toks("1..3"),
        vec![Tok::Int(1), Tok::P(Punct::DotDot), Tok::Int(3)]
    );
    assert!(tokenize("9223372036854775808", 0).is_err());
    assert_eq!(toks("9223372036854775807"), vec![Tok::Int(i64::MAX)]);
}

#[test]
fn comments_nest_and_hash_comments() {
    assert_eq!(
        toks("1 /* a /* b */ c */ 2 # three\n4 // five\n/// doc\n6"),
        vec![Tok::Int(1), Tok::Int(2), Tok::Int(4), Tok::Int(6)]
    );
    assert!(tokenize("/* open /* */", 0).is_err());
}

#[test]
fn strings_and_escapes() {
    assert_eq!(
        toks(r#""a\n\t\"b\u{48}""#),
        vec![Tok::Str("a\n\t\"bH".into())]
    );
    assert_eq!(toks(r#"r"a\nb""#), vec![Tok::Str("a\\nb".into())]);
    assert_eq!(
        toks(r##"r#"say "hi""#"##),
        vec![Tok::Str("say \"hi\"".into())]
    );
    assert!(tokenize("\"abc", 0).is_err());
    assert!(tokenize(r#""\q""#, 0).is_err());
}

#[test]
fn fstrings_split_into_pieces() {
    let t = toks(r#"f"a {x} b {y:.2} {{c}}""#);
    let Tok::FStr(pieces) = &t[0] else { panic!() };
    assert_eq!(pieces.len(), 5);
    assert_eq!(pieces[0], FPiece::Lit("a ".into()));
    assert!(matches!(&pieces[1], FPiece::Expr { src, .. } if src == "x"));
    assert!(matches!(&pieces[3], FPiece::Expr { src, spec, .. }
        if src == "y" && spec.precision == Some(2)));
    assert_eq!(pieces[4], FPiece::Lit(" {c}".into()));
    let t = toks(r#"f"{c ? 1 : 2}""#);
    let Tok::FStr(pieces) = &t[0] else { panic!() };
    assert!(matches!(&pieces[0], FPiece::Expr { src, .. } if src == "c ? 1 : 2"));
}

#[test]
fn operators_longest_match() {
    assert_eq!(
        toks("**= ** * <<= << <= ..= .. ."),
        vec![
            Tok::P(Punct::StarStarEq),
            Tok::P(Punct::StarStar),
            Tok::P(Punct::Star),
            Tok::P(Punct::ShlEq),
            Tok::P(Punct::Shl),
            Tok::P(Punct::Le),
            Tok::P(Punct::DotDotEq),
            Tok::P(Punct::DotDot),
            Tok::P(Punct::Dot)
        ]
    );
}

#[test]
fn labels_and_chars() {
    assert_eq!(
        toks("'outer 'a'"),
        vec![Tok::Label("outer".into()), Tok::Str("a".into())]
    );
}

#[test]
fn newline_flags() {
    let t = tokenize("a\n(b) c", 0).unwrap();
    assert!(t[0].newline_before);
    assert!(t[1].newline_before);
    assert!(!t[2].newline_before);
    assert!(!t[4].newline_before);
}
