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
/// dashed ISO 8601 form, fractional seconds (kept, to the nanosecond) and a trailing
/// `Z` or offset (dropped, because the wire type has no zone). Every field is checked,
/// the day against its month, so a date-time means the same instant on every
/// protocol (MessagePack carries it as a Unix timestamp).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime {
    /// Year, 0..=9999.
    pub year: u16,
    /// Month, 1..=12.
    pub month: u8,
    /// Day of month, 1 to the month's length.
    pub day: u8,
    /// Hour, 0..=23.
    pub hour: u8,
    /// Minute, 0..=59.
    pub minute: u8,
    /// Second, 0..=59.
    pub second: u8,
    /// Nanoseconds within the second, 0..=999_999_999.
    pub nanosecond: u32,
}

/// Why a date-time text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid dateTime.iso8601 value {0:?}")]
pub struct DateTimeError(pub String);

/// The number of days in `month` of `year` (proleptic Gregorian calendar).
fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        _ => 31,
    }
}

impl DateTime {
    /// Builds a date-time on a whole second, checking every field's range.
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
            && day >= 1
            && day <= days_in_month(year, month)
            && hour <= 23
            && minute <= 59
            && second <= 59;
        ok.then_some(DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            nanosecond: 0,
        })
    }

    /// The same date-time with a sub-second part; `None` beyond 999 999 999 ns.
    pub fn with_nanosecond(self, nanosecond: u32) -> Option<DateTime> {
        (nanosecond < 1_000_000_000).then_some(DateTime { nanosecond, ..self })
    }

    /// The same date-time without its sub-second part.
    pub fn whole_seconds(self) -> DateTime {
        DateTime {
            nanosecond: 0,
            ..self
        }
    }

    /// Parses `YYYYMMDDTHH:MM:SS`, `YYYY-MM-DDTHH:MM:SS` and their variants with
    /// fractional seconds, `HHMMSS` time or a zone suffix.
    pub fn parse(text: &str) -> Result<DateTime, DateTimeError> {
        let err = || DateTimeError(text.chars().take(64).collect());
        let t = text.trim();
        // Every accepted form is ASCII; checking that first makes each byte
        // offset below a character boundary.
        if !t.is_ascii() {
            return Err(err());
        }
        let (date, time) = t.split_once(['T', 't', ' ']).ok_or_else(err)?;
        let date: Vec<u8> = date.bytes().filter(|b| *b != b'-').collect();
        let time = strip_zone(time);
        let (time, fraction) = match time.split_once(['.', ',']) {
            Some((time, fraction)) => (time, Some(fraction)),
            None => (time, None),
        };
        let time: Vec<u8> = time.bytes().filter(|b| *b != b':').collect();
        let nanosecond = match fraction {
            Some(f) => parse_fraction(f).ok_or_else(err)?,
            None => 0,
        };
        if date.len() != 8 || time.len() != 6 {
            return Err(err());
        }
        let num = |digits: &[u8]| -> Result<u32, DateTimeError> {
            digits.iter().try_fold(0u32, |acc, b| match b {
                b'0'..=b'9' => Ok(acc * 10 + u32::from(b - b'0')),
                _ => Err(err()),
            })
        };
        DateTime::new(
            num(&date[0..4])? as u16,
            num(&date[4..6])? as u8,
            num(&date[6..8])? as u8,
            num(&time[0..2])? as u8,
            num(&time[2..4])? as u8,
            num(&time[4..6])? as u8,
        )
        .and_then(|d| d.with_nanosecond(nanosecond))
        .ok_or_else(err)
    }

    /// The dashed ISO 8601 form, `YYYY-MM-DDTHH:MM:SS` with a fraction of 3, 6 or 9
    /// digits when there is one, used where JSON needs a string.
    pub fn to_iso8601(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}",
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.fraction()
        )
    }

    /// `.250`, `.250001` or `.250000001`; empty on a whole second.
    fn fraction(&self) -> String {
        let ns = self.nanosecond;
        if ns == 0 {
            String::new()
        } else if ns.is_multiple_of(1_000_000) {
            format!(".{:03}", ns / 1_000_000)
        } else if ns.is_multiple_of(1_000) {
            format!(".{:06}", ns / 1_000)
        } else {
            format!(".{ns:09}")
        }
    }
}

/// Nanoseconds of a fraction's digits (`"25"` → 250 000 000); digits past the
/// ninth are dropped. `None` unless 1 to 18 ASCII digits.
fn parse_fraction(digits: &str) -> Option<u32> {
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nine: String = digits
        .chars()
        .chain(std::iter::repeat('0'))
        .take(9)
        .collect();
    nine.parse().ok()
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
    /// Writes the XML-RPC form `YYYYMMDDTHH:MM:SS`, whole seconds only: that is
    /// all the XML-RPC type carries (Python's client refuses a fraction).
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
            "2026-11-21 05:17:00-0500",
        ] {
            assert_eq!(DateTime::parse(text), Ok(want), "{text}");
        }
        let fine = want.with_nanosecond(123_000_000).unwrap();
        assert_eq!(DateTime::parse("2026-11-21T05:17:00.123+02:00"), Ok(fine));
        assert_eq!(fine.to_iso8601(), "2026-11-21T05:17:00.123");
        assert_eq!(fine.to_string(), "20261121T05:17:00");
        let nano = want.with_nanosecond(7).unwrap();
        assert_eq!(DateTime::parse(&nano.to_iso8601()), Ok(nano));
        assert_eq!(nano.to_iso8601(), "2026-11-21T05:17:00.000000007");
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
            "202é112T05:17:00",
            "20261121T05:1é:00",
            "20261121T05:17:00.",
            "20261121T05:17:00.x",
            "20260230T05:17:00",
            "20250229T00:00:00",
            "20261121T23:59:60",
            "2026-11-21T05:17:00.1234567890123456789",
        ] {
            assert!(DateTime::parse(text).is_err(), "{text}");
        }
    }
}
