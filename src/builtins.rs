//! Builtin functions and methods: one implementation used by every tier.

use std::io::Write;
use std::rc::Rc;

use crate::error::ErrorKind;
use crate::syntax::lexer::FormatSpec;
use crate::value::Value;

/// `repr(u8)`: compiled code moves a builtin as its discriminant, which is its index in
/// `ALL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Builtin {
    Println,
    Print,
    Len,
    TypeOf,
    Int,
    Float,
    Str,
    Sqrt,
    Abs,
    Min,
    Max,
    Floor,
    Ceil,
    Round,
}

impl Builtin {
    pub const ALL: &'static [Builtin] = &[
        Builtin::Println,
        Builtin::Print,
        Builtin::Len,
        Builtin::TypeOf,
        Builtin::Int,
        Builtin::Float,
        Builtin::Str,
        Builtin::Sqrt,
        Builtin::Abs,
        Builtin::Min,
        Builtin::Max,
        Builtin::Floor,
        Builtin::Ceil,
        Builtin::Round,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Builtin::Println => "println",
            Builtin::Print => "print",
            Builtin::Len => "len",
            Builtin::TypeOf => "type_of",
            Builtin::Int => "int",
            Builtin::Float => "float",
            Builtin::Str => "str",
            Builtin::Sqrt => "sqrt",
            Builtin::Abs => "abs",
            Builtin::Min => "min",
            Builtin::Max => "max",
            Builtin::Floor => "floor",
            Builtin::Ceil => "ceil",
            Builtin::Round => "round",
        }
    }

    pub fn call(self, args: &[Value], out: &mut dyn Write) -> Result<Value, ErrorKind> {
        match self {
            Builtin::Println => {
                let mut line = format_args_line(args);
                line.push('\n');
                let _ = out.write_all(line.as_bytes());
                Ok(Value::Nil)
            }
            Builtin::Print => {
                let _ = out.write_all(format_args_line(args).as_bytes());
                Ok(Value::Nil)
            }
            Builtin::Len => {
                let [v] = exact(self, args)?;
                len(v)
            }
            Builtin::TypeOf => {
                let [v] = exact(self, args)?;
                Ok(Value::str(v.type_of().name()))
            }
            Builtin::Int => {
                let [v] = exact(self, args)?;
                to_int(v)
            }
            Builtin::Float => {
                let [v] = exact(self, args)?;
                to_float(v)
            }
            Builtin::Str => {
                let [v] = exact(self, args)?;
                Ok(to_string(v))
            }
            Builtin::Sqrt => {
                let [v] = exact(self, args)?;
                Ok(Value::Float(number(self, v)?.sqrt()))
            }
            Builtin::Abs => {
                let [v] = exact(self, args)?;
                match v {
                    // Like the reference, abs(i64::MIN) wraps.
                    Value::Int(i) => Ok(Value::Int(i.wrapping_abs())),
                    Value::Float(f) => Ok(Value::Float(f.abs())),
                    other => Err(expects_number(self, other)),
                }
            }
            Builtin::Min | Builtin::Max => min_max(self, args),
            Builtin::Floor | Builtin::Ceil | Builtin::Round => {
                let [v] = exact(self, args)?;
                match v {
                    Value::Int(i) => Ok(Value::Int(*i)),
                    Value::Float(f) => {
                        let r = match self {
                            Builtin::Floor => f.floor(),
                            Builtin::Ceil => f.ceil(),
                            _ => f.round(),
                        };
                        Ok(Value::Int(float_to_int(r)))
                    }
                    other => Err(expects_number(self, other)),
                }
            }
        }
    }
}

fn exact<const N: usize>(b: Builtin, args: &[Value]) -> Result<&[Value; N], ErrorKind> {
    args.try_into().map_err(|_| {
        ErrorKind::Builtin(format!(
            "{}() expects exactly {} argument{}, got {}",
            b.name(),
            N,
            if N == 1 { "" } else { "s" },
            args.len()
        ))
    })
}

fn expects_number(b: Builtin, _v: &Value) -> ErrorKind {
    ErrorKind::Builtin(format!("{}() expects a number", b.name()))
}

fn number(b: Builtin, v: &Value) -> Result<f64, ErrorKind> {
    match v {
        Value::Int(i) => Ok(*i as f64),
        Value::Float(f) => Ok(*f),
        other => Err(expects_number(b, other)),
    }
}

/// Float to int as the reference does it: truncating and saturating (`floor(1e20)` is
/// i64::MAX, NaN is 0).
fn float_to_int(f: f64) -> i64 {
    f as i64
}

/// `println`/`print` arguments: a first string containing `{}` is a format whose holes take
/// the following arguments in turn; otherwise all arguments are joined by single spaces.
pub fn format_args_line(args: &[Value]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if let Some(Value::Str(fmt)) = args.first() {
        if fmt.contains("{}") {
            let mut rest = args[1..].iter();
            let mut pieces = fmt.split("{}").peekable();
            while let Some(piece) = pieces.next() {
                out.push_str(piece);
                if pieces.peek().is_some() {
                    match rest.next() {
                        Some(v) => {
                            let _ = write!(out, "{}", v.plain());
                        }
                        None => out.push_str("{}"),
                    }
                }
            }
            return out;
        }
    }
    for (i, v) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{}", v.plain());
    }
    out
}

pub fn len(v: &Value) -> Result<Value, ErrorKind> {
    match v {
        Value::Str(s) => Ok(Value::Int(s.len() as i64)),
        Value::Array(a) => Ok(Value::Int(a.len() as i64)),
        _ => Err(ErrorKind::Builtin(
            "len() expects a string, array, tuple, or dataframe".to_string(),
        )),
    }
}

pub fn to_string(v: &Value) -> Value {
    match v {
        Value::Str(_) => v.clone(),
        other => Value::Str(Rc::new(other.plain().to_string())),
    }
}

fn to_int(v: &Value) -> Result<Value, ErrorKind> {
    match v {
        Value::Int(i) => Ok(Value::Int(*i)),
        Value::Float(f) => Ok(Value::Int(float_to_int(*f))),
        Value::Bool(b) => Ok(Value::Int(*b as i64)),
        Value::Str(s) => s
            .parse::<i64>()
            .map(Value::Int)
            .map_err(|_| ErrorKind::Builtin(format!("int() cannot parse string: '{s}'"))),
        other => Err(ErrorKind::Builtin(format!(
            "int() does not support type: {}",
            other.display()
        ))),
    }
}

fn to_float(v: &Value) -> Result<Value, ErrorKind> {
    match v {
        Value::Int(i) => Ok(Value::Float(*i as f64)),
        Value::Float(f) => Ok(Value::Float(*f)),
        Value::Bool(b) => Ok(Value::Float(*b as i64 as f64)),
        Value::Str(s) => s
            .parse::<f64>()
            .map(Value::Float)
            .map_err(|_| ErrorKind::Builtin(format!("float() cannot parse string: '{s}'"))),
        other => Err(ErrorKind::Builtin(format!(
            "float() does not support type: {}",
            other.display()
        ))),
    }
}

/// `min`/`max` take exactly two numbers; the result is a float if either one is.
fn min_max(b: Builtin, args: &[Value]) -> Result<Value, ErrorKind> {
    let [x, y] = exact::<2>(b, args)?;
    let pick_y = match (x, y) {
        (Value::Int(p), Value::Int(q)) => {
            let better = if b == Builtin::Min { q < p } else { q > p };
            return Ok(Value::Int(if better { *q } else { *p }));
        }
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            let (p, q) = (as_f64(x), as_f64(y));
            if b == Builtin::Min {
                q < p
            } else {
                q > p
            }
        }
        _ => {
            return Err(ErrorKind::Builtin(format!(
                "{}() expects two numbers",
                b.name()
            )))
        }
    };
    Ok(Value::Float(if pick_y { as_f64(y) } else { as_f64(x) }))
}

fn as_f64(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        _ => f64::NAN,
    }
}

/// Methods that do not change their receiver.
pub fn call_method(receiver: &Value, method: &str, args: &[Value]) -> Result<Value, ErrorKind> {
    match (method, args) {
        ("len", []) => len(receiver),
        // The reference converts with Rust's `to_string`: `2.0.to_string()` is "2".
        ("to_string", []) => Ok(match receiver {
            Value::Float(f) => Value::Str(Rc::new(f.to_string())),
            other => to_string(other),
        }),
        _ => Err(method_error(receiver, method, args)),
    }
}

/// Methods that change their receiver in place (`push`, `pop`): the receiver is a variable
/// or an array element, updated copy-on-write.
pub fn call_mut_method(
    receiver: &mut Value,
    method: &str,
    args: &[Value],
) -> Result<Value, ErrorKind> {
    match (method, receiver, args) {
        ("push", Value::Array(items), [v]) => {
            Rc::make_mut(items).push(v.clone());
            Ok(Value::Nil)
        }
        ("pop", Value::Array(items), []) => {
            // Popping an empty array gives nil.
            Ok(Rc::make_mut(items).pop().unwrap_or(Value::Nil))
        }
        (_, receiver, args) => call_method(receiver, method, args),
    }
}

/// Whether a method changes its receiver (and so needs it as a place).
pub fn is_mutating_method(method: &str) -> bool {
    matches!(method, "push" | "pop")
}

fn method_error(receiver: &Value, method: &str, args: &[Value]) -> ErrorKind {
    let expected = match method {
        "len" | "to_string" | "pop" => Some(0),
        "push" => Some(1),
        _ => None,
    };
    match expected {
        Some(n) if n != args.len() => ErrorKind::Builtin(format!(
            "{method}() expects {n} argument{}, got {}",
            if n == 1 { "" } else { "s" },
            args.len()
        )),
        _ => ErrorKind::UnknownMethod {
            receiver: receiver.type_of(),
            method: method.to_string(),
        },
    }
}

/// One `{expr:spec}` of an f-string: the plain form, floats (and ints) with the requested
/// precision, padded to the requested width (numbers right-aligned, the rest left-aligned).
pub fn format_hole(out: &mut String, v: &Value, spec: &FormatSpec) {
    let text = match (v, spec.precision) {
        (Value::Float(f), Some(p)) => format!("{f:.p$}"),
        (Value::Int(i), Some(p)) => format!("{:.p$}", *i as f64),
        _ => v.plain().to_string(),
    };
    match spec.width {
        Some(w) if matches!(v, Value::Int(_) | Value::Float(_)) => {
            out.push_str(&format!("{text:>w$}"))
        }
        Some(w) => out.push_str(&format!("{text:<w$}")),
        None => out.push_str(&text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(args: &[Value]) -> String {
        format_args_line(args)
    }

    #[test]
    fn println_formats() {
        assert_eq!(
            line(&[
                Value::str("{} + {} = {}"),
                Value::Int(2),
                Value::Int(3),
                Value::Int(5)
            ]),
            "2 + 3 = 5"
        );
        assert_eq!(line(&[Value::str("two"), Value::str("words")]), "two words");
        assert_eq!(line(&[Value::str("{}"), Value::Int(1), Value::Int(2)]), "1");
        assert_eq!(line(&[]), "");
        assert_eq!(
            line(&[
                Value::Int(1),
                Value::Float(2.0),
                Value::array(vec![Value::str("a")])
            ]),
            "1 2.0 [\"a\"]"
        );
    }

    #[test]
    fn conversions() {
        let mut sink = Vec::new();
        let call = |b: Builtin, v: Value, sink: &mut Vec<u8>| {
            b.call(&[v], sink).map(|v| v.display().to_string())
        };
        assert_eq!(
            call(Builtin::Int, Value::Float(-3.9), &mut sink).unwrap(),
            "-3"
        );
        assert_eq!(
            call(Builtin::Int, Value::str("42"), &mut sink).unwrap(),
            "42"
        );
        assert_eq!(
            call(Builtin::Float, Value::Int(3), &mut sink).unwrap(),
            "3.0"
        );
        assert_eq!(
            call(Builtin::Str, Value::Float(2.0), &mut sink).unwrap(),
            "\"2.0\""
        );
        assert_eq!(
            call(Builtin::Round, Value::Float(2.5), &mut sink).unwrap(),
            "3"
        );
        assert_eq!(
            call(Builtin::Floor, Value::Float(-2.5), &mut sink).unwrap(),
            "-3"
        );
        assert_eq!(
            call(Builtin::Sqrt, Value::Int(4), &mut sink).unwrap(),
            "2.0"
        );
        assert_eq!(
            call(Builtin::TypeOf, Value::Nil, &mut sink).unwrap(),
            "\"nil\""
        );
        assert_eq!(
            call(Builtin::Floor, Value::Float(1e20), &mut sink).unwrap(),
            "9223372036854775807"
        );
        assert!(call(Builtin::Int, Value::str(" 4"), &mut sink).is_err());
    }

    #[test]
    fn push_and_pop_are_copy_on_write() {
        let mut a = Value::array(vec![Value::Int(1)]);
        let b = a.clone();
        call_mut_method(&mut a, "push", &[Value::Int(2)]).unwrap();
        assert_eq!(a.display().to_string(), "[1, 2]");
        assert_eq!(b.display().to_string(), "[1]");
        assert_eq!(
            call_mut_method(&mut a, "pop", &[])
                .unwrap()
                .display()
                .to_string(),
            "2"
        );
    }
}
