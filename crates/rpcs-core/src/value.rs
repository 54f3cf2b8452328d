//! The protocol-neutral value model shared by every codec.

use indexmap::IndexMap;
use std::fmt;

/// An ordered string-keyed map: struct members keep the order they were
/// inserted or received in, so a Python client sees keys as the server wrote them.
pub type Map = IndexMap<String, Value>;

/// One value as it travels over any protocol.
///
/// The variants are the union of what XML-RPC, JSON-RPC, MessagePack-RPC and
/// zerorpc can carry; each codec maps them to its own wire types.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// The absent value (`<nil/>`, JSON `null`, msgpack nil).
    #[default]
    Nil,
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A double-precision float.
    Double(f64),
    /// A UTF-8 string.
    String(String),
    /// Raw bytes (`<base64>`, msgpack bin).
    Bytes(Vec<u8>),
    /// A calendar date and time without a zone (`<dateTime.iso8601>`).
    DateTime(DateTime),
    /// An ordered sequence.
    Array(Vec<Value>),
    /// An ordered map with string keys.
    Struct(Map),
}

impl Value {
    /// The name of this value's type, as used in error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "int",
            Value::Double(_) => "double",
            Value::String(_) => "string",
            Value::Bytes(_) => "base64",
            Value::DateTime(_) => "dateTime.iso8601",
            Value::Array(_) => "array",
            Value::Struct(_) => "struct",
        }
    }

    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer inside, if this is an integer.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The number inside as a float, if this is an integer or a double.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Double(d) => Some(*d),
            _ => None,
        }
    }

    /// The boolean inside, if this is a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The members, if this is a struct.
    pub fn as_struct(&self) -> Option<&Map> {
        match self {
            Value::Struct(m) => Some(m),
            _ => None,
        }
    }

    /// Whether this is [`Value::Nil`].
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self { Value::Int(i64::from(v)) }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32);

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Double(v)
    }
}
impl From<f32> for Value {
    fn from(v: f32) -> Self {
        Value::Double(f64::from(v))
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(v.to_owned())
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Bytes(v)
    }
}
impl From<DateTime> for Value {
    fn from(v: DateTime) -> Self {
        Value::DateTime(v)
    }
}
impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Self {
        Value::Array(v)
    }
}
impl From<Map> for Value {
    fn from(v: Map) -> Self {
        Value::Struct(v)
    }
}
impl From<()> for Value {
    fn from(_: ()) -> Self {
        Value::Nil
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Nil, Into::into)
    }
}

/// A calendar date and time with no time zone, as XML-RPC's `dateTime.iso8601` carries it.
///
/// Text form is `YYYYMMDDTHH:MM:SS` (what Python sends); parsing also accepts the
/// dashed ISO 8601 form, fractional seconds and a trailing `Z` or offset, which are dropped
/// because the wire type has no zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime {
    /// Year, 0..=9999.
    pub year: u16,
    /// Month, 1..=12.
    pub month: u8,
    /// Day of month, 1..=31.
    pub day: u8,
    /// Hour, 0..=23.
    pub hour: u8,
    /// Minute, 0..=59.
    pub minute: u8,
    /// Second, 0..=60 (60 for a leap second).
    pub second: u8,
}

/// Why a date-time text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid dateTime.iso8601 value {0:?}")]
pub struct DateTimeError(pub String);

impl DateTime {
    /// Builds a date-time, checking every field's range.
    pub fn new(
        year: u16,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
    ) -> Option<DateTime> {
        let ok = year <= 9999
            && (1..=12).contains(&month)
            && (1..=31).contains(&day)
            && hour <= 23
            && minute <= 59
            && second <= 60;
        ok.then_some(DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
        })
    }

    /// Parses `YYYYMMDDTHH:MM:SS`, `YYYY-MM-DDTHH:MM:SS` and their variants with
    /// fractional seconds, `HHMMSS` time or a zone suffix.
    pub fn parse(text: &str) -> Result<DateTime, DateTimeError> {
        let err = || DateTimeError(text.chars().take(64).collect());
        let t = text.trim();
        let (date, time) = t.split_once(['T', 't', ' ']).ok_or_else(err)?;
        let date: String = date.chars().filter(|c| *c != '-').collect();
        let time = strip_zone(time);
        let time = time.split('.').next().unwrap_or(time);
        let time: String = time.chars().filter(|c| *c != ':').collect();
        if date.len() != 8 || time.len() != 6 {
            return Err(err());
        }
        let digits = |s: &str| -> Option<u32> {
            s.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| s.parse().ok())
                .flatten()
        };
        let num = |s: &str| digits(s).ok_or_else(err);
        DateTime::new(
            num(&date[0..4])? as u16,
            num(&date[4..6])? as u8,
            num(&date[6..8])? as u8,
            num(&time[0..2])? as u8,
            num(&time[2..4])? as u8,
            num(&time[4..6])? as u8,
        )
        .ok_or_else(err)
    }

    /// The dashed ISO 8601 form, `YYYY-MM-DDTHH:MM:SS`, used where JSON needs a string.
    pub fn to_iso8601(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

fn strip_zone(time: &str) -> &str {
    let time = time.trim_end_matches(['Z', 'z']);
    // An offset starts with the last '+' or '-' (the time part itself has neither).
    match time.rfind(['+', '-']) {
        Some(i) => &time[..i],
        None => time,
    }
}

impl fmt::Display for DateTime {
    /// Writes the XML-RPC form `YYYYMMDDTHH:MM:SS`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}{:02}{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

impl std::str::FromStr for DateTime {
    type Err = DateTimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DateTime::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_forms() {
        let want = DateTime::new(2026, 11, 21, 5, 17, 0).unwrap();
        for text in [
            "20261121T05:17:00",
            "2026-11-21T05:17:00",
            "20261121T051700",
            "2026-11-21T05:17:00Z",
            "2026-11-21T05:17:00.123+02:00",
            "2026-11-21 05:17:00-0500",
        ] {
            assert_eq!(DateTime::parse(text), Ok(want), "{text}");
        }
        assert_eq!(want.to_string(), "20261121T05:17:00");
        assert_eq!(want.to_iso8601(), "2026-11-21T05:17:00");
    }

    #[test]
    fn datetime_rejects() {
        for text in [
            "",
            "2026",
            "20261321T05:17:00",
            "20261121T25:17:00",
            "2026112xT05:17:00",
            "20261121T05:17",
            "+0261121T05:17:00",
        ] {
            assert!(DateTime::parse(text).is_err(), "{text}");
        }
    }
}
