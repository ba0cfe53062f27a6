//! Errors are data: a kind and the span of the culprit. Every tier raises the same kinds
//! with the same spans, and this file is the one place that turns them into text.

use std::fmt;

use owo_colors::OwoColorize;

use crate::syntax::source::{SourceMap, Span};
use crate::value::Type;

#[derive(Clone, Debug, PartialEq)]
pub enum ErrorKind {
    /// A lexer or parser error; the text says what was expected.
    Syntax(String),
    DivisionByZero,
    Overflow(ArithOp),
    UndefinedVariable(String),
    Arity {
        min: usize,
        max: usize,
        got: usize,
    },
    IndexOutOfBounds {
        index: i64,
        len: usize,
        /// "array" or "string".
        what: &'static str,
    },
    /// `Cannot add boolean and integer`.
    BinaryType {
        op: ArithOp,
        lhs: Type,
        rhs: Type,
    },
    /// `Cannot compare integer and string for ordering`.
    Compare {
        lhs: Type,
        rhs: Type,
    },
    /// `Cannot negate string`, `Cannot apply bitwise not to float`.
    UnaryType {
        op: &'static str,
        operand: Type,
    },
    NotCallable(Type),
    /// `Cannot index nil with integer`.
    Index {
        base: Type,
        index: Type,
    },
    UnknownMethod {
        receiver: Type,
        method: String,
    },
    /// A builtin's own complaint about its arguments.
    Builtin(String),
    RecursionLimit,
    Interrupted,
}

/// The arithmetic and bitwise operators, for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    BitAnd,
    BitOr,
    BitXor,
    Shl,
    Shr,
}

impl ArithOp {
    /// "Integer overflow in addition".
    pub fn noun(self) -> &'static str {
        match self {
            ArithOp::Add => "addition",
            ArithOp::Sub => "subtraction",
            ArithOp::Mul => "multiplication",
            ArithOp::Div => "division",
            ArithOp::Mod => "modulo",
            ArithOp::Pow => "exponentiation",
            ArithOp::BitAnd => "bitwise and",
            ArithOp::BitOr => "bitwise or",
            ArithOp::BitXor => "bitwise xor",
            ArithOp::Shl => "left shift",
            ArithOp::Shr => "right shift",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Syntax(msg) => write!(f, "Syntax error: {msg}"),
            ErrorKind::DivisionByZero => f.write_str("Division by zero"),
            ErrorKind::Overflow(op) => write!(f, "Integer overflow in {}", op.noun()),
            ErrorKind::UndefinedVariable(name) => write!(f, "Undefined variable: {name}"),
            ErrorKind::Arity { min, max, got } => {
                write!(f, "Function expects {min}-{max} arguments, got {got}")
            }
            ErrorKind::IndexOutOfBounds { index, len, what } => {
                write!(f, "Index {index} out of bounds for {what} of length {len}")
            }
            ErrorKind::BinaryType { op, lhs, rhs } => {
                let (l, r) = (lhs.name(), rhs.name());
                match op {
                    ArithOp::Add => write!(f, "Cannot add {l} and {r}"),
                    ArithOp::Sub => write!(f, "Cannot subtract {r} from {l}"),
                    ArithOp::Mul => write!(f, "Cannot multiply {l} and {r}"),
                    ArithOp::Div => write!(f, "Cannot divide {l} by {r}"),
                    ArithOp::Mod => write!(f, "Cannot compute {l} modulo {r}"),
                    ArithOp::Pow => write!(f, "Cannot compute {l} to the power of {r}"),
                    _ => write!(
                        f,
                        "Bitwise operations require integer operands, got {l} and {r}"
                    ),
                }
            }
            ErrorKind::Compare { lhs, rhs } => write!(
                f,
                "Cannot compare {} and {} for ordering",
                lhs.name(),
                rhs.name()
            ),
            ErrorKind::UnaryType { op, operand } => write!(f, "Cannot {op} {}", operand.name()),
            ErrorKind::NotCallable(t) => write!(f, "Cannot call non-function value: {}", t.name()),
            ErrorKind::Index { base, index } => {
                write!(f, "Cannot index {} with {}", base.name(), index.name())
            }
            ErrorKind::UnknownMethod { receiver, method } => match receiver {
                Type::Str => write!(f, "Unknown zero-argument string method: {method}"),
                Type::Int | Type::Float | Type::Array | Type::Bool | Type::Nil => {
                    write!(f, "Unknown {} method: {method}", receiver.name())
                }
                _ => write!(
                    f,
                    "Method '{method}' not found for type {}",
                    receiver.name()
                ),
            },
            ErrorKind::Builtin(msg) => f.write_str(msg),
            ErrorKind::RecursionLimit => f.write_str("Recursion limit exceeded"),
            ErrorKind::Interrupted => f.write_str("Interrupted"),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Error {
    pub kind: ErrorKind,
    pub span: Span,
}

impl Error {
    pub fn new(kind: ErrorKind, span: Span) -> Error {
        Error { kind, span }
    }

    pub fn syntax(msg: impl Into<String>, span: Span) -> Error {
        Error::new(ErrorKind::Syntax(msg.into()), span)
    }

    pub fn is_syntax(&self) -> bool {
        matches!(self.kind, ErrorKind::Syntax(_))
    }

    /// The one rendering of an error: a headline with the message, the location,
    /// the source line and a caret under the culprit.
    ///
    /// ```text
    /// error: Division by zero
    ///  --> ratio.ruchy:3:5
    ///   |
    /// 3 |     a / b
    ///   |     ^^^^^
    /// ```
    pub fn render(&self, sources: &SourceMap, color: bool) -> String {
        // The message itself says "Syntax error: ..." for syntax errors.
        let headline = "error";
        let mut out = String::new();
        let message = self.kind.to_string();
        if color {
            out.push_str(&format!("{}: {}\n", headline.red().bold(), message.bold()));
        } else {
            out.push_str(&format!("{headline}: {message}\n"));
        }
        let Some(src) = sources.try_get(self.span.source) else {
            return out;
        };
        let (line, col) = src.line_col(self.span.lo);
        let text = src.line_text(line);
        let gutter = line.to_string().len();
        let pad = " ".repeat(gutter);
        let arrow = format!("{pad}--> {}:{line}:{col}", src.name);
        let bar = format!("{pad} |");
        // The caret covers the span, clipped to the first line.
        let (end_line, end_col) = src.line_col(self.span.hi);
        let width = if end_line == line && end_col > col {
            end_col - col
        } else {
            text.chars().count().saturating_sub(col - 1).max(1)
        };
        // A very long line is shown as a window around the column.
        let chars: Vec<char> = text.chars().collect();
        let start = if chars.len() > SHOWN_COLUMNS && col > SHOWN_COLUMNS / 2 {
            col - 1 - SHOWN_COLUMNS / 2
        } else {
            0
        };
        let end = (start + SHOWN_COLUMNS).min(chars.len());
        let prefix = if start > 0 { "..." } else { "" };
        let suffix = if end < chars.len() { "..." } else { "" };
        let shown: String = chars[start..end].iter().collect();
        let text = format!("{prefix}{shown}{suffix}");
        let width = width.min(end.saturating_sub(col - 1)).max(1);
        let lead: String = " ".repeat(prefix.len())
            + &chars[start..(col - 1).min(chars.len())]
                .iter()
                .map(|&c| if c == '\t' { '\t' } else { ' ' })
                .collect::<String>();
        let carets = "^".repeat(width.max(1));
        if color {
            out.push_str(&format!("{}\n{}\n", arrow.blue(), bar.blue()));
            out.push_str(&format!("{} {}\n", format!("{line} |").blue(), text));
            out.push_str(&format!("{} {}{}\n", bar.blue(), lead, carets.red().bold()));
        } else {
            out.push_str(&format!(
                "{arrow}\n{bar}\n{line} | {text}\n{bar} {lead}{carets}\n"
            ));
        }
        out
    }
}

/// Columns of a source line shown under an error; longer lines show a window.
const SHOWN_COLUMNS: usize = 120;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

/// Whether stderr should be colored: a terminal, and NO_COLOR unset.
pub fn stderr_wants_color() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_caret_under_the_culprit() {
        let mut sources = SourceMap::default();
        let id = sources.add("t.ruchy", "fun f(a, b) {\n    a / b\n}\n");
        let err = Error::new(ErrorKind::DivisionByZero, Span::new(id, 18, 23));
        let text = err.render(&sources, false);
        assert_eq!(
            text,
            "error: Division by zero\n --> t.ruchy:2:5\n  |\n2 |     a / b\n  |     ^^^^^\n"
        );
    }

    #[test]
    fn a_long_line_shows_a_window_around_the_column() {
        let mut sources = SourceMap::default();
        let line = format!("{}1 / 0{}", "1 + ".repeat(100), " + 1".repeat(100));
        let id = sources.add("t.ruchy", &line);
        let err = Error::new(ErrorKind::DivisionByZero, Span::new(id, 400, 405));
        let text = err.render(&sources, false);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].ends_with("t.ruchy:1:401"));
        assert!(lines[3].starts_with("1 | ...") && lines[3].ends_with("..."));
        assert!(lines[3].len() < 140);
        // The caret is still under the culprit.
        let caret = lines[4].find('^').expect("a caret");
        assert_eq!(&lines[3][caret..caret + 5], "1 / 0");
    }

    #[test]
    fn messages_match_the_reference() {
        assert_eq!(
            ErrorKind::Overflow(ArithOp::Mul).to_string(),
            "Integer overflow in multiplication"
        );
        assert_eq!(
            ErrorKind::Arity {
                min: 3,
                max: 3,
                got: 2
            }
            .to_string(),
            "Function expects 3-3 arguments, got 2"
        );
        assert_eq!(
            ErrorKind::BinaryType {
                op: ArithOp::Add,
                lhs: Type::Bool,
                rhs: Type::Int
            }
            .to_string(),
            "Cannot add boolean and integer"
        );
    }
}
