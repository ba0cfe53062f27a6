//! The semantics of every operator, written once. The tree-walker calls these directly; the
//! VM inlines the int and float fast paths and calls these for everything else; compiled
//! code calls them through helpers. So a corner case (`i64::MIN / -1`, `"x" + 2.0`,
//! `2 ** 63`) cannot differ between tiers.

use std::cmp::Ordering;
use std::rc::Rc;

use crate::error::{ArithOp, ErrorKind};
use crate::syntax::ast::{BinOp, UnOp};
use crate::value::Value;

pub type OpResult = Result<Value, ErrorKind>;

#[inline(never)]
pub fn binary(op: BinOp, a: &Value, b: &Value) -> OpResult {
    match op {
        BinOp::Add => add(a, b),
        BinOp::Sub => sub(a, b),
        BinOp::Mul => mul(a, b),
        BinOp::Div => div(a, b),
        BinOp::Mod => rem(a, b),
        BinOp::Pow => pow(a, b),
        BinOp::BitAnd => bitwise(ArithOp::BitAnd, a, b),
        BinOp::BitOr => bitwise(ArithOp::BitOr, a, b),
        BinOp::BitXor => bitwise(ArithOp::BitXor, a, b),
        BinOp::Shl => bitwise(ArithOp::Shl, a, b),
        BinOp::Shr => bitwise(ArithOp::Shr, a, b),
        BinOp::Eq => Ok(Value::Bool(equals(a, b))),
        BinOp::Ne => Ok(Value::Bool(!equals(a, b))),
        BinOp::Lt => compare(a, b).map(|o| Value::Bool(o == Some(Ordering::Less))),
        BinOp::Le => {
            compare(a, b).map(|o| Value::Bool(matches!(o, Some(Ordering::Less | Ordering::Equal))))
        }
        BinOp::Gt => compare(a, b).map(|o| Value::Bool(o == Some(Ordering::Greater))),
        BinOp::Ge => compare(a, b)
            .map(|o| Value::Bool(matches!(o, Some(Ordering::Greater | Ordering::Equal)))),
    }
}

fn type_error(op: ArithOp, a: &Value, b: &Value) -> ErrorKind {
    ErrorKind::BinaryType {
        op,
        lhs: a.type_of(),
        rhs: b.type_of(),
    }
}

/// Both operands as floats, when at least one is a float and the other a number.
#[inline]
fn floats(a: &Value, b: &Value) -> Option<(f64, f64)> {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => Some((*x, *y)),
        (Value::Int(x), Value::Float(y)) => Some((*x as f64, *y)),
        (Value::Float(x), Value::Int(y)) => Some((*x, *y as f64)),
        _ => None,
    }
}

/// The text a value contributes to `string + value`: plain Rust `{}` for floats
/// (`"x" + 2.0` is `"x2"`).
fn concat_piece(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) => Some(s.as_str().to_owned()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[inline(never)]
pub fn add(a: &Value, b: &Value) -> OpResult {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x
            .checked_add(*y)
            .map(Value::Int)
            .ok_or(ErrorKind::Overflow(ArithOp::Add)),
        (Value::Str(x), Value::Str(y)) => {
            check_string_size(x.len() + y.len())?;
            let mut s = String::with_capacity(x.len() + y.len());
            s.push_str(x);
            s.push_str(y);
            Ok(Value::Str(Rc::new(s)))
        }
        (Value::Str(_), _) | (_, Value::Str(_)) => match (concat_piece(a), concat_piece(b)) {
            (Some(x), Some(y)) => {
                check_string_size(x.len() + y.len())?;
                Ok(Value::Str(Rc::new(x + &y)))
            }
            _ => Err(type_error(ArithOp::Add, a, b)),
        },
        (Value::Array(x), Value::Array(y)) => {
            let mut v = Vec::with_capacity(x.len() + y.len());
            v.extend(x.iter().cloned());
            v.extend(y.iter().cloned());
            Ok(Value::array(v))
        }
        _ => match floats(a, b) {
            Some((x, y)) => Ok(Value::Float(x + y)),
            None => Err(type_error(ArithOp::Add, a, b)),
        },
    }
}

/// `target = target + b` where the target is unshared: append in place when it is a
/// string (amortized O(1) per append instead of a copy). Falls back to `add`.
#[inline(never)]
pub fn add_in_place(target: &mut Value, b: &Value) -> Result<(), ErrorKind> {
    if let Value::Str(s) = target {
        if let Some(buf) = Rc::get_mut(s) {
            match b {
                Value::Str(y) => {
                    check_string_size(buf.len() + y.len())?;
                    buf.push_str(y);
                    return Ok(());
                }
                Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
                    if let Some(piece) = concat_piece(b) {
                        buf.push_str(&piece);
                        return Ok(());
                    }
                }
                _ => {}
            }
        }
    }
    *target = add(target, b)?;
    Ok(())
}

#[inline(never)]
pub fn sub(a: &Value, b: &Value) -> OpResult {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x
            .checked_sub(*y)
            .map(Value::Int)
            .ok_or(ErrorKind::Overflow(ArithOp::Sub)),
        _ => match floats(a, b) {
            Some((x, y)) => Ok(Value::Float(x - y)),
            None => Err(type_error(ArithOp::Sub, a, b)),
        },
    }
}

#[inline(never)]
pub fn mul(a: &Value, b: &Value) -> OpResult {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x
            .checked_mul(*y)
            .map(Value::Int)
            .ok_or(ErrorKind::Overflow(ArithOp::Mul)),
        (Value::Str(s), Value::Int(n)) | (Value::Int(n), Value::Str(s)) => {
            let n = (*n).max(0) as usize;
            match s.len().checked_mul(n) {
                Some(total) if total <= MAX_STRING => Ok(Value::Str(Rc::new(s.repeat(n)))),
                _ => Err(ErrorKind::Builtin(format!(
                    "String repetition too large: {} bytes times {n}",
                    s.len()
                ))),
            }
        }
        _ => match floats(a, b) {
            Some((x, y)) => Ok(Value::Float(x * y)),
            None => Err(type_error(ArithOp::Mul, a, b)),
        },
    }
}

/// The largest string `*` and `+` will build (1 GiB), so `"x" * 10**15` or a string doubled
/// forty times is an error, not an out-of-memory abort.
pub const MAX_STRING: usize = 1 << 30;

fn check_string_size(len: usize) -> Result<(), ErrorKind> {
    if len > MAX_STRING {
        return Err(ErrorKind::Builtin(format!(
            "String too large: {len} bytes (at most {MAX_STRING})"
        )));
    }
    Ok(())
}

#[inline(never)]
pub fn div(a: &Value, b: &Value) -> OpResult {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => int_div(*x, *y).map(Value::Int),
        _ => match floats(a, b) {
            Some((x, y)) => Ok(Value::Float(x / y)),
            None => Err(type_error(ArithOp::Div, a, b)),
        },
    }
}

#[inline]
pub fn int_div(x: i64, y: i64) -> Result<i64, ErrorKind> {
    if y == 0 {
        return Err(ErrorKind::DivisionByZero);
    }
    x.checked_div(y).ok_or(ErrorKind::Overflow(ArithOp::Div))
}

#[inline]
pub fn int_rem(x: i64, y: i64) -> Result<i64, ErrorKind> {
    if y == 0 {
        return Err(ErrorKind::DivisionByZero);
    }
    x.checked_rem(y).ok_or(ErrorKind::Overflow(ArithOp::Mod))
}

#[inline(never)]
pub fn rem(a: &Value, b: &Value) -> OpResult {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => int_rem(*x, *y).map(Value::Int),
        _ => match floats(a, b) {
            Some((_, 0.0)) => Err(ErrorKind::DivisionByZero),
            Some((x, y)) => Ok(Value::Float(x % y)),
            None => Err(type_error(ArithOp::Mod, a, b)),
        },
    }
}

/// `int ** int` is checked and turns into a float on overflow; a negative exponent gives a
/// float.
pub fn int_pow(x: i64, y: i64) -> Value {
    if y < 0 {
        return Value::Float((x as f64).powf(y as f64));
    }
    match u32::try_from(y).ok().and_then(|e| x.checked_pow(e)) {
        Some(v) => Value::Int(v),
        None => Value::Float((x as f64).powf(y as f64)),
    }
}

#[inline(never)]
pub fn pow(a: &Value, b: &Value) -> OpResult {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(int_pow(*x, *y)),
        _ => match floats(a, b) {
            Some((x, y)) => Ok(Value::Float(x.powf(y))),
            None => Err(type_error(ArithOp::Pow, a, b)),
        },
    }
}

/// Bitwise operators need ints on both sides; shifts wrap (count mod 64, `>>` arithmetic).
#[inline(never)]
pub fn bitwise(op: ArithOp, a: &Value, b: &Value) -> OpResult {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(Value::Int(int_bitwise(op, *x, *y))),
        _ => Err(type_error(op, a, b)),
    }
}

#[inline]
pub fn int_bitwise(op: ArithOp, x: i64, y: i64) -> i64 {
    match op {
        ArithOp::BitAnd => x & y,
        ArithOp::BitOr => x | y,
        ArithOp::BitXor => x ^ y,
        ArithOp::Shl => x.wrapping_shl(y as u32),
        ArithOp::Shr => x.wrapping_shr(y as u32),
        _ => unreachable!("not a bitwise operator: {op:?}"),
    }
}

/// `==`: numbers compare numerically (`1 == 1.0`), arrays element by element, values of
/// different types are unequal.
#[inline(never)]
pub fn equals(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => {
            Rc::ptr_eq(x, y)
                || (x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| equals(p, q)))
        }
        (Value::Range(x), Value::Range(y)) => x == y,
        (Value::Func(x), Value::Func(y)) => Rc::ptr_eq(x, y),
        (Value::Builtin(x), Value::Builtin(y)) => x == y,
        _ => match floats(a, b) {
            Some((x, y)) => x == y,
            None => false,
        },
    }
}

/// Ordering for `< <= > >=`: numbers numerically, strings lexicographically; `None` when
/// unordered (NaN). Other pairs are an error.
#[inline(never)]
pub fn compare(a: &Value, b: &Value) -> Result<Option<Ordering>, ErrorKind> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(Some(x.cmp(y))),
        (Value::Str(x), Value::Str(y)) => Ok(Some(x.cmp(y))),
        _ => match floats(a, b) {
            Some((x, y)) => Ok(x.partial_cmp(&y)),
            None => Err(ErrorKind::Compare {
                lhs: a.type_of(),
                rhs: b.type_of(),
            }),
        },
    }
}

#[inline(never)]
pub fn unary(op: UnOp, a: &Value) -> OpResult {
    match op {
        UnOp::Not => Ok(Value::Bool(!a.is_truthy())),
        UnOp::Neg => match a {
            Value::Int(x) => Ok(Value::Int(x.wrapping_neg())),
            Value::Float(x) => Ok(Value::Float(-x)),
            _ => Err(ErrorKind::UnaryType {
                op: "negate",
                operand: a.type_of(),
            }),
        },
        UnOp::BitNot => match a {
            Value::Int(x) => Ok(Value::Int(!x)),
            _ => Err(ErrorKind::UnaryType {
                op: "apply bitwise NOT to",
                operand: a.type_of(),
            }),
        },
    }
}

/// Resolves an index against a length: negative counts from the end.
#[inline]
pub fn index_in(index: i64, len: usize, what: &'static str) -> Result<usize, ErrorKind> {
    let i = if index < 0 {
        index.checked_add(len as i64)
    } else {
        Some(index)
    };
    match i {
        Some(i) if i >= 0 && (i as usize) < len => Ok(i as usize),
        _ => Err(ErrorKind::IndexOutOfBounds { index, len, what }),
    }
}

/// `base[index]` for reading.
#[inline(never)]
pub fn index_get(base: &Value, index: &Value) -> OpResult {
    let i = match (base, index) {
        (Value::Array(_) | Value::Str(_), Value::Int(i)) => *i,
        _ => return Err(index_error(base, index)),
    };
    match base {
        Value::Array(items) => Ok(items[index_in(i, items.len(), "array")?].clone()),
        Value::Str(s) => {
            let at = index_in(i, s.len(), "string")?;
            let byte = &s.as_bytes()[at..at + 1];
            Ok(Value::Str(Rc::new(
                String::from_utf8_lossy(byte).into_owned(),
            )))
        }
        _ => Err(index_error(base, index)),
    }
}

pub fn index_error(base: &Value, index: &Value) -> ErrorKind {
    ErrorKind::Index {
        base: base.type_of(),
        index: index.type_of(),
    }
}

/// The element slot `base[index]` of an array, for writing in place. Copies the array
/// first if it is shared (copy-on-write).
#[inline(never)]
pub fn index_slot<'a>(base: &'a mut Value, index: &Value) -> Result<&'a mut Value, ErrorKind> {
    match (base, index) {
        (Value::Array(items), Value::Int(i)) => {
            let at = index_in(*i, items.len(), "array")?;
            Ok(&mut Rc::make_mut(items)[at])
        }
        (Value::Str(_), Value::Int(_)) => Err(ErrorKind::Builtin(
            "Strings are immutable: cannot assign to a string index".to_string(),
        )),
        (base, index) => Err(index_error(base, index)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::str(v)
    }

    #[test]
    fn checked_int_arithmetic() {
        assert_eq!(
            add(&Value::Int(i64::MAX), &Value::Int(1)).unwrap_err(),
            ErrorKind::Overflow(ArithOp::Add)
        );
        assert_eq!(
            div(&Value::Int(i64::MIN), &Value::Int(-1)).unwrap_err(),
            ErrorKind::Overflow(ArithOp::Div)
        );
        assert_eq!(
            rem(&Value::Int(1), &Value::Int(0)).unwrap_err(),
            ErrorKind::DivisionByZero
        );
        assert_eq!(
            div(&Value::Int(-7), &Value::Int(2))
                .unwrap()
                .display()
                .to_string(),
            "-3"
        );
        assert_eq!(
            rem(&Value::Int(-7), &Value::Int(3))
                .unwrap()
                .display()
                .to_string(),
            "-1"
        );
    }

    #[test]
    fn power_turns_float_on_overflow() {
        assert_eq!(int_pow(2, 10).display().to_string(), "1024");
        assert_eq!(
            int_pow(2, 63).display().to_string(),
            "9223372036854775808.0"
        );
        assert_eq!(int_pow(2, -1).display().to_string(), "0.5");
        assert_eq!(int_pow(0, 0).display().to_string(), "1");
    }

    #[test]
    fn string_concatenation_rules() {
        assert_eq!(
            add(&s("x"), &Value::Float(2.0))
                .unwrap()
                .plain()
                .to_string(),
            "x2"
        );
        assert_eq!(
            add(&Value::Int(5), &s("5")).unwrap().plain().to_string(),
            "55"
        );
        assert_eq!(
            add(&s("a"), &Value::Bool(true))
                .unwrap()
                .plain()
                .to_string(),
            "atrue"
        );
        assert_eq!(
            mul(&s("ab"), &Value::Int(3)).unwrap().plain().to_string(),
            "ababab"
        );
        assert!(add(&s("a"), &Value::Nil).is_err());
    }

    #[test]
    fn in_place_append_only_when_unshared() {
        let mut a = s("ab");
        add_in_place(&mut a, &s("cd")).unwrap();
        assert_eq!(a.plain().to_string(), "abcd");
        let shared = a.clone();
        add_in_place(&mut a, &Value::Int(1)).unwrap();
        assert_eq!(a.plain().to_string(), "abcd1");
        assert_eq!(shared.plain().to_string(), "abcd");
    }

    #[test]
    fn equality_and_ordering() {
        assert!(equals(&Value::Int(1), &Value::Float(1.0)));
        assert!(!equals(&Value::Int(1), &s("1")));
        assert!(equals(
            &Value::array(vec![Value::Int(1)]),
            &Value::array(vec![Value::Float(1.0)])
        ));
        assert_eq!(
            compare(&Value::Int(2), &Value::Float(2.5)).unwrap(),
            Some(Ordering::Less)
        );
        assert!(compare(&Value::Int(2), &s("a")).is_err());
        assert_eq!(
            compare(&Value::Float(f64::NAN), &Value::Float(1.0)).unwrap(),
            None
        );
    }

    #[test]
    fn shifts_wrap() {
        assert_eq!(int_bitwise(ArithOp::Shl, 1, 64), 1);
        assert_eq!(int_bitwise(ArithOp::Shr, -16, 2), -4);
    }

    #[test]
    fn copy_on_write_index_slot() {
        let mut a = Value::array(vec![Value::Int(1), Value::Int(2)]);
        let b = a.clone();
        *index_slot(&mut a, &Value::Int(-1)).unwrap() = Value::Int(9);
        assert_eq!(a.display().to_string(), "[1, 9]");
        assert_eq!(b.display().to_string(), "[1, 2]");
    }
}
