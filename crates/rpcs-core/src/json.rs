//! The one mapping between [`Value`] and JSON, used by every JSON surface
//! (JSON-RPC, the CLI's `-j` arguments and `--print-json` output).
//!
//! JSON has no bytes or date-time type, so:
//! - bytes become a standard base64 string (with padding);
//! - a date-time becomes the string `YYYY-MM-DDTHH:MM:SS`;
//! - a JSON number becomes an integer when it is whole and fits in 64 bits,
//!   a double otherwise; the non-finite doubles JSON has no number for become
//!   the strings `"NaN"`, `"Infinity"` and `"-Infinity"` (as JavaScript's
//!   `Number()` and Python's `float()` read them).
//!
//! Typed parameters declared as [`Bytes`](crate::Bytes),
//! [`DateTime`](crate::DateTime) or `f64` accept those strings back.

use crate::value::{Map, Value};
use base64::Engine as _;
use serde_json::Value as Json;

/// Converts JSON to a [`Value`].
pub fn from_json(json: Json) -> Value {
    match json {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::String(s),
        Json::Array(items) => Value::Array(items.into_iter().map(from_json).collect()),
        Json::Object(members) => Value::Struct(
            members
                .into_iter()
                .map(|(k, v)| (k, from_json(v)))
                .collect::<Map>(),
        ),
    }
}

/// Converts a [`Value`] to JSON.
pub fn to_json(value: &Value) -> Json {
    match value {
        Value::Nil => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Double(d) => match serde_json::Number::from_f64(*d) {
            Some(n) => Json::Number(n),
            None => Json::String(non_finite_name(*d).to_owned()),
        },
        Value::String(s) => Json::String(s.clone()),
        Value::Bytes(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Value::DateTime(d) => Json::String(d.to_iso8601()),
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Struct(members) => Json::Object(
            members
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect(),
        ),
    }
}

/// The string JSON carries a non-finite double as.
fn non_finite_name(d: f64) -> &'static str {
    if d.is_nan() {
        "NaN"
    } else if d > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

/// The non-finite double a JSON string stands for, if it is one of those names.
pub fn non_finite(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DateTime;

    #[test]
    fn mapping() {
        let json: Json = serde_json::from_str(
            r#"{"b": 1, "a": [1.5, 2, null, true, "x"], "big": 18446744073709551615}"#,
        )
        .unwrap();
        let v = from_json(json.clone());
        let m = v.as_struct().unwrap();
        assert_eq!(m.keys().collect::<Vec<_>>(), ["b", "a", "big"]);
        assert_eq!(m["a"].as_array().unwrap()[1], Value::Int(2));
        assert_eq!(m["a"].as_array().unwrap()[0], Value::Double(1.5));
        assert!(matches!(m["big"], Value::Double(_)));
        assert_eq!(to_json(&m["a"]), json["a"]);
        let d = DateTime::new(2026, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(
            to_json(&Value::DateTime(d)),
            Json::from("2026-01-02T03:04:05")
        );
        assert_eq!(to_json(&Value::Bytes(vec![0, 255])), Json::from("AP8="));
        assert_eq!(to_json(&Value::Double(f64::NAN)), Json::from("NaN"));
        assert_eq!(
            to_json(&Value::Double(f64::NEG_INFINITY)),
            Json::from("-Infinity")
        );
        let back: f64 = crate::from_value(Value::String("Infinity".into())).unwrap();
        assert_eq!(back, f64::INFINITY);
        assert!(crate::from_value::<f64>(Value::String("1.5".into())).is_err());
    }

    #[test]
    fn doubles_come_back_exactly() {
        // Found by fuzzing: serde_json's default float parsing read this one
        // unit in the last place off.
        for d in [-1.2985976283741158e48, 0.1, 5e-324, f64::MAX, -0.0] {
            let text = serde_json::to_string(&to_json(&Value::Double(d))).unwrap();
            let back = from_json(serde_json::from_str(&text).unwrap());
            assert_eq!(back, Value::Double(d), "{text}");
        }
    }
}
