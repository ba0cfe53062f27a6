//! Functions, closures, parameters, and the type annotations they may carry (parsed and
//! ignored).

use std::rc::Rc;

use super::{PResult, Parser};
use crate::error::Error;
use crate::syntax::ast::*;
use crate::syntax::lexer::{Kw, Punct, Tok};

impl Parser {
    /// Types are parsed and ignored: a path with optional generic arguments, a reference,
    /// an array or tuple type, or a function type.
    pub(super) fn skip_type(&mut self) -> PResult<()> {
        self.enter()?;
        while self.eat(Punct::Amp) {
            if self.is_kw(Kw::Mut) {
                self.bump();
            }
        }
        match self.peek().clone() {
            Tok::Ident(_) => {
                self.bump();
                while self.eat(Punct::ColonColon) {
                    self.ident("in the type path")?;
                }
                if self.eat(Punct::Lt) {
                    loop {
                        self.skip_type()?;
                        if !self.eat(Punct::Comma) {
                            break;
                        }
                    }
                    // `>>` closes two generic lists at once.
                    if !self.eat(Punct::Gt) {
                        if self.is(Punct::Shr) {
                            self.tokens[self.pos].tok = Tok::P(Punct::Gt);
                        } else {
                            return Err(self.unexpected("expected '>' to close the type"));
                        }
                    }
                }
            }
            Tok::P(Punct::LBracket) => {
                self.bump();
                self.skip_type()?;
                if self.eat(Punct::Semi) {
                    self.expr()?;
                }
                self.expect(Punct::RBracket, "to close the array type")?;
            }
            Tok::P(Punct::LParen) => {
                self.bump();
                while !self.eat(Punct::RParen) {
                    self.skip_type()?;
                    if !self.eat(Punct::Comma) {
                        self.expect(Punct::RParen, "to close the tuple type")?;
                        break;
                    }
                }
            }
            Tok::Kw(Kw::Fun) => {
                self.bump();
                self.expect(Punct::LParen, "in the function type")?;
                while !self.eat(Punct::RParen) {
                    self.skip_type()?;
                    if !self.eat(Punct::Comma) {
                        self.expect(Punct::RParen, "to close the function type")?;
                        break;
                    }
                }
                if self.eat(Punct::Arrow) {
                    self.skip_type()?;
                }
            }
            _ => return Err(self.unexpected("expected a type")),
        }
        self.leave();
        Ok(())
    }

    /// `fun name(params) -> T { body }` or the anonymous `fun(params) { body }`.
    pub(super) fn function(&mut self) -> PResult<Expr> {
        let start = self.bump().span;
        let named = if self.is(Punct::LParen) {
            None
        } else {
            Some(self.ident("after 'fun'")?)
        };
        if self.eat(Punct::Lt) {
            // Generic parameters are ignored like types.
            while !self.eat(Punct::Gt) {
                self.ident("in the generic parameters")?;
                if !self.eat(Punct::Comma) {
                    self.expect(Punct::Gt, "to close the generic parameters")?;
                    break;
                }
            }
        }
        self.expect(Punct::LParen, "to open the parameter list")?;
        let params = self.params(Punct::RParen)?;
        if self.eat(Punct::Arrow) {
            self.skip_type()?;
        }
        self.enter()?;
        let body = self.block_expr()?;
        self.leave();
        let span = start.to(self.prev_span());
        let name: Name = named
            .as_ref()
            .map(|(n, _)| n.clone())
            .unwrap_or_else(|| Rc::from("<lambda>"));
        let func = Rc::new(Function {
            name,
            params,
            body,
            span,
            layout: FrameLayout::default(),
        });
        Ok(Expr {
            kind: match named {
                Some((name, name_span)) => ExprKind::FunDecl {
                    binding: Binding {
                        name,
                        span: name_span,
                        res: Res::Unresolved,
                    },
                    func,
                },
                None => ExprKind::Lambda(func),
            },
            span,
        })
    }

    fn params(&mut self, close: Punct) -> PResult<Vec<Param>> {
        let mut params: Vec<Param> = Vec::new();
        loop {
            if self.eat(close) {
                return Ok(params);
            }
            if self.is_kw(Kw::Mut) {
                self.bump();
            }
            let (name, span) = self.ident("for the parameter")?;
            if params.iter().any(|p| p.binding.name == name) {
                return Err(Error::syntax(format!("duplicate parameter '{name}'"), span));
            }
            if self.eat(Punct::Colon) {
                self.skip_type()?;
            }
            let default = if self.eat(Punct::Eq) {
                Some(self.ternary()?)
            } else {
                None
            };
            params.push(Param {
                binding: Binding {
                    name,
                    span,
                    res: Res::Unresolved,
                },
                default,
            });
            if !self.eat(Punct::Comma) {
                self.expect(close, "to close the parameter list")?;
                return Ok(params);
            }
        }
    }

    /// `|a, b| expr`, `|| expr`.
    pub(super) fn closure(&mut self) -> PResult<Expr> {
        let start = self.peek_span();
        let params = if self.eat(Punct::OrOr) {
            Vec::new()
        } else {
            self.bump();
            self.params(Punct::Pipe)?
        };
        if self.eat(Punct::Arrow) {
            self.skip_type()?;
        }
        self.enter()?;
        let body = self.expr()?;
        self.leave();
        let span = start.to(body.span);
        Ok(Expr {
            kind: ExprKind::Lambda(Rc::new(Function {
                name: Rc::from("<lambda>"),
                params,
                body,
                span,
                layout: FrameLayout::default(),
            })),
            span,
        })
    }
}
