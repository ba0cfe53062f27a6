//! Recursive-descent parser with precedence climbing for binary operators.
//!
//! Precedence, tightest first, all binary operators left-associative (`**` included):
//! postfix > unary > `**` > `* / %` > `+ -` > `<< >>` > `< <= > >=` > `== !=` > `&` >
//! `^ .. ..=` > `|` > `&&` > `|| ?:` > assignment (right-associative).
//!
//! Nesting is bounded (`MAX_DEPTH`), so a hostile input cannot overflow the stack of this
//! parser or of the recursive stages after it: they all recurse no deeper than the tree.

use std::rc::Rc;

use crate::error::Error;
use crate::syntax::ast::*;
use crate::syntax::lexer::{tokenize, tokenize_at, FPiece, Kw, Punct, Tok, Token};
use crate::syntax::source::Span;
use tables::{binary_op, compound_op, describe, ends_with_block, is_place, OpKind};

/// The deepest expression nesting accepted (parentheses, blocks, operator chains).
pub const MAX_DEPTH: usize = 1000;

pub struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    source_id: u32,
    depth: usize,
}

/// Parses a whole program (or REPL input) into the body of a script function.
pub fn parse_program(src: &str, source_id: u32, name: &str) -> Result<Function, Error> {
    let tokens = tokenize(src, source_id)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        source_id,
        depth: 0,
    };
    let start = p.peek_span();
    let stmts = p.statements(true)?;
    let end = p.peek_span();
    let span = start.to(end);
    Ok(Function {
        name: Rc::from(name),
        params: Vec::new(),
        body: Expr {
            kind: ExprKind::Block(Block {
                stmts,
                entry_cells: Vec::new(),
            }),
            span,
        },
        span,
        layout: FrameLayout {
            is_script: true,
            ..FrameLayout::default()
        },
    })
}

/// Whether a parse error means the input merely stopped early (the REPL then asks for
/// another line) rather than being wrong.
pub fn is_incomplete(src: &str, err: &Error) -> bool {
    err.span.lo as usize >= src.trim_end().len()
        || matches!(&err.kind, crate::error::ErrorKind::Syntax(m)
            if m.starts_with("unterminated"))
}

type PResult<T> = Result<T, Error>;

impl Parser {
    // ---- token helpers ----

    fn peek(&self) -> &Tok {
        &self.tokens[self.pos].tok
    }

    fn peek_at(&self, k: usize) -> &Tok {
        let i = (self.pos + k).min(self.tokens.len() - 1);
        &self.tokens[i].tok
    }

    fn peek_span(&self) -> Span {
        self.tokens[self.pos].span
    }

    fn newline_before(&self) -> bool {
        self.tokens[self.pos].newline_before
    }

    fn prev_span(&self) -> Span {
        self.tokens[self.pos.saturating_sub(1)].span
    }

    fn bump(&mut self) -> Token {
        let t = self.tokens[self.pos].clone();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn is(&self, p: Punct) -> bool {
        *self.peek() == Tok::P(p)
    }

    fn is_kw(&self, k: Kw) -> bool {
        *self.peek() == Tok::Kw(k)
    }

    fn eat(&mut self, p: Punct) -> bool {
        if self.is(p) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, p: Punct, context: &str) -> PResult<Span> {
        if self.is(p) {
            Ok(self.bump().span)
        } else {
            Err(self.unexpected(&format!("expected '{}' {context}", p.text())))
        }
    }

    fn unexpected(&self, what: &str) -> Error {
        let found = describe(self.peek());
        Error::syntax(format!("{what}, found {found}"), self.peek_span())
    }

    fn ident(&mut self, context: &str) -> PResult<(Name, Span)> {
        match self.peek().clone() {
            Tok::Ident(name) => {
                let span = self.bump().span;
                Ok((Rc::from(name.as_str()), span))
            }
            Tok::Kw(Kw::Reserved(word)) => Err(Error::syntax(
                format!("'{word}' is a reserved word and cannot be used as a name"),
                self.peek_span(),
            )),
            _ => Err(self.unexpected(&format!("expected a name {context}"))),
        }
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Error::syntax(
                format!("expression nested too deeply (more than {MAX_DEPTH} levels)"),
                self.peek_span(),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    // ---- statements ----

    /// Statements up to `}` (or end of input at the top level).
    fn statements(&mut self, top: bool) -> PResult<Vec<Expr>> {
        let mut stmts = Vec::new();
        loop {
            while self.eat(Punct::Semi) {}
            match self.peek() {
                Tok::Eof if top => return Ok(stmts),
                Tok::Eof => return Err(self.unexpected("expected '}' to close the block")),
                Tok::P(Punct::RBrace) if !top => return Ok(stmts),
                Tok::P(Punct::RBrace) => {
                    return Err(Error::syntax("unmatched '}'", self.peek_span()))
                }
                _ => {}
            }
            let stmt = self.statement()?;
            stmts.push(stmt);
            // Two statements on one line need a `;` between them, unless the first ended
            // with a block.
            if !self.is(Punct::Semi)
                && !self.is(Punct::RBrace)
                && *self.peek() != Tok::Eof
                && !self.newline_before()
                && !ends_with_block(stmts.last().map(|s| &s.kind))
            {
                return Err(self.unexpected("expected ';' or a new line after the statement"));
            }
        }
    }

    /// A statement is an expression, except that a block-like expression (`if`, `while`,
    /// `for`, `loop`, `{}`, `fun`) in statement position ends the statement at its `}`,
    /// so the next line is never glued to it as an operand.
    fn statement(&mut self) -> PResult<Expr> {
        let block_like = matches!(
            self.peek(),
            Tok::Kw(Kw::If | Kw::While | Kw::For | Kw::Loop | Kw::Fun) | Tok::Label(_)
        ) || self.is(Punct::LBrace);
        if block_like {
            let is_lambda = self.is_kw(Kw::Fun) && *self.peek_at(1) == Tok::P(Punct::LParen);
            if !is_lambda {
                let e = self.primary()?;
                // `if c {1} else {2}.to_string()` and friends still chain.
                if self.is(Punct::Dot) {
                    let e = self.postfix_ops(e)?;
                    return self.finish_expr(e);
                }
                return Ok(e);
            }
        }
        self.expr()
    }

    // ---- expressions ----

    pub fn expr(&mut self) -> PResult<Expr> {
        self.enter()?;
        let lhs = self.ternary()?;
        let result = self.assignment(lhs);
        self.leave();
        result
    }

    /// Continue an already parsed operand with binary operators, ternary and assignment.
    fn finish_expr(&mut self, lhs: Expr) -> PResult<Expr> {
        let lhs = self.binary_rest(lhs, 1)?;
        let lhs = self.ternary_rest(lhs)?;
        self.assignment(lhs)
    }

    fn assignment(&mut self, lhs: Expr) -> PResult<Expr> {
        let op = match self.peek() {
            Tok::P(Punct::Eq) => None,
            Tok::P(p) => match compound_op(*p) {
                Some(op) => Some(op),
                None => return Ok(lhs),
            },
            _ => return Ok(lhs),
        };
        let op_span = self.bump().span;
        if !is_place(&lhs) {
            return Err(Error::syntax(
                "the left side of an assignment must be a variable or an index expression",
                lhs.span.to(op_span),
            ));
        }
        let value = self.expr()?;
        let span = lhs.span.to(value.span);
        Ok(Expr {
            kind: ExprKind::Assign {
                target: Box::new(lhs),
                op,
                value: Box::new(value),
            },
            span,
        })
    }

    fn ternary(&mut self) -> PResult<Expr> {
        let cond = self.binary(1)?;
        self.ternary_rest(cond)
    }

    fn ternary_rest(&mut self, cond: Expr) -> PResult<Expr> {
        if !self.is(Punct::Question) {
            return Ok(cond);
        }
        self.bump();
        self.enter()?;
        let then_branch = self.expr()?;
        self.expect(Punct::Colon, "in the ternary 'cond ? a : b'")?;
        let else_branch = self.ternary()?;
        self.leave();
        let span = cond.span.to(else_branch.span);
        Ok(Expr {
            kind: ExprKind::If {
                cond: Box::new(cond),
                then_branch: Box::new(then_branch),
                else_branch: Some(Box::new(else_branch)),
            },
            span,
        })
    }

    fn binary(&mut self, min_prec: u8) -> PResult<Expr> {
        let lhs = self.unary()?;
        self.binary_rest(lhs, min_prec)
    }

    fn binary_rest(&mut self, mut lhs: Expr, min_prec: u8) -> PResult<Expr> {
        let mut chained = 0;
        while let Tok::P(p) = *self.peek() {
            let Some((prec, kind)) = binary_op(p) else {
                break;
            };
            if prec < min_prec {
                break;
            }
            self.bump();
            // A left-associative chain builds a tree as deep as the chain is long.
            self.enter()?;
            chained += 1;
            let rhs = self.binary(prec + 1)?;
            let span = lhs.span.to(rhs.span);
            let kind = match kind {
                OpKind::Bin(op) => ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
                OpKind::Logic(op) => ExprKind::Logic(op, Box::new(lhs), Box::new(rhs)),
                OpKind::Range(inclusive) => ExprKind::Range {
                    start: Box::new(lhs),
                    end: Box::new(rhs),
                    inclusive,
                },
            };
            lhs = Expr { kind, span };
        }
        for _ in 0..chained {
            self.leave();
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> PResult<Expr> {
        let op = match self.peek() {
            Tok::P(Punct::Minus) => UnOp::Neg,
            Tok::P(Punct::Bang) => UnOp::Not,
            Tok::P(Punct::Tilde) => UnOp::BitNot,
            _ => return self.postfix(),
        };
        let start = self.bump().span;
        self.enter()?;
        let operand = self.unary()?;
        self.leave();
        let span = start.to(operand.span);
        Ok(Expr {
            kind: ExprKind::Unary(op, Box::new(operand)),
            span,
        })
    }

    fn postfix(&mut self) -> PResult<Expr> {
        let e = self.primary()?;
        // A named `fun` inside an expression is a function value; only a `fun` statement
        // binds its name.
        let e = match e.kind {
            ExprKind::FunDecl { func, .. } => Expr {
                kind: ExprKind::Lambda(func),
                span: e.span,
            },
            kind => Expr { kind, span: e.span },
        };
        self.postfix_ops(e)
    }

    fn postfix_ops(&mut self, mut e: Expr) -> PResult<Expr> {
        let mut chained = 0;
        loop {
            match self.peek() {
                // A call's `(` must be on the callee's line; on a new line it starts a new
                // statement. (An index's `[` may continue onto the next line.)
                Tok::P(Punct::LParen) if !self.newline_before() => {
                    self.bump();
                    let args = self.args(Punct::RParen, "to close the argument list")?;
                    let span = e.span.to(self.prev_span());
                    e = Expr {
                        kind: ExprKind::Call {
                            callee: Box::new(e),
                            args,
                        },
                        span,
                    };
                }
                Tok::P(Punct::LBracket) => {
                    self.bump();
                    let index = self.expr()?;
                    self.expect(Punct::RBracket, "to close the index")?;
                    let span = e.span.to(self.prev_span());
                    e = Expr {
                        kind: ExprKind::Index {
                            base: Box::new(e),
                            index: Box::new(index),
                        },
                        span,
                    };
                }
                Tok::P(Punct::Dot) => {
                    self.bump();
                    let (method, mspan) = match self.peek().clone() {
                        Tok::Ident(name) => {
                            let span = self.bump().span;
                            (Rc::<str>::from(name.as_str()), span)
                        }
                        _ => return Err(self.unexpected("expected a method name after '.'")),
                    };
                    if !self.is(Punct::LParen) {
                        return Err(Error::syntax(
                            format!("fields are not supported; did you mean '.{method}()'?"),
                            mspan,
                        ));
                    }
                    self.bump();
                    let args = self.args(Punct::RParen, "to close the argument list")?;
                    let span = e.span.to(self.prev_span());
                    e = Expr {
                        kind: ExprKind::Method {
                            receiver: Box::new(e),
                            method,
                            args,
                        },
                        span,
                    };
                }
                _ => break,
            }
            self.enter()?;
            chained += 1;
        }
        for _ in 0..chained {
            self.leave();
        }
        Ok(e)
    }

    /// Comma-separated expressions up to `close` (already past the opener).
    fn args(&mut self, close: Punct, context: &str) -> PResult<Vec<Expr>> {
        let mut args = Vec::new();
        loop {
            if self.eat(close) {
                return Ok(args);
            }
            args.push(self.expr()?);
            if !self.eat(Punct::Comma) {
                self.expect(close, context)?;
                return Ok(args);
            }
        }
    }

    fn primary(&mut self) -> PResult<Expr> {
        let span = self.peek_span();
        let lit = |kind| Ok(Expr { kind, span });
        match self.peek().clone() {
            Tok::Int(v) => {
                self.bump();
                lit(ExprKind::Int(v))
            }
            Tok::Float(v) => {
                self.bump();
                lit(ExprKind::Float(v))
            }
            Tok::Str(s) => {
                self.bump();
                lit(ExprKind::Str(Rc::new(s)))
            }
            Tok::FStr(pieces) => {
                self.bump();
                self.fstring(pieces, span)
            }
            Tok::Kw(Kw::True) => {
                self.bump();
                lit(ExprKind::Bool(true))
            }
            Tok::Kw(Kw::False) => {
                self.bump();
                lit(ExprKind::Bool(false))
            }
            Tok::Kw(Kw::Null) => {
                self.bump();
                lit(ExprKind::Nil)
            }
            Tok::Ident(name) => {
                self.bump();
                if name == "nil" {
                    return lit(ExprKind::Nil);
                }
                lit(ExprKind::Var(Var {
                    name: Rc::from(name.as_str()),
                    res: Res::Unresolved,
                }))
            }
            Tok::P(Punct::LParen) => {
                self.bump();
                if self.eat(Punct::RParen) {
                    return Ok(Expr {
                        kind: ExprKind::Nil,
                        span: span.to(self.prev_span()),
                    });
                }
                let mut e = self.expr()?;
                if self.is(Punct::Comma) {
                    return Err(Error::syntax("tuples are not supported", self.peek_span()));
                }
                self.expect(Punct::RParen, "to close the parenthesis")?;
                e.span = span.to(self.prev_span());
                Ok(e)
            }
            Tok::P(Punct::LBracket) => {
                self.bump();
                self.enter()?;
                let items = self.args(Punct::RBracket, "to close the array")?;
                self.leave();
                Ok(Expr {
                    kind: ExprKind::Array(items),
                    span: span.to(self.prev_span()),
                })
            }
            Tok::P(Punct::LBrace) => self.block_expr(),
            Tok::P(Punct::Pipe) | Tok::P(Punct::OrOr) => self.closure(),
            Tok::Kw(Kw::If) => self.if_expr(),
            Tok::Kw(Kw::While) => self.while_expr(None, span),
            Tok::Kw(Kw::Loop) => self.loop_expr(None, span),
            Tok::Kw(Kw::For) => self.for_expr(None, span),
            Tok::Label(name) => {
                self.bump();
                self.expect(Punct::Colon, "after the loop label")?;
                let label = Some(Rc::<str>::from(name.as_str()));
                match self.peek() {
                    Tok::Kw(Kw::While) => self.while_expr(label, span),
                    Tok::Kw(Kw::Loop) => self.loop_expr(label, span),
                    Tok::Kw(Kw::For) => self.for_expr(label, span),
                    _ => Err(self.unexpected("expected 'while', 'loop' or 'for' after a label")),
                }
            }
            Tok::Kw(Kw::Fun) => self.function(),
            Tok::Kw(Kw::Let) | Tok::Kw(Kw::Var) => self.let_expr(),
            Tok::Kw(Kw::Return) => {
                self.bump();
                let value = self.optional_value()?;
                let span = value.as_ref().map_or(span, |v| span.to(v.span));
                Ok(Expr {
                    kind: ExprKind::Return(value.map(Box::new)),
                    span,
                })
            }
            Tok::Kw(Kw::Break) => {
                self.bump();
                let label = self.optional_label();
                let value = self.optional_value()?;
                let end = value.as_ref().map_or(self.prev_span(), |v| v.span);
                Ok(Expr {
                    kind: ExprKind::Break {
                        label,
                        value: value.map(Box::new),
                    },
                    span: span.to(end),
                })
            }
            Tok::Kw(Kw::Continue) => {
                self.bump();
                let label = self.optional_label();
                Ok(Expr {
                    kind: ExprKind::Continue { label },
                    span: span.to(self.prev_span()),
                })
            }
            Tok::Kw(Kw::Reserved(word)) => Err(Error::syntax(
                format!("'{word}' is not supported by this engine's core language"),
                span,
            )),
            _ => Err(self.unexpected("expected an expression")),
        }
    }

    fn optional_label(&mut self) -> Option<Name> {
        if let Tok::Label(name) = self.peek().clone() {
            if !self.newline_before() {
                self.bump();
                return Some(Rc::from(name.as_str()));
            }
        }
        None
    }

    /// The value of `return`/`break`: present only if it starts on the same line.
    fn optional_value(&mut self) -> PResult<Option<Expr>> {
        if self.newline_before()
            || matches!(
                self.peek(),
                Tok::P(
                    Punct::Semi | Punct::RBrace | Punct::RParen | Punct::Comma | Punct::RBracket
                ) | Tok::Eof
            )
        {
            return Ok(None);
        }
        Ok(Some(self.expr()?))
    }

    fn fstring(&mut self, pieces: Vec<FPiece>, span: Span) -> PResult<Expr> {
        let mut parts = Vec::new();
        for piece in pieces {
            match piece {
                FPiece::Lit(s) => parts.push(FPart::Lit(s)),
                FPiece::Expr { src, offset, spec } => {
                    let tokens = tokenize_at(&src, self.source_id, offset)?;
                    let mut sub = Parser {
                        tokens,
                        pos: 0,
                        source_id: self.source_id,
                        depth: self.depth,
                    };
                    let e = sub.expr()?;
                    if *sub.peek() != Tok::Eof {
                        return Err(sub.unexpected("expected '}' after the f-string expression"));
                    }
                    parts.push(FPart::Hole(e, spec));
                }
            }
        }
        Ok(Expr {
            kind: ExprKind::FString(parts),
            span,
        })
    }

    fn block_expr(&mut self) -> PResult<Expr> {
        let open = self.expect(Punct::LBrace, "to open a block")?;
        self.enter()?;
        let stmts = self.statements(false)?;
        self.leave();
        self.expect(Punct::RBrace, "to close the block")?;
        Ok(Expr {
            kind: ExprKind::Block(Block {
                stmts,
                entry_cells: Vec::new(),
            }),
            span: open.to(self.prev_span()),
        })
    }

    /// A condition: an expression without a trailing block-literal ambiguity (we have no
    /// struct literals, so `if x {` is unambiguous).
    fn condition(&mut self) -> PResult<Expr> {
        if self.is(Punct::LBrace) {
            return Err(self.unexpected("expected a condition"));
        }
        self.expr()
    }

    fn if_expr(&mut self) -> PResult<Expr> {
        let start = self.bump().span;
        self.enter()?;
        let cond = self.condition()?;
        let then_branch = self.block_expr()?;
        let else_branch = if self.is_kw(Kw::Else) {
            self.bump();
            if self.is_kw(Kw::If) {
                Some(Box::new(self.if_expr()?))
            } else {
                Some(Box::new(self.block_expr()?))
            }
        } else {
            None
        };
        self.leave();
        Ok(Expr {
            kind: ExprKind::If {
                cond: Box::new(cond),
                then_branch: Box::new(then_branch),
                else_branch,
            },
            span: start.to(self.prev_span()),
        })
    }

    fn while_expr(&mut self, label: Option<Name>, start: Span) -> PResult<Expr> {
        self.bump();
        self.enter()?;
        let cond = self.condition()?;
        let body = self.block_expr()?;
        self.leave();
        Ok(Expr {
            kind: ExprKind::While {
                label,
                cond: Box::new(cond),
                body: Box::new(body),
                loop_id: 0,
            },
            span: start.to(self.prev_span()),
        })
    }

    fn loop_expr(&mut self, label: Option<Name>, start: Span) -> PResult<Expr> {
        self.bump();
        self.enter()?;
        let body = self.block_expr()?;
        self.leave();
        Ok(Expr {
            kind: ExprKind::Loop {
                label,
                body: Box::new(body),
                loop_id: 0,
            },
            span: start.to(self.prev_span()),
        })
    }

    fn for_expr(&mut self, label: Option<Name>, start: Span) -> PResult<Expr> {
        self.bump();
        self.enter()?;
        let (name, name_span) = self.ident("after 'for'")?;
        if !self.is_kw(Kw::In) {
            return Err(self.unexpected("expected 'in' after the loop variable"));
        }
        self.bump();
        let iter = self.condition()?;
        let body = self.block_expr()?;
        self.leave();
        Ok(Expr {
            kind: ExprKind::For {
                label,
                var: Binding {
                    name,
                    span: name_span,
                    res: Res::Unresolved,
                },
                iter: Box::new(iter),
                body: Box::new(body),
                loop_id: 0,
            },
            span: start.to(self.prev_span()),
        })
    }

    fn let_expr(&mut self) -> PResult<Expr> {
        let start = self.bump().span;
        if self.is_kw(Kw::Mut) {
            self.bump();
        }
        let (name, name_span) = self.ident("after 'let'")?;
        if self.eat(Punct::Colon) {
            self.skip_type()?;
        }
        let value = if self.eat(Punct::Eq) {
            Some(Box::new(self.expr()?))
        } else {
            None
        };
        let end = value.as_ref().map_or(name_span, |v| v.span);
        Ok(Expr {
            kind: ExprKind::Let {
                binding: Binding {
                    name,
                    span: name_span,
                    res: Res::Unresolved,
                },
                value,
            },
            span: start.to(end),
        })
    }
}

mod functions;
mod tables;

#[cfg(test)]
mod tests;
