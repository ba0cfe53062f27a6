//! The lexer: source text to tokens. Newlines are not tokens; each token records whether a
//! newline came before it, which is all the parser needs (a call's `(` must be on the
//! callee's line; `return`/`break` take a value only from their own line).

use crate::error::Error;
use crate::syntax::source::Span;

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Int(i64),
    Float(f64),
    Str(String),
    /// `f"..."`: literal pieces and embedded expressions, already split.
    FStr(Vec<FPiece>),
    Ident(String),
    /// `'outer` in `'outer: while` and `break 'outer`.
    Label(String),
    Kw(Kw),
    P(Punct),
    Eof,
}

#[derive(Clone, Debug, PartialEq)]
pub enum FPiece {
    Lit(String),
    /// The expression's source text, its byte offset in the file, and its `:spec`.
    Expr {
        src: String,
        offset: usize,
        spec: FormatSpec,
    },
}

/// The `{x:W.P}` part of an f-string hole: width and float precision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FormatSpec {
    pub width: Option<usize>,
    pub precision: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kw {
    Fun,
    Let,
    Var,
    Mut,
    If,
    Else,
    While,
    Loop,
    For,
    In,
    Break,
    Continue,
    Return,
    True,
    False,
    Null,
    /// Reserved and not part of the core language: a clear syntax error if used.
    Reserved(&'static str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Punct {
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Comma,
    Semi,
    Colon,
    ColonColon,
    Dot,
    DotDot,
    DotDotEq,
    Arrow,
    FatArrow,
    Question,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    StarStar,
    Amp,
    Pipe,
    Caret,
    Tilde,
    Bang,
    Shl,
    Shr,
    Lt,
    Le,
    Gt,
    Ge,
    EqEq,
    Ne,
    AndAnd,
    OrOr,
    Eq,
    PlusEq,
    MinusEq,
    StarEq,
    SlashEq,
    PercentEq,
    StarStarEq,
    AmpEq,
    PipeEq,
    CaretEq,
    ShlEq,
}

impl Punct {
    pub fn text(self) -> &'static str {
        use Punct::*;
        match self {
            LParen => "(",
            RParen => ")",
            LBrace => "{",
            RBrace => "}",
            LBracket => "[",
            RBracket => "]",
            Comma => ",",
            Semi => ";",
            Colon => ":",
            ColonColon => "::",
            Dot => ".",
            DotDot => "..",
            DotDotEq => "..=",
            Arrow => "->",
            FatArrow => "=>",
            Question => "?",
            Plus => "+",
            Minus => "-",
            Star => "*",
            Slash => "/",
            Percent => "%",
            StarStar => "**",
            Amp => "&",
            Pipe => "|",
            Caret => "^",
            Tilde => "~",
            Bang => "!",
            Shl => "<<",
            Shr => ">>",
            Lt => "<",
            Le => "<=",
            Gt => ">",
            Ge => ">=",
            EqEq => "==",
            Ne => "!=",
            AndAnd => "&&",
            OrOr => "||",
            Eq => "=",
            PlusEq => "+=",
            MinusEq => "-=",
            StarEq => "*=",
            SlashEq => "/=",
            PercentEq => "%=",
            StarStarEq => "**=",
            AmpEq => "&=",
            PipeEq => "|=",
            CaretEq => "^=",
            ShlEq => "<<=",
        }
    }
}

// Longest first, so that `**=` wins over `**` and `*`.
const PUNCTS: &[(&str, Punct)] = &[
    ("**=", Punct::StarStarEq),
    ("<<=", Punct::ShlEq),
    ("..=", Punct::DotDotEq),
    ("**", Punct::StarStar),
    ("<<", Punct::Shl),
    (">>", Punct::Shr),
    ("<=", Punct::Le),
    (">=", Punct::Ge),
    ("==", Punct::EqEq),
    ("!=", Punct::Ne),
    ("&&", Punct::AndAnd),
    ("||", Punct::OrOr),
    ("+=", Punct::PlusEq),
    ("-=", Punct::MinusEq),
    ("*=", Punct::StarEq),
    ("/=", Punct::SlashEq),
    ("%=", Punct::PercentEq),
    ("&=", Punct::AmpEq),
    ("|=", Punct::PipeEq),
    ("^=", Punct::CaretEq),
    ("..", Punct::DotDot),
    ("->", Punct::Arrow),
    ("=>", Punct::FatArrow),
    ("::", Punct::ColonColon),
    ("(", Punct::LParen),
    (")", Punct::RParen),
    ("{", Punct::LBrace),
    ("}", Punct::RBrace),
    ("[", Punct::LBracket),
    ("]", Punct::RBracket),
    (",", Punct::Comma),
    (";", Punct::Semi),
    (":", Punct::Colon),
    (".", Punct::Dot),
    ("?", Punct::Question),
    ("+", Punct::Plus),
    ("-", Punct::Minus),
    ("*", Punct::Star),
    ("/", Punct::Slash),
    ("%", Punct::Percent),
    ("&", Punct::Amp),
    ("|", Punct::Pipe),
    ("^", Punct::Caret),
    ("~", Punct::Tilde),
    ("!", Punct::Bang),
    ("<", Punct::Lt),
    (">", Punct::Gt),
    ("=", Punct::Eq),
];

fn keyword(word: &str) -> Option<Kw> {
    Some(match word {
        "fun" | "fn" => Kw::Fun,
        "let" => Kw::Let,
        "var" => Kw::Var,
        "mut" => Kw::Mut,
        "if" => Kw::If,
        "else" => Kw::Else,
        "while" => Kw::While,
        "loop" => Kw::Loop,
        "for" => Kw::For,
        "in" => Kw::In,
        "break" => Kw::Break,
        "continue" => Kw::Continue,
        "return" => Kw::Return,
        "true" => Kw::True,
        "false" => Kw::False,
        "null" => Kw::Null,
        "match" | "struct" | "enum" | "impl" | "trait" | "type" | "use" | "mod" | "import"
        | "from" | "as" | "async" | "await" => Kw::Reserved(reserved_name(word)),
        _ => return None,
    })
}

fn reserved_name(word: &str) -> &'static str {
    const WORDS: [&str; 13] = [
        "match", "struct", "enum", "impl", "trait", "type", "use", "mod", "import", "from", "as",
        "async", "await",
    ];
    WORDS.iter().find(|w| **w == word).copied().unwrap_or("?")
}

#[derive(Clone, Debug)]
pub struct Token {
    pub tok: Tok,
    pub span: Span,
    pub newline_before: bool,
}

pub struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    /// Offset of `src` within the whole source (f-string holes are lexed on their own).
    base: usize,
    source_id: u32,
}

pub fn tokenize(src: &str, source_id: u32) -> Result<Vec<Token>, Error> {
    Lexer::new(src, source_id, 0).run()
}

/// Tokenize a piece of a source that starts at byte `base` (an f-string hole).
pub fn tokenize_at(src: &str, source_id: u32, base: usize) -> Result<Vec<Token>, Error> {
    Lexer::new(src, source_id, base).run()
}

impl<'a> Lexer<'a> {
    fn new(src: &'a str, source_id: u32, base: usize) -> Lexer<'a> {
        Lexer {
            src,
            bytes: src.as_bytes(),
            pos: 0,
            base,
            source_id,
        }
    }

    fn span(&self, lo: usize, hi: usize) -> Span {
        Span::new(self.source_id, self.base + lo, self.base + hi)
    }

    fn err<T>(&self, msg: impl Into<String>, lo: usize, hi: usize) -> Result<T, Error> {
        Err(Error::syntax(msg, self.span(lo, hi.max(lo + 1))))
    }

    fn peek(&self) -> u8 {
        self.at(0)
    }

    fn at(&self, k: usize) -> u8 {
        *self.bytes.get(self.pos + k).unwrap_or(&0)
    }

    fn run(mut self) -> Result<Vec<Token>, Error> {
        let mut out = Vec::new();
        loop {
            let newline_before = self.skip_trivia()?;
            let lo = self.pos;
            if self.pos >= self.bytes.len() {
                out.push(Token {
                    tok: Tok::Eof,
                    span: self.span(lo, lo),
                    newline_before: true,
                });
                return Ok(out);
            }
            let tok = self.token()?;
            out.push(Token {
                tok,
                span: self.span(lo, self.pos),
                newline_before,
            });
        }
    }

    /// Skips white space and comments; returns whether a newline was crossed.
    fn skip_trivia(&mut self) -> Result<bool, Error> {
        let mut newline = self.pos == 0;
        loop {
            match self.peek() {
                b'\n' => {
                    newline = true;
                    self.pos += 1;
                }
                b' ' | b'\t' | b'\r' => self.pos += 1,
                b'/' if self.at(1) == b'/' => self.skip_line(),
                b'#' if self.at(1) == b'[' => self.skip_attribute()?,
                b'#' => self.skip_line(),
                b'/' if self.at(1) == b'*' => {
                    if self.skip_block_comment()? {
                        newline = true;
                    }
                }
                _ => return Ok(newline),
            }
        }
    }

    fn skip_line(&mut self) {
        while self.pos < self.bytes.len() && self.peek() != b'\n' {
            self.pos += 1;
        }
    }

    /// `#[test]`-style attributes are accepted and ignored.
    fn skip_attribute(&mut self) -> Result<(), Error> {
        let lo = self.pos;
        let mut depth = 0usize;
        while self.pos < self.bytes.len() {
            match self.peek() {
                b'[' => depth += 1,
                b']' => {
                    depth -= 1;
                    if depth == 0 {
                        self.pos += 1;
                        return Ok(());
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        self.err("unterminated attribute", lo, lo + 2)
    }

    /// Block comments nest. Returns whether the comment spanned a newline.
    fn skip_block_comment(&mut self) -> Result<bool, Error> {
        let lo = self.pos;
        let mut depth = 0usize;
        let mut newline = false;
        while self.pos < self.bytes.len() {
            if self.peek() == b'/' && self.at(1) == b'*' {
                depth += 1;
                self.pos += 2;
            } else if self.peek() == b'*' && self.at(1) == b'/' {
                depth -= 1;
                self.pos += 2;
                if depth == 0 {
                    return Ok(newline);
                }
            } else {
                newline |= self.peek() == b'\n';
                self.pos += 1;
            }
        }
        self.err("unterminated block comment", lo, lo + 2)
    }

    fn token(&mut self) -> Result<Tok, Error> {
        let c = self.peek();
        if c.is_ascii_digit() {
            return self.number();
        }
        if c == b'"' {
            self.pos += 1;
            return Ok(Tok::Str(self.string_body(b'"')?));
        }
        if c == b'f' && self.at(1) == b'"' {
            self.pos += 2;
            return self.fstring();
        }
        if c == b'r' && (self.at(1) == b'"' || (self.at(1) == b'#' && self.raw_hashes() > 0)) {
            return self.raw_string();
        }
        if c == b'\'' {
            return self.quote();
        }
        if c == b'_' || c.is_ascii_alphabetic() || c >= 0x80 {
            let lo = self.pos;
            while self.pos < self.bytes.len() {
                let ch = self.src[self.pos..].chars().next().unwrap_or(' ');
                if ch == '_' || ch.is_alphanumeric() {
                    self.pos += ch.len_utf8();
                } else {
                    break;
                }
            }
            if self.pos == lo {
                let ch = self.src[lo..].chars().next().unwrap_or('?');
                return self.err(
                    format!("unexpected character '{ch}'"),
                    lo,
                    lo + ch.len_utf8(),
                );
            }
            let word = &self.src[lo..self.pos];
            return Ok(match keyword(word) {
                Some(kw) => Tok::Kw(kw),
                None => Tok::Ident(word.to_string()),
            });
        }
        let rest = &self.src[self.pos..];
        for (text, p) in PUNCTS {
            if rest.starts_with(text) {
                self.pos += text.len();
                return Ok(Tok::P(*p));
            }
        }
        let ch = rest.chars().next().unwrap_or('?');
        self.err(
            format!("unexpected character '{ch}'"),
            self.pos,
            self.pos + ch.len_utf8(),
        )
    }

    fn number(&mut self) -> Result<Tok, Error> {
        let lo = self.pos;
        if self.peek() == b'0' && (self.at(1) == b'x' || self.at(1) == b'X') {
            self.pos += 2;
            let start = self.pos;
            while self.peek().is_ascii_hexdigit() {
                self.pos += 1;
            }
            if self.pos == start {
                return self.err("expected hex digits after 0x", lo, self.pos);
            }
            let digits = &self.src[start..self.pos];
            // `0xffi64`: an ignored integer suffix after the hex digits.
            for suffix in [
                "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128",
                "usize",
            ] {
                if self.src[self.pos..].starts_with(suffix)
                    && !self.at(suffix.len()).is_ascii_alphanumeric()
                {
                    self.pos += suffix.len();
                    break;
                }
            }
            return match i64::from_str_radix(digits, 16) {
                Ok(v) => Ok(Tok::Int(v)),
                Err(_) => self.err("integer literal is too large", lo, self.pos),
            };
        }
        while self.peek().is_ascii_digit() {
            self.pos += 1;
        }
        let mut is_float = false;
        // `1.5` is a float; `1..3` and `1.foo()` are not.
        if self.peek() == b'.' && self.at(1).is_ascii_digit() {
            is_float = true;
            self.pos += 1;
            while self.peek().is_ascii_digit() {
                self.pos += 1;
            }
        }
        if matches!(self.peek(), b'e' | b'E') {
            let sign = usize::from(matches!(self.at(1), b'+' | b'-'));
            if self.at(1 + sign).is_ascii_digit() {
                is_float = true;
                self.pos += 1 + sign;
                while self.peek().is_ascii_digit() {
                    self.pos += 1;
                }
            }
        }
        let text = &self.src[lo..self.pos];
        // An ignored type suffix: `5i32`, `7u8`, `2.0f64`.
        let suffix_start = self.pos;
        if matches!(self.peek(), b'i' | b'u' | b'f') {
            let mut end = self.pos + 1;
            while self
                .bytes
                .get(end)
                .is_some_and(|b| b.is_ascii_alphanumeric())
            {
                end += 1;
            }
            let suffix = &self.src[suffix_start..end];
            let known = [
                "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128",
                "usize", "f32", "f64",
            ];
            if known.contains(&suffix) {
                if suffix.starts_with('f') {
                    is_float = true;
                }
                self.pos = end;
            }
        }
        if is_float {
            match text.parse::<f64>() {
                Ok(v) => Ok(Tok::Float(v)),
                Err(_) => self.err("invalid float literal", lo, self.pos),
            }
        } else {
            match text.parse::<i64>() {
                Ok(v) => Ok(Tok::Int(v)),
                Err(_) => self.err("integer literal is too large", lo, self.pos),
            }
        }
    }

    /// The body of a quoted string after its opening quote, escapes processed.
    fn string_body(&mut self, quote: u8) -> Result<String, Error> {
        let lo = self.pos - 1;
        let mut out = String::new();
        loop {
            if self.pos >= self.bytes.len() {
                return self.err("unterminated string literal", lo, lo + 1);
            }
            let c = self.peek();
            if c == quote {
                self.pos += 1;
                return Ok(out);
            }
            if c == b'\\' {
                out.push(self.escape()?);
                continue;
            }
            let ch = self.src[self.pos..].chars().next().unwrap_or('\u{fffd}');
            out.push(ch);
            self.pos += ch.len_utf8();
        }
    }

    fn escape(&mut self) -> Result<char, Error> {
        let lo = self.pos;
        self.pos += 1;
        let c = self.peek();
        self.pos += 1;
        Ok(match c {
            b'n' => '\n',
            b't' => '\t',
            b'r' => '\r',
            b'\\' => '\\',
            b'"' => '"',
            b'\'' => '\'',
            b'0' => '\0',
            b'{' => '{',
            b'}' => '}',
            b'u' => {
                if self.peek() != b'{' {
                    return self.err("expected '{' after \\u", lo, self.pos);
                }
                self.pos += 1;
                let start = self.pos;
                while self.peek().is_ascii_hexdigit() {
                    self.pos += 1;
                }
                let digits = &self.src[start..self.pos];
                if self.peek() != b'}' || digits.is_empty() || digits.len() > 6 {
                    return self.err("malformed \\u{...} escape", lo, self.pos);
                }
                self.pos += 1;
                match u32::from_str_radix(digits, 16)
                    .ok()
                    .and_then(char::from_u32)
                {
                    Some(ch) => ch,
                    None => return self.err("invalid unicode escape", lo, self.pos),
                }
            }
            0 => return self.err("unterminated string literal", lo, lo + 1),
            _ => {
                let ch = self.src[self.pos - 1..].chars().next().unwrap_or('?');
                self.pos = self.pos - 1 + ch.len_utf8();
                return self.err(format!("unknown escape '\\{ch}'"), lo, self.pos);
            }
        })
    }

    /// Number of `#` after `r` in `r#"..."#`, when followed by a quote.
    fn raw_hashes(&self) -> usize {
        let mut n = 0;
        while self.at(1 + n) == b'#' {
            n += 1;
        }
        if self.at(1 + n) == b'"' {
            n
        } else {
            0
        }
    }

    fn raw_string(&mut self) -> Result<Tok, Error> {
        let lo = self.pos;
        let hashes = self.raw_hashes();
        self.pos += 2 + hashes;
        let closing: String = std::iter::once('"')
            .chain(std::iter::repeat_n('#', hashes))
            .collect();
        match self.src[self.pos..].find(&closing) {
            Some(end) => {
                let body = self.src[self.pos..self.pos + end].to_string();
                self.pos += end + closing.len();
                Ok(Tok::Str(body))
            }
            None => self.err("unterminated raw string", lo, lo + 1),
        }
    }

    /// `'outer` is a label; `'a'` is a one-character string.
    fn quote(&mut self) -> Result<Tok, Error> {
        let lo = self.pos;
        let rest = &self.src[lo + 1..];
        let mut chars = rest.chars();
        let first = chars.next();
        let second = chars.next();
        if first == Some('\\') {
            self.pos += 1;
            let ch = self.escape()?;
            if self.peek() != b'\'' {
                return self.err("unterminated character literal", lo, self.pos);
            }
            self.pos += 1;
            return Ok(Tok::Str(ch.to_string()));
        }
        if let (Some(c), Some('\'')) = (first, second) {
            self.pos += 1 + c.len_utf8() + 1;
            return Ok(Tok::Str(c.to_string()));
        }
        let name: String = rest
            .chars()
            .take_while(|c| *c == '_' || c.is_alphanumeric())
            .collect();
        if name.is_empty() {
            return self.err("expected a label name after '", lo, lo + 1);
        }
        self.pos += 1 + name.len();
        Ok(Tok::Label(name))
    }

    fn fstring(&mut self) -> Result<Tok, Error> {
        let lo = self.pos - 2;
        let mut pieces = Vec::new();
        let mut lit = String::new();
        loop {
            if self.pos >= self.bytes.len() {
                return self.err("unterminated f-string", lo, lo + 2);
            }
            match self.peek() {
                b'"' => {
                    self.pos += 1;
                    if !lit.is_empty() {
                        pieces.push(FPiece::Lit(lit));
                    }
                    return Ok(Tok::FStr(pieces));
                }
                b'\\' => lit.push(self.escape()?),
                b'{' if self.at(1) == b'{' => {
                    lit.push('{');
                    self.pos += 2;
                }
                b'}' if self.at(1) == b'}' => {
                    lit.push('}');
                    self.pos += 2;
                }
                b'{' => {
                    if !lit.is_empty() {
                        pieces.push(FPiece::Lit(std::mem::take(&mut lit)));
                    }
                    pieces.push(self.fstring_hole()?);
                }
                b'}' => {
                    return self.err(
                        "unmatched '}' in f-string (write '}}')",
                        self.pos,
                        self.pos + 1,
                    )
                }
                _ => {
                    let ch = self.src[self.pos..].chars().next().unwrap_or('?');
                    lit.push(ch);
                    self.pos += ch.len_utf8();
                }
            }
        }
    }

    /// `{expr}` or `{expr:spec}` inside an f-string; `self.pos` is at the `{`.
    fn fstring_hole(&mut self) -> Result<FPiece, Error> {
        let open = self.pos;
        self.pos += 1;
        let start = self.pos;
        let mut depth = 0usize;
        let mut colon = None;
        loop {
            match self.peek() {
                0 if self.pos >= self.bytes.len() => {
                    return self.err("unterminated '{' in f-string", open, open + 1)
                }
                b'"' => {
                    return self.err(
                        "string literals are not allowed inside an f-string hole",
                        self.pos,
                        self.pos + 1,
                    )
                }
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' => depth = depth.saturating_sub(1),
                b'}' if depth == 0 => break,
                b'}' => depth -= 1,
                b':' if depth == 0 && self.at(1) != b':' => colon = Some(self.pos),
                _ => {}
            }
            self.pos += 1;
        }
        let end = self.pos;
        self.pos += 1;
        let mut expr_end = end;
        let mut spec = FormatSpec::default();
        if let Some(c) = colon {
            if let Some(parsed) = parse_spec(&self.src[c + 1..end]) {
                let too_big = |n: Option<usize>| n.is_some_and(|n| n > MAX_FORMAT_SPEC);
                if too_big(parsed.width) || too_big(parsed.precision) {
                    return self.err(
                        format!("format width and precision are at most {MAX_FORMAT_SPEC}"),
                        c + 1,
                        end,
                    );
                }
                spec = parsed;
                expr_end = c;
            }
        }
        let src = self.src[start..expr_end].to_string();
        if src.trim().is_empty() {
            return self.err("empty expression in f-string", open, end + 1);
        }
        Ok(FPiece::Expr {
            src,
            offset: self.base + start,
            spec,
        })
    }
}

/// The largest width or precision an f-string hole may ask for.
pub const MAX_FORMAT_SPEC: usize = 1000;

/// `W`, `.P` or `W.P`; anything else is not a format spec (so `{c ? a : b}` stays a ternary).
fn parse_spec(text: &str) -> Option<FormatSpec> {
    let (width, precision) = match text.split_once('.') {
        Some((w, p)) => (w, Some(p)),
        None => (text, None),
    };
    let width = if width.is_empty() {
        None
    } else {
        Some(
            width
                .parse()
                .ok()
                .filter(|_| width.bytes().all(|b| b.is_ascii_digit()))?,
        )
    };
    let precision = match precision {
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse().ok()?),
        Some(_) => return None,
        None => None,
    };
    if width.is_none() && precision.is_none() {
        return None;
    }
    Some(FormatSpec { width, precision })
}

#[cfg(test)]
mod tests;
