//! The line editor's helper: tab completion of meta-commands, keywords, builtins and the
//! session's own names, and syntax highlighting on a color terminal.

use std::borrow::Cow;

use owo_colors::OwoColorize;
use rustyline::completion::Completer;
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

use super::COMMANDS;

pub const KEYWORDS: &[&str] = &[
    "fun", "let", "var", "mut", "if", "else", "while", "loop", "for", "in", "break", "continue",
    "return", "true", "false", "null",
];

pub struct ReplHelper {
    /// Globals of the session (builtins included), refreshed after each input.
    pub names: Vec<String>,
    pub color: bool,
}

impl Completer for ReplHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let start = line[..pos]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .map_or(0, |i| i + 1);
        let word = &line[start..pos];
        if word.is_empty() {
            return Ok((pos, Vec::new()));
        }
        let mut candidates: Vec<String> = if word.starts_with(':') {
            COMMANDS.iter().map(|(c, _)| c.to_string()).collect()
        } else {
            KEYWORDS
                .iter()
                .map(|k| k.to_string())
                .chain(self.names.iter().cloned())
                .collect()
        };
        candidates.retain(|c| c.starts_with(word));
        candidates.sort();
        candidates.dedup();
        Ok((start, candidates))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}

impl Validator for ReplHelper {}

impl Highlighter for ReplHelper {
    /// Keywords, numbers, strings and comments, colored; everything else as typed.
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        if !self.color {
            return Cow::Borrowed(line);
        }
        let mut out = String::with_capacity(line.len() * 2);
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let start = i;
            if c == '/' && chars.get(i + 1) == Some(&'/') {
                let rest: String = chars[i..].iter().collect();
                out.push_str(&rest.dimmed().to_string());
                break;
            } else if c == '"' {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i = (i + 1).min(chars.len());
                let s: String = chars[start..i].iter().collect();
                out.push_str(&s.green().to_string());
            } else if c.is_ascii_digit() {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
                let s: String = chars[start..i].iter().collect();
                out.push_str(&s.yellow().to_string());
            } else if c.is_alphabetic() || c == '_' {
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let s: String = chars[start..i].iter().collect();
                if KEYWORDS.contains(&s.as_str()) {
                    out.push_str(&s.magenta().bold().to_string());
                } else {
                    out.push_str(&s);
                }
            } else {
                out.push(c);
                i += 1;
            }
        }
        Cow::Owned(out)
    }

    fn highlight_char(&self, _line: &str, _pos: usize, _kind: CmdKind) -> bool {
        self.color
    }
}

impl Helper for ReplHelper {}
