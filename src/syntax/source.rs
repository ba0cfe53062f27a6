//! Source texts and byte spans into them.
//!
//! A `Span` names a source by index, so one `SourceMap` can hold a file, `-e` code and every
//! REPL input of a session, and an error raised by a function defined three inputs ago still
//! points at the line where that function was typed.

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    pub source: u32,
    pub lo: u32,
    pub hi: u32,
}

impl Span {
    pub fn new(source: u32, lo: usize, hi: usize) -> Span {
        Span {
            source,
            lo: lo as u32,
            hi: hi as u32,
        }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            source: self.source,
            lo: self.lo.min(other.lo),
            hi: self.hi.max(other.hi),
        }
    }
}

pub struct Source {
    pub name: String,
    pub text: String,
    line_starts: Vec<usize>,
}

impl Source {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Source {
        let text = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Source {
            name: name.into(),
            text,
            line_starts,
        }
    }

    /// 1-based line and column (column counted in characters) of a byte offset.
    pub fn line_col(&self, offset: u32) -> (usize, usize) {
        let offset = (offset as usize).min(self.text.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line];
        let col = self.text[start..floor_char_boundary(&self.text, offset)]
            .chars()
            .count();
        (line + 1, col + 1)
    }

    /// The text of a 1-based line, without its newline.
    pub fn line_text(&self, line: usize) -> &str {
        let start = self.line_starts[line - 1];
        let end = self
            .line_starts
            .get(line)
            .map(|e| e - 1)
            .unwrap_or(self.text.len());
        self.text[start..end].trim_end_matches('\r')
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[derive(Default)]
pub struct SourceMap {
    sources: Vec<Source>,
}

impl SourceMap {
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> u32 {
        self.sources.push(Source::new(name, text));
        (self.sources.len() - 1) as u32
    }

    pub fn get(&self, id: u32) -> &Source {
        &self.sources[id as usize]
    }

    pub fn try_get(&self, id: u32) -> Option<&Source> {
        self.sources.get(id as usize)
    }

    /// `name:line:col` of a span's start.
    pub fn location(&self, span: Span) -> String {
        match self.try_get(span.source) {
            Some(src) => {
                let (line, col) = src.line_col(span.lo);
                format!("{}:{}:{}", src.name, line, col)
            }
            None => "<unknown>".to_string(),
        }
    }

    pub fn line_of(&self, span: Span) -> usize {
        self.try_get(span.source)
            .map(|s| s.line_col(span.lo).0)
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column() {
        let s = Source::new("t", "ab\ncd\n\nxé z");
        assert_eq!(s.line_col(0), (1, 1));
        assert_eq!(s.line_col(1), (1, 2));
        assert_eq!(s.line_col(3), (2, 1));
        assert_eq!(s.line_col(6), (3, 1));
        assert_eq!(s.line_col(10), (4, 3));
        assert_eq!(s.line_text(2), "cd");
        assert_eq!(s.line_text(3), "");
        assert_eq!(s.line_text(4), "xé z");
    }
}
