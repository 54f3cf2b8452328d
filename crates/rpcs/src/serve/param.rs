//! A served method's declared parameters, and turning a caller's values into
//! checked arguments.

use rpcs_core::{Fault, Kind, ParamSpec, Value};
use serde::Deserialize;

/// The type of a declared parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    /// A string (the default).
    #[default]
    String,
    /// A 64-bit integer, written in decimal.
    Integer,
    /// `true` or `false`.
    Boolean,
    /// A list of strings, spread as several arguments by `{name...}`.
    List,
    /// Raw bytes: only for the parameter fed to standard input.
    Bytes,
}

impl ParamType {
    fn kind(self) -> Kind {
        match self {
            ParamType::String => Kind::String,
            ParamType::Integer => Kind::Int,
            ParamType::Boolean => Kind::Bool,
            ParamType::List => Kind::Array(Box::new(Kind::String)),
            ParamType::Bytes => Kind::Bytes,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ParamType::String => "a string",
            ParamType::Integer => "an integer",
            ParamType::Boolean => "a boolean",
            ParamType::List => "a list of strings",
            ParamType::Bytes => "bytes or a string",
        }
    }
}

/// A parameter's value, checked against its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// A string (or an integer's or boolean's decimal form).
    Text(String),
    /// The items of a list.
    List(Vec<String>),
    /// A boolean, kept so that `if` groups can test it.
    Flag(bool),
    /// Bytes for standard input.
    Bytes(Vec<u8>),
}

impl Arg {
    /// Whether an `if` group on this parameter is included: the parameter was
    /// given and is not `false` or an empty list.
    pub fn is_set(&self) -> bool {
        match self {
            Arg::Flag(b) => *b,
            Arg::List(items) => !items.is_empty(),
            Arg::Text(_) | Arg::Bytes(_) => true,
        }
    }
}

/// One declared parameter.
#[derive(Debug, Clone)]
pub struct Param {
    /// Its name: `{name}` in the template, the key of a named call.
    pub name: String,
    /// Its type.
    pub ty: ParamType,
    /// Whether a caller may leave it out.
    pub optional: bool,
    /// What a left-out optional parameter stands for, if anything.
    pub default: Option<Arg>,
    /// Whether a value may start with `-` where it begins an argument.
    pub allow_dash: bool,
}

impl Param {
    /// The parameter as introspection shows it.
    pub fn spec(&self) -> ParamSpec {
        let kind = self.ty.kind();
        ParamSpec {
            name: self.name.clone(),
            kind: if self.optional {
                Kind::Optional(Box::new(kind))
            } else {
                kind
            },
            optional: self.optional,
            variadic: false,
        }
    }

    /// Checks a caller's value (nil for a left-out one): the argument, or
    /// `None` for a left-out optional parameter without a default.
    pub fn accept(&self, value: Value) -> Result<Option<Arg>, Fault> {
        if value == Value::Nil {
            return match (&self.default, self.optional) {
                (Some(default), _) => Ok(Some(default.clone())),
                (None, true) => Ok(None),
                (None, false) => Err(self.refuse("is required")),
            };
        }
        let arg = match (self.ty, value) {
            (ParamType::String, Value::String(s)) => Arg::Text(s),
            (ParamType::String, Value::Int(i)) => Arg::Text(i.to_string()),
            (ParamType::Integer, Value::Int(i)) => Arg::Text(i.to_string()),
            // Command lines and XML-RPC clients often send numbers as text.
            (ParamType::Integer, Value::String(s)) => match s.trim().parse::<i64>() {
                Ok(i) => Arg::Text(i.to_string()),
                Err(_) => return Err(self.refuse(format_args!("must be an integer, not {s:?}"))),
            },
            (ParamType::Boolean, Value::Bool(b)) => Arg::Flag(b),
            (ParamType::Boolean, Value::String(s)) if s == "true" || s == "false" => {
                Arg::Flag(s == "true")
            }
            (ParamType::List, Value::Array(items)) => {
                let mut list = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    match item {
                        Value::String(s) => list.push(s),
                        Value::Int(n) => list.push(n.to_string()),
                        other => {
                            let got = type_name(&other);
                            return Err(
                                self.refuse(format_args!("item {i} must be a string, not {got}"))
                            );
                        }
                    }
                }
                Arg::List(list)
            }
            (ParamType::Bytes, Value::Bytes(b)) => Arg::Bytes(b),
            (ParamType::Bytes, Value::String(s)) => Arg::Bytes(s.into_bytes()),
            (ty, other) => {
                let got = type_name(&other);
                return Err(self.refuse(format_args!("must be {}, not {got}", ty.name())));
            }
        };
        // An argument vector cannot carry NUL: the program would see the
        // value cut short. Standard input can.
        let has_nul = match &arg {
            Arg::Text(s) => s.contains('\0'),
            Arg::List(items) => items.iter().any(|s| s.contains('\0')),
            Arg::Flag(_) | Arg::Bytes(_) => false,
        };
        if has_nul {
            return Err(self.refuse("contains a NUL character, which no argument can carry"));
        }
        Ok(Some(arg))
    }

    /// The invalid-params fault for this parameter.
    pub fn refuse(&self, why: impl std::fmt::Display) -> Fault {
        Fault::invalid_params(format!("InvalidArgument: parameter {:?} {why}", self.name))
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Nil => "nil",
        Value::Bool(_) => "a boolean",
        Value::Int(_) => "an integer",
        Value::Double(_) => "a double",
        Value::String(_) => "a string",
        Value::Bytes(_) => "bytes",
        Value::DateTime(_) => "a date-time",
        Value::Array(_) => "an array",
        Value::Struct(_) => "a struct",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(ty: ParamType) -> Param {
        Param {
            name: "p".into(),
            ty,
            optional: false,
            default: None,
            allow_dash: false,
        }
    }

    #[test]
    fn values_are_checked_against_the_type() {
        let s = |t: &str| Value::String(t.into());
        let text = param(ParamType::String);
        assert_eq!(text.accept(s("a b")), Ok(Some(Arg::Text("a b".into()))));
        assert_eq!(text.accept(Value::Int(7)), Ok(Some(Arg::Text("7".into()))));
        assert!(text.accept(Value::Array(vec![])).is_err());
        let int = param(ParamType::Integer);
        assert_eq!(int.accept(s(" -3 ")), Ok(Some(Arg::Text("-3".into()))));
        assert!(int.accept(s("3; rm -rf /")).is_err());
        assert!(int.accept(Value::Double(1.5)).is_err());
        let flag = param(ParamType::Boolean);
        assert_eq!(flag.accept(Value::Bool(true)), Ok(Some(Arg::Flag(true))));
        assert_eq!(flag.accept(s("false")), Ok(Some(Arg::Flag(false))));
        assert!(flag.accept(s("yes")).is_err());
        let list = param(ParamType::List);
        assert_eq!(
            list.accept(Value::Array(vec![s("a"), Value::Int(2)])),
            Ok(Some(Arg::List(vec!["a".into(), "2".into()])))
        );
        let nested = list.accept(Value::Array(vec![Value::Array(vec![])]));
        assert!(nested
            .unwrap_err()
            .message
            .contains("item 0 must be a string"));
    }

    #[test]
    fn nul_is_refused_in_arguments_only() {
        let s = |t: &str| Value::String(t.into());
        let fault = param(ParamType::String).accept(s("a\0b")).unwrap_err();
        assert_eq!(fault.code, Fault::INVALID_PARAMS);
        assert!(fault.message.starts_with("InvalidArgument: "), "{fault}");
        let list = param(ParamType::List).accept(Value::Array(vec![s("ok"), s("\0")]));
        assert!(list.is_err());
        let stdin = param(ParamType::Bytes).accept(Value::Bytes(vec![0, 1]));
        assert_eq!(stdin, Ok(Some(Arg::Bytes(vec![0, 1]))));
    }

    #[test]
    fn left_out_values_take_the_default_or_are_absent() {
        let mut p = param(ParamType::String);
        assert!(p
            .accept(Value::Nil)
            .unwrap_err()
            .message
            .contains("is required"));
        p.optional = true;
        assert_eq!(p.accept(Value::Nil), Ok(None));
        p.default = Some(Arg::Text("d".into()));
        assert_eq!(p.accept(Value::Nil), Ok(Some(Arg::Text("d".into()))));
        assert_eq!(p.spec().kind, Kind::Optional(Box::new(Kind::String)));
        assert!(p.spec().optional);
    }
}
