//! Operator tables (precedence, compound assignment) and token descriptions for messages.

use crate::syntax::ast::*;
use crate::syntax::lexer::{Kw, Punct, Tok};

pub(super) enum OpKind {
    Bin(BinOp),
    Logic(LogicOp),
    Range(bool),
}

pub(super) fn binary_op(p: Punct) -> Option<(u8, OpKind)> {
    use OpKind::*;
    Some(match p {
        Punct::OrOr => (1, Logic(LogicOp::Or)),
        Punct::AndAnd => (2, Logic(LogicOp::And)),
        Punct::Pipe => (3, Bin(BinOp::BitOr)),
        Punct::Caret => (4, Bin(BinOp::BitXor)),
        Punct::DotDot => (4, Range(false)),
        Punct::DotDotEq => (4, Range(true)),
        Punct::Amp => (5, Bin(BinOp::BitAnd)),
        Punct::EqEq => (6, Bin(BinOp::Eq)),
        Punct::Ne => (6, Bin(BinOp::Ne)),
        Punct::Lt => (7, Bin(BinOp::Lt)),
        Punct::Le => (7, Bin(BinOp::Le)),
        Punct::Gt => (7, Bin(BinOp::Gt)),
        Punct::Ge => (7, Bin(BinOp::Ge)),
        Punct::Shl => (8, Bin(BinOp::Shl)),
        Punct::Shr => (8, Bin(BinOp::Shr)),
        Punct::Plus => (9, Bin(BinOp::Add)),
        Punct::Minus => (9, Bin(BinOp::Sub)),
        Punct::Star => (10, Bin(BinOp::Mul)),
        Punct::Slash => (10, Bin(BinOp::Div)),
        Punct::Percent => (10, Bin(BinOp::Mod)),
        Punct::StarStar => (11, Bin(BinOp::Pow)),
        _ => return None,
    })
}

pub(super) fn compound_op(p: Punct) -> Option<BinOp> {
    Some(match p {
        Punct::PlusEq => BinOp::Add,
        Punct::MinusEq => BinOp::Sub,
        Punct::StarEq => BinOp::Mul,
        Punct::SlashEq => BinOp::Div,
        Punct::PercentEq => BinOp::Mod,
        Punct::StarStarEq => BinOp::Pow,
        Punct::AmpEq => BinOp::BitAnd,
        Punct::PipeEq => BinOp::BitOr,
        Punct::CaretEq => BinOp::BitXor,
        Punct::ShlEq => BinOp::Shl,
        _ => return None,
    })
}

pub(super) fn is_place(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Var(_) => true,
        ExprKind::Index { base, .. } => is_place(base),
        _ => false,
    }
}

pub(super) fn ends_with_block(kind: Option<&ExprKind>) -> bool {
    matches!(
        kind,
        Some(
            ExprKind::If { .. }
                | ExprKind::While { .. }
                | ExprKind::Loop { .. }
                | ExprKind::For { .. }
                | ExprKind::Block(_)
                | ExprKind::FunDecl { .. }
                | ExprKind::Lambda(_)
        )
    )
}

pub(super) fn describe(t: &Tok) -> String {
    match t {
        Tok::Int(v) => format!("integer {v}"),
        Tok::Float(v) => format!("float {v}"),
        Tok::Str(_) | Tok::FStr(_) => "a string".to_string(),
        Tok::Ident(n) => format!("'{n}'"),
        Tok::Label(n) => format!("label '{n}"),
        Tok::Kw(k) => format!("keyword '{}'", kw_text(*k)),
        Tok::P(p) => format!("'{}'", p.text()),
        Tok::Eof => "end of input".to_string(),
    }
}

pub(super) fn kw_text(k: Kw) -> &'static str {
    match k {
        Kw::Fun => "fun",
        Kw::Let => "let",
        Kw::Var => "var",
        Kw::Mut => "mut",
        Kw::If => "if",
        Kw::Else => "else",
        Kw::While => "while",
        Kw::Loop => "loop",
        Kw::For => "for",
        Kw::In => "in",
        Kw::Break => "break",
        Kw::Continue => "continue",
        Kw::Return => "return",
        Kw::True => "true",
        Kw::False => "false",
        Kw::Null => "null",
        Kw::Reserved(w) => w,
    }
}
