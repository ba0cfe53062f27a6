//! The front end: source text to a resolved syntax tree.
//!
//! `lexer` → `parser` → `resolve`. The tree-walker runs the resolved tree directly; the
//! bytecode compiler translates it.

pub mod ast;
pub mod lexer;
pub mod parser;
pub mod resolve;
pub mod source;
