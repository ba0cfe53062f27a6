//! The one runtime value shared by every tier, and its display rules.
//!
//! `Value` is 16 bytes: a tag and an 8-byte payload. Heap values are reference counted
//! (`Rc`, single-threaded). Arrays have value semantics implemented with copy-on-write:
//! `Rc::make_mut` updates an unshared array in place and copies a shared one, so
//! `let b = a; b.push(9)` leaves `a` alone while a loop of pushes on one array is O(1) each.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use crate::builtins::Builtin;
use crate::function::Closure;

/// A shared, mutable box holding a captured variable. Closures capture by reference:
/// the enclosing function and every closure that captured the variable hold the same cell.
pub type Upvalue = Rc<RefCell<Value>>;

/// `repr(u64)`: an 8-byte tag, then every payload at offset 8. Copies are two aligned
/// 8-byte moves (with Rust's default layout `Bool` sat at byte 1 and copies were stitched
/// from odd-sized pieces, stalling store forwarding), and the layout is defined.
#[derive(Clone, Default)]
#[repr(u64)]
pub enum Value {
    #[default]
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Immutable to the program; `Rc<String>` keeps `Value` two words and lets an unshared
    /// string be appended in place (`s = s + "ab"` in a loop is amortized O(1)).
    Str(Rc<String>),
    Array(Rc<Vec<Value>>),
    Range(Rc<RangeValue>),
    Func(Rc<Closure>),
    Builtin(Builtin),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RangeValue {
    pub start: i64,
    pub end: i64,
    pub inclusive: bool,
}

impl RangeValue {
    /// The exclusive upper bound, saturating so that `..=i64::MAX` does not overflow.
    pub fn end_exclusive(&self) -> i64 {
        if self.inclusive {
            self.end.saturating_add(1)
        } else {
            self.end
        }
    }
}

/// The type of a value as the reference names it in error messages and `type_of`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    Nil,
    Bool,
    Int,
    Float,
    Str,
    Array,
    Range,
    Func,
}

impl Type {
    /// The name used in error messages ("Cannot add boolean and integer").
    pub fn name(self) -> &'static str {
        match self {
            Type::Nil => "nil",
            Type::Bool => "boolean",
            Type::Int => "integer",
            Type::Float => "float",
            Type::Str => "string",
            Type::Array => "array",
            Type::Range => "range",
            Type::Func => "function",
        }
    }

    /// The short name used in profiles and JIT signatures (`fib(int)`).
    pub fn short_name(self) -> &'static str {
        match self {
            Type::Nil => "nil",
            Type::Bool => "bool",
            Type::Int => "int",
            Type::Float => "float",
            Type::Str => "string",
            Type::Array => "array",
            Type::Range => "range",
            Type::Func => "function",
        }
    }

    pub const ALL: [Type; 8] = [
        Type::Nil,
        Type::Bool,
        Type::Int,
        Type::Float,
        Type::Str,
        Type::Array,
        Type::Range,
        Type::Func,
    ];

    /// A small integer per type, used to pack argument signatures into profile keys.
    pub fn index(self) -> u8 {
        self as u8
    }

    pub fn from_index(i: u8) -> Option<Type> {
        Type::ALL.get(i as usize).copied()
    }
}

/// Register writes of scalars. Overwriting just the payload when the slot already holds a
/// value of the same type avoids dropping the old value and, more importantly, avoids
/// building the new `Value` on the stack and copying it as 16 bytes (a store-forwarding
/// stall that cost the VM a third of its time). In a hot loop, registers keep their type.
#[inline(always)]
pub fn set_int(slot: &mut Value, v: i64) {
    match slot {
        Value::Int(p) => *p = v,
        other => *other = Value::Int(v),
    }
}

#[inline(always)]
pub fn set_float(slot: &mut Value, v: f64) {
    match slot {
        Value::Float(p) => *p = v,
        other => *other = Value::Float(v),
    }
}

#[inline(always)]
pub fn set_bool(slot: &mut Value, v: bool) {
    match slot {
        Value::Bool(p) => *p = v,
        other => *other = Value::Bool(v),
    }
}

/// Whether a value owns a reference count (dropping it does work).
#[inline(always)]
pub fn is_heap(v: &Value) -> bool {
    !matches!(
        v,
        Value::Nil | Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Builtin(_)
    )
}

/// Stores a value, calling the old value's destructor only when it has one.
#[inline(always)]
pub fn put(slot: &mut Value, v: Value) {
    let old = std::mem::replace(slot, v);
    if is_heap(&old) {
        drop(old);
    } else {
        // A scalar has nothing to free; skipping its drop glue keeps this inline.
        std::mem::forget(old);
    }
}

/// Sets a slot to nil, releasing what it held.
#[inline(always)]
pub fn clear(slot: &mut Value) {
    if is_heap(slot) {
        *slot = Value::Nil;
    } else {
        put(slot, Value::Nil);
    }
}

impl Value {
    pub fn type_of(&self) -> Type {
        match self {
            Value::Nil => Type::Nil,
            Value::Bool(_) => Type::Bool,
            Value::Int(_) => Type::Int,
            Value::Float(_) => Type::Float,
            Value::Str(_) => Type::Str,
            Value::Array(_) => Type::Array,
            Value::Range(_) => Type::Range,
            Value::Func(_) | Value::Builtin(_) => Type::Func,
        }
    }

    /// Only `false` and `nil` are falsy.
    #[inline]
    pub fn is_truthy(&self) -> bool {
        !matches!(self, Value::Nil | Value::Bool(false))
    }

    pub fn str(s: &str) -> Value {
        Value::Str(Rc::new(s.to_owned()))
    }

    pub fn array(items: Vec<Value>) -> Value {
        Value::Array(Rc::new(items))
    }

    /// The display form: strings quoted. Used for REPL echo and inside arrays.
    pub fn display(&self) -> Display<'_> {
        Display {
            value: self,
            quote_strings: true,
        }
    }

    /// The form `println`, `print`, `str` and f-strings use: a top-level string is unquoted,
    /// everything else (including strings inside arrays) is in display form.
    pub fn plain(&self) -> Display<'_> {
        Display {
            value: self,
            quote_strings: false,
        }
    }
}

pub struct Display<'a> {
    value: &'a Value,
    quote_strings: bool,
}

impl fmt::Display for Display<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.value {
            Value::Str(s) if !self.quote_strings => f.write_str(s),
            v => write_display(f, v),
        }
    }
}

fn write_display(f: &mut dyn fmt::Write, value: &Value) -> fmt::Result {
    match value {
        Value::Nil => f.write_str("nil"),
        Value::Bool(b) => write!(f, "{b}"),
        Value::Int(i) => write!(f, "{i}"),
        Value::Float(x) => write_float(f, *x),
        Value::Str(s) => {
            f.write_char('"')?;
            f.write_str(s)?;
            f.write_char('"')
        }
        Value::Array(items) => {
            f.write_char('[')?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write_display(f, item)?;
            }
            f.write_char(']')
        }
        Value::Range(r) => {
            let op = if r.inclusive { "..=" } else { ".." };
            write!(f, "{}{}{}", r.start, op, r.end)
        }
        Value::Func(_) | Value::Builtin(_) => f.write_str("<function>"),
    }
}

/// Floats print with `.0` when whole (Rust `{:.1}`), otherwise Rust's shortest round-trip
/// `{}`, which never uses an exponent: `1e20` prints `100000000000000000000.0`.
pub fn write_float(f: &mut dyn fmt::Write, x: f64) -> fmt::Result {
    if x.is_finite() && x.fract() == 0.0 {
        write!(f, "{x:.1}")
    } else {
        write!(f, "{x}")
    }
}

pub fn float_to_string(x: f64) -> String {
    let mut s = String::new();
    let _ = write_float(&mut s, x);
    s
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(v: Value) -> String {
        v.display().to_string()
    }

    #[test]
    fn floats_follow_the_reference_rules() {
        assert_eq!(shown(Value::Float(1.0)), "1.0");
        assert_eq!(shown(Value::Float(6.0)), "6.0");
        assert_eq!(shown(Value::Float(0.1 + 0.2)), "0.30000000000000004");
        assert_eq!(shown(Value::Float(1e20)), "100000000000000000000.0");
        assert_eq!(shown(Value::Float(1e10)), "10000000000.0");
        assert_eq!(shown(Value::Float(-0.0)), "-0.0");
        assert_eq!(shown(Value::Float(f64::INFINITY)), "inf");
        assert_eq!(shown(Value::Float(f64::NEG_INFINITY)), "-inf");
        assert_eq!(shown(Value::Float(f64::NAN)), "NaN");
        assert_eq!(shown(Value::Float(-2.5)), "-2.5");
        assert_eq!(shown(Value::Float(1e-7)), "0.0000001");
    }

    #[test]
    fn arrays_quote_their_strings() {
        let v = Value::array(vec![
            Value::Int(1),
            Value::str("a"),
            Value::Float(2.5),
            Value::array(vec![Value::Nil, Value::Bool(true)]),
        ]);
        assert_eq!(shown(v.clone()), "[1, \"a\", 2.5, [nil, true]]");
        assert_eq!(v.plain().to_string(), "[1, \"a\", 2.5, [nil, true]]");
        assert_eq!(Value::str("hi").plain().to_string(), "hi");
        assert_eq!(shown(Value::str("hi")), "\"hi\"");
        assert_eq!(shown(Value::array(vec![])), "[]");
    }

    #[test]
    fn ranges_and_scalars() {
        let r = RangeValue {
            start: 0,
            end: 3,
            inclusive: false,
        };
        assert_eq!(shown(Value::Range(Rc::new(r))), "0..3");
        let r = RangeValue {
            start: 1,
            end: 3,
            inclusive: true,
        };
        assert_eq!(shown(Value::Range(Rc::new(r))), "1..=3");
        assert_eq!(shown(Value::Nil), "nil");
        assert_eq!(shown(Value::Int(-42)), "-42");
        assert_eq!(shown(Value::Bool(false)), "false");
    }

    #[test]
    fn value_is_two_words() {
        assert_eq!(std::mem::size_of::<Value>(), 16);
    }

    #[test]
    fn truthiness() {
        assert!(Value::Int(0).is_truthy());
        assert!(Value::str("").is_truthy());
        assert!(Value::array(vec![]).is_truthy());
        assert!(!Value::Nil.is_truthy());
        assert!(!Value::Bool(false).is_truthy());
    }
}
