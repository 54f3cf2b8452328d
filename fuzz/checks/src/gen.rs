//! Building values from fuzz bytes with [`arbitrary::Unstructured`].
//!
//! The generators lean towards the inputs that have broken codecs before or are
//! documented edge cases: integers at the 32- and 64-bit limits, NaN and the
//! infinities, negative zero, strings with control characters, `\r`, markup
//! characters and the non-characters U+FFFE/U+FFFF, date-times with 3, 6 and 9
//! digit fractions and on the last day of a month.

use arbitrary::{Result, Unstructured};
use rpcs_core::{DateTime, Map, Value};

/// The deepest arrays and structs [`value`] builds.
pub const MAX_DEPTH: usize = 4;

/// An arbitrary value, nested at most `depth` levels.
pub fn value(u: &mut Unstructured, depth: usize) -> Result<Value> {
    let kinds = if depth == 0 { 6 } else { 8 };
    Ok(match u.int_in_range(0..=kinds)? {
        0 => Value::Nil,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::Int(int(u)?),
        3 => Value::Double(double(u)?),
        4 => Value::String(string(u)?),
        5 => Value::Bytes(bytes(u)?),
        6 => Value::DateTime(datetime(u)?),
        7 => Value::Array(values(u, depth - 1)?),
        _ => Value::Struct(members(u, depth - 1)?),
    })
}

/// Up to five values, each nested at most `depth` levels.
pub fn values(u: &mut Unstructured, depth: usize) -> Result<Vec<Value>> {
    let n = u.int_in_range(0..=5)?;
    (0..n).map(|_| value(u, depth)).collect()
}

/// Up to five struct members (names may repeat; the map keeps the last value).
pub fn members(u: &mut Unstructured, depth: usize) -> Result<Map> {
    let n = u.int_in_range(0..=5)?;
    let mut map = Map::new();
    for _ in 0..n {
        map.insert(string(u)?, value(u, depth)?);
    }
    Ok(map)
}

/// An integer, often one at a width boundary.
pub fn int(u: &mut Unstructured) -> Result<i64> {
    const EDGES: [i64; 14] = [
        0,
        1,
        -1,
        127,
        -32,
        -33,
        255,
        65_536,
        i32::MAX as i64,
        i32::MIN as i64,
        i32::MAX as i64 + 1,
        i32::MIN as i64 - 1,
        i64::MAX,
        i64::MIN,
    ];
    if u.ratio(1, 2)? {
        Ok(*u.choose(&EDGES)?)
    } else {
        u.arbitrary()
    }
}

/// A double, often a special one; otherwise any bit pattern (NaN payloads too).
pub fn double(u: &mut Unstructured) -> Result<f64> {
    const EDGES: [f64; 12] = [
        0.0,
        -0.0,
        1.5,
        0.1,
        2.0,
        1e300,
        -2.5e-300,
        f64::MIN_POSITIVE,
        f64::MAX,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ];
    if u.ratio(1, 2)? {
        Ok(*u.choose(&EDGES)?)
    } else {
        Ok(f64::from_bits(u.arbitrary()?))
    }
}

/// A short string mixing plain text with the characters codecs treat specially.
pub fn string(u: &mut Unstructured) -> Result<String> {
    const SPECIAL: [char; 16] = [
        '&', '<', '>', '"', '\'', ']', '\r', '\n', '\t', ' ', '\u{0}', '\u{1}', '\u{1f}', '\u{85}',
        '\u{fffe}', '\u{ffff}',
    ];
    let n = u.int_in_range(0..=8)?;
    let mut s = String::new();
    for _ in 0..n {
        let c = match u.int_in_range(0..=2)? {
            0 => char::from(u.int_in_range(b'a'..=b'z')?),
            1 => *u.choose(&SPECIAL)?,
            _ => u.arbitrary()?,
        };
        s.push(c);
    }
    Ok(s)
}

/// Up to 40 arbitrary bytes.
pub fn bytes(u: &mut Unstructured) -> Result<Vec<u8>> {
    let n = u.int_in_range(0..=40)?;
    Ok(u.bytes(n.min(u.len()))?.to_vec())
}

/// A valid date-time, sometimes on a month's last day, with a fraction of 0, 3,
/// 6 or 9 significant digits.
pub fn datetime(u: &mut Unstructured) -> Result<DateTime> {
    let year = u.int_in_range(0..=9999)?;
    let month = u.int_in_range(1..=12)?;
    let mut day = u.int_in_range(1..=31)?;
    while DateTime::new(year, month, day, 0, 0, 0).is_none() {
        day -= 1;
    }
    let whole = DateTime::new(
        year,
        month,
        day,
        u.int_in_range(0..=23)?,
        u.int_in_range(0..=59)?,
        u.int_in_range(0..=59)?,
    )
    .expect("every field is in range");
    let nanos: u32 = u.int_in_range(0..=999_999_999)?;
    let nanos = match u.int_in_range(0..=3)? {
        0 => 0,
        1 => nanos / 1_000_000 * 1_000_000,
        2 => nanos / 1_000 * 1_000,
        _ => nanos,
    };
    Ok(whole.with_nanosecond(nanos).expect("below a second"))
}
