//! MessagePack encoding of [`Value`], in both directions.
//!
//! Strings are msgpack `str`, bytes are `bin`, date-times are the standard timestamp
//! extension (type -1, read as UTC and written as 32-, 64- or 96-bit forms), structs
//! are maps with string keys (integer and UTF-8 `bin` keys are read as strings).
//! Reading is bounded: nesting depth is limited, and no length prefix can make the
//! decoder allocate more than the input could hold. An incomplete value is reported
//! as [`DecodeError::Truncated`] so stream transports can wait for more bytes.

use crate::value::{DateTime, Map, Value};

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ends inside a value: more bytes are needed.
    #[error("truncated MessagePack value")]
    Truncated,
    /// The bytes are not a value this crate accepts.
    #[error("invalid MessagePack: {0}")]
    Invalid(String),
    /// Arrays and maps are nested deeper than the limit.
    #[error("MessagePack values are nested deeper than the limit of {0}")]
    TooDeep(usize),
}

/// The deepest nesting [`decode`] accepts by default.
pub const DEFAULT_MAX_DEPTH: usize = 64;

fn invalid(msg: impl Into<String>) -> DecodeError {
    DecodeError::Invalid(msg.into())
}

/// Encodes one value.
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    write_value(&mut out, value);
    out
}

/// Appends one value's encoding to `out`.
pub fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Nil => out.push(0xc0),
        Value::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Int(i) => write_int(out, *i),
        Value::Double(d) => {
            out.push(0xcb);
            out.extend_from_slice(&d.to_be_bytes());
        }
        Value::String(s) => write_str(out, s),
        Value::Bytes(b) => write_bin(out, b),
        Value::DateTime(d) => write_timestamp(out, d),
        Value::Array(items) => {
            write_array_len(out, items.len());
            for item in items {
                write_value(out, item);
            }
        }
        Value::Struct(members) => {
            write_len(out, members.len(), [0x80, 0xde, 0xdf], 16);
            for (k, v) in members {
                write_str(out, k);
                write_value(out, v);
            }
        }
    }
}

/// Appends an integer in its shortest form.
pub fn write_int(out: &mut Vec<u8>, i: i64) {
    match i {
        0..=0x7f => out.push(i as u8),
        -32..=-1 => out.push(i as i8 as u8),
        0x80..=0xff => out.extend_from_slice(&[0xcc, i as u8]),
        0x100..=0xffff => {
            out.push(0xcd);
            out.extend_from_slice(&(i as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xce);
            out.extend_from_slice(&(i as u32).to_be_bytes());
        }
        -0x80..=-33 => out.extend_from_slice(&[0xd0, i as i8 as u8]),
        -0x8000..=-0x81 => {
            out.push(0xd1);
            out.extend_from_slice(&(i as i16).to_be_bytes());
        }
        -0x8000_0000..=-0x8001 => {
            out.push(0xd2);
            out.extend_from_slice(&(i as i32).to_be_bytes());
        }
        _ if i > 0 => {
            out.push(0xcf);
            out.extend_from_slice(&(i as u64).to_be_bytes());
        }
        _ => {
            out.push(0xd3);
            out.extend_from_slice(&i.to_be_bytes());
        }
    }
}

/// Appends a `str`.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let n = s.len();
    if n < 32 {
        out.push(0xa0 | n as u8);
    } else if n <= 0xff {
        out.extend_from_slice(&[0xd9, n as u8]);
    } else {
        write_len(out, n, [0, 0xda, 0xdb], 0);
    }
    out.extend_from_slice(s.as_bytes());
}

/// Appends a `bin`.
pub fn write_bin(out: &mut Vec<u8>, b: &[u8]) {
    let n = b.len();
    if n <= 0xff {
        out.extend_from_slice(&[0xc4, n as u8]);
    } else if n <= 0xffff {
        out.push(0xc5);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xc6);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
    out.extend_from_slice(b);
}

/// Appends the header of an array of `n` elements, whose encodings the caller
/// appends next (to build an array from values encoded elsewhere).
pub fn write_array_len(out: &mut Vec<u8>, n: usize) {
    write_len(out, n, [0x90, 0xdc, 0xdd], 16);
}

/// Writes a length with a fix form (when below `fix_limit`), a 16-bit and a 32-bit form.
fn write_len(out: &mut Vec<u8>, n: usize, tags: [u8; 3], fix_limit: usize) {
    if n < fix_limit {
        out.push(tags[0] | n as u8);
    } else if n <= 0xffff {
        out.push(tags[1]);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(tags[2]);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn write_timestamp(out: &mut Vec<u8>, d: &DateTime) {
    let secs = unix_seconds(d);
    let nanos = d.nanosecond;
    if nanos == 0 {
        if let Ok(s) = u32::try_from(secs) {
            out.extend_from_slice(&[0xd6, 0xff]);
            out.extend_from_slice(&s.to_be_bytes());
            return;
        }
    }
    if (0..1 << 34).contains(&secs) {
        out.extend_from_slice(&[0xd7, 0xff]);
        let packed = (u64::from(nanos) << 34) | secs as u64;
        out.extend_from_slice(&packed.to_be_bytes());
    } else {
        out.extend_from_slice(&[0xc7, 12, 0xff]);
        out.extend_from_slice(&nanos.to_be_bytes());
        out.extend_from_slice(&secs.to_be_bytes());
    }
}

/// Seconds since 1970-01-01T00:00:00, reading the date-time as UTC.
pub fn unix_seconds(d: &DateTime) -> i64 {
    let days = days_from_civil(i64::from(d.year), i64::from(d.month), i64::from(d.day));
    days * 86_400 + i64::from(d.hour) * 3600 + i64::from(d.minute) * 60 + i64::from(d.second)
}

/// The UTC date-time of a Unix time, if its year is within 0..=9999.
pub fn from_unix_seconds(secs: i64) -> Option<DateTime> {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let year = u16::try_from(y).ok()?;
    DateTime::new(
        year,
        m as u8,
        d as u8,
        (rem / 3600) as u8,
        (rem % 3600 / 60) as u8,
        (rem % 60) as u8,
    )
}

// Howard Hinnant's days-from-civil algorithms (proleptic Gregorian calendar).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Decodes exactly one value that fills the whole input.
pub fn decode(input: &[u8], max_depth: usize) -> Result<Value, DecodeError> {
    let mut r = Reader::new(input, max_depth);
    let value = r.value()?;
    if r.pos != input.len() {
        return Err(invalid(format!(
            "{} bytes after the value",
            input.len() - r.pos
        )));
    }
    Ok(value)
}

/// Decodes the first value of `input`; returns it with the number of bytes it used.
pub fn decode_prefix(input: &[u8], max_depth: usize) -> Result<(Value, usize), DecodeError> {
    let mut r = Reader::new(input, max_depth);
    let value = r.value()?;
    Ok((value, r.pos))
}

/// How much of a stream buffer the first value takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameLen {
    /// The first value is complete and this many bytes long.
    Complete(usize),
    /// The buffer ends inside the first value, which needs at least this many bytes
    /// in all: a stream reader can wait for that much before looking again.
    NeedAtLeast(usize),
}

/// Measures the first value in `input` without decoding it (no allocation), so a
/// stream reader can tell whether a whole message has arrived. Errors are the same
/// as [`decode`]'s for malformed structure (a reserved byte, nesting deeper than
/// `max_depth`); string contents and extensions are not checked here.
///
/// It is [`decode_prefix`] without those content checks: unless the decoder
/// stops at a content error first, it reads a value of `n` bytes exactly when
/// this says `Complete(n)`, runs out of input exactly when this says
/// `NeedAtLeast`, and finds nesting too deep exactly when this does (both refuse
/// a container at its header, before looking at how much it announces).
///
/// [`FrameLen::NeedAtLeast`] is a lower bound on the whole value's length and is
/// always beyond `input.len()`. It counts one byte for every element still
/// announced, so a header that claims 2^32 - 1 elements is known at once to need
/// over 4 GiB, as a `str32` or `bin32` claiming that much is.
pub fn frame_len(input: &[u8], max_depth: usize) -> Result<FrameLen, DecodeError> {
    let mut pos = 0usize;
    // Values still to read in the innermost open container (`pending`), and in
    // the containers around it (`stack`, whose sum is `outer`).
    let mut stack: Vec<usize> = Vec::new();
    let mut pending = 1usize;
    let mut outer = 0usize;
    loop {
        while pending == 0 {
            match stack.pop() {
                Some(p) => {
                    outer -= p;
                    pending = p;
                }
                None => return Ok(FrameLen::Complete(pos)),
            }
        }
        pending -= 1;
        // Each value still announced takes at least one more byte.
        let need = |at: usize, pending: usize, outer: usize| {
            Ok(FrameLen::NeedAtLeast(
                at.saturating_add(pending).saturating_add(outer),
            ))
        };
        let Some(&tag) = input.get(pos) else {
            return need(pos + 1, pending, outer);
        };
        pos += 1;
        let (head, mut body, mut children) = shape(tag)?;
        if head > 0 {
            let Some(bytes) = input.get(pos..pos + head) else {
                return need(pos + head, pending, outer);
            };
            let n = bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            pos += head;
            // For containers the length counts children (maps: key-value pairs).
            match children {
                Some(mult) => children = Some(n.saturating_mul(mult)),
                None => body += n,
            }
        }
        pos = pos.saturating_add(body);
        if pos > input.len() {
            return need(pos, pending, outer);
        }
        if let Some(count) = children {
            if stack.len() + 1 > max_depth {
                return Err(DecodeError::TooDeep(max_depth));
            }
            stack.push(pending);
            outer += pending;
            pending = count;
            // Stop early only where the decoder does, when this container's own
            // elements cannot fit: with the outer ones counted too, a nesting
            // error later in the input would be reported as "need more".
            if pos.saturating_add(pending) > input.len() {
                return need(pos, pending, outer);
            }
        }
    }
}

/// The layout of a value by its first byte: how many length bytes follow
/// (`head`), how many body bytes besides those the length gives (`body`), and
/// for containers the values inside: the count itself for the fix forms (no
/// `head`), else how many values each unit of the length stands for (1 for
/// arrays, 2 for maps: keys and values).
fn shape(tag: u8) -> Result<(usize, usize, Option<usize>), DecodeError> {
    Ok(match tag {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0, None),
        0xc1 => return Err(invalid("reserved byte 0xc1")),
        0xcc | 0xd0 => (0, 1, None),
        0xcd | 0xd1 => (0, 2, None),
        0xce | 0xd2 | 0xca => (0, 4, None),
        0xcf | 0xd3 | 0xcb => (0, 8, None),
        0xa0..=0xbf => (0, usize::from(tag & 0x1f), None),
        0xd9 | 0xc4 => (1, 0, None),
        0xda | 0xc5 => (2, 0, None),
        0xdb | 0xc6 => (4, 0, None),
        0xd4 => (0, 2, None),
        0xd5 => (0, 3, None),
        0xd6 => (0, 5, None),
        0xd7 => (0, 9, None),
        0xd8 => (0, 17, None),
        0xc7 => (1, 1, None),
        0xc8 => (2, 1, None),
        0xc9 => (4, 1, None),
        0x90..=0x9f => (0, 0, Some(usize::from(tag & 0x0f))),
        0x80..=0x8f => (0, 0, Some(2 * usize::from(tag & 0x0f))),
        0xdc => (2, 0, Some(1)),
        0xdd => (4, 0, Some(1)),
        0xde => (2, 0, Some(2)),
        0xdf => (4, 0, Some(2)),
    })
}

/// A bounded reader over one input buffer.
pub struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    depth: usize,
    max_depth: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `input`.
    pub fn new(input: &'a [u8], max_depth: usize) -> Reader<'a> {
        Reader {
            input,
            pos: 0,
            depth: 0,
            max_depth,
        }
    }

    /// How many bytes have been consumed.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let bytes = self
            .input
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut buf = [0u8; N];
        buf.copy_from_slice(self.take(N)?);
        Ok(buf)
    }

    fn len(&mut self, width: usize) -> Result<usize, DecodeError> {
        Ok(match width {
            1 => usize::from(self.byte()?),
            2 => usize::from(u16::from_be_bytes(self.be()?)),
            _ => u32::from_be_bytes(self.be()?) as usize,
        })
    }

    /// Reads the next value.
    pub fn value(&mut self) -> Result<Value, DecodeError> {
        let tag = self.byte()?;
        Ok(match tag {
            0x00..=0x7f => Value::Int(i64::from(tag)),
            0xe0..=0xff => Value::Int(i64::from(tag as i8)),
            0xc0 => Value::Nil,
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xcc => Value::Int(i64::from(self.byte()?)),
            0xcd => Value::Int(i64::from(u16::from_be_bytes(self.be()?))),
            0xce => Value::Int(i64::from(u32::from_be_bytes(self.be()?))),
            0xcf => {
                let u = u64::from_be_bytes(self.be()?);
                Value::Int(
                    i64::try_from(u)
                        .map_err(|_| invalid(format!("integer {u} does not fit in 64 bits")))?,
                )
            }
            0xd0 => Value::Int(i64::from(self.byte()? as i8)),
            0xd1 => Value::Int(i64::from(i16::from_be_bytes(self.be()?))),
            0xd2 => Value::Int(i64::from(i32::from_be_bytes(self.be()?))),
            0xd3 => Value::Int(i64::from_be_bytes(self.be()?)),
            0xca => Value::Double(f64::from(f32::from_be_bytes(self.be()?))),
            0xcb => Value::Double(f64::from_be_bytes(self.be()?)),
            0xa0..=0xbf => self.string(usize::from(tag & 0x1f))?,
            0xd9 => {
                let n = self.len(1)?;
                self.string(n)?
            }
            0xda => {
                let n = self.len(2)?;
                self.string(n)?
            }
            0xdb => {
                let n = self.len(4)?;
                self.string(n)?
            }
            0xc4 => {
                let n = self.len(1)?;
                Value::Bytes(self.take(n)?.to_vec())
            }
            0xc5 => {
                let n = self.len(2)?;
                Value::Bytes(self.take(n)?.to_vec())
            }
            0xc6 => {
                let n = self.len(4)?;
                Value::Bytes(self.take(n)?.to_vec())
            }
            0x90..=0x9f => self.array(usize::from(tag & 0x0f))?,
            0xdc => {
                let n = self.len(2)?;
                self.array(n)?
            }
            0xdd => {
                let n = self.len(4)?;
                self.array(n)?
            }
            0x80..=0x8f => self.map(usize::from(tag & 0x0f))?,
            0xde => {
                let n = self.len(2)?;
                self.map(n)?
            }
            0xdf => {
                let n = self.len(4)?;
                self.map(n)?
            }
            0xd4 => self.ext(1)?,
            0xd5 => self.ext(2)?,
            0xd6 => self.ext(4)?,
            0xd7 => self.ext(8)?,
            0xd8 => self.ext(16)?,
            0xc7 => {
                let n = self.len(1)?;
                self.ext(n)?
            }
            0xc8 => {
                let n = self.len(2)?;
                self.ext(n)?
            }
            0xc9 => {
                let n = self.len(4)?;
                self.ext(n)?
            }
            0xc1 => return Err(invalid("reserved byte 0xc1")),
        })
    }

    fn string(&mut self, n: usize) -> Result<Value, DecodeError> {
        let bytes = self.take(n)?;
        std::str::from_utf8(bytes)
            .map(|s| Value::String(s.to_owned()))
            .map_err(|_| invalid("str is not UTF-8"))
    }

    fn enter(&mut self) -> Result<(), DecodeError> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(DecodeError::TooDeep(self.max_depth));
        }
        Ok(())
    }

    /// Every element takes at least one byte, so a count beyond the remaining
    /// input is truncated (or a lie), and never worth allocating for.
    fn check_count(&self, n: usize, min_bytes_each: usize) -> Result<(), DecodeError> {
        if n.saturating_mul(min_bytes_each) > self.input.len() - self.pos {
            return Err(DecodeError::Truncated);
        }
        Ok(())
    }

    // Depth is checked before the count, as `frame_len` does: a container too
    // deep is refused at its header, however many bytes it announces.
    fn array(&mut self, n: usize) -> Result<Value, DecodeError> {
        self.enter()?;
        self.check_count(n, 1)?;
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.value()?);
        }
        self.depth -= 1;
        Ok(Value::Array(items))
    }

    fn map(&mut self, n: usize) -> Result<Value, DecodeError> {
        self.enter()?;
        self.check_count(n, 2)?;
        let mut members = Map::with_capacity(n);
        for _ in 0..n {
            let key = match self.value()? {
                Value::String(s) => s,
                Value::Int(i) => i.to_string(),
                Value::Bytes(b) => {
                    String::from_utf8(b).map_err(|_| invalid("map key is not UTF-8"))?
                }
                other => {
                    return Err(invalid(format!(
                        "map keys must be strings, not {}",
                        other.type_name()
                    )))
                }
            };
            let value = self.value()?;
            members.insert(key, value);
        }
        self.depth -= 1;
        Ok(Value::Struct(members))
    }

    fn ext(&mut self, n: usize) -> Result<Value, DecodeError> {
        let kind = self.byte()? as i8;
        let data = self.take(n)?;
        if kind != -1 {
            return Err(invalid(format!("unsupported extension type {kind}")));
        }
        let (secs, nanos) = match data.len() {
            4 => (
                i64::from(u32::from_be_bytes(data.try_into().expect("4 bytes"))),
                0,
            ),
            8 => {
                let v = u64::from_be_bytes(data.try_into().expect("8 bytes"));
                ((v & 0x3_ffff_ffff) as i64, (v >> 34) as u32)
            }
            12 => (
                i64::from_be_bytes(data[4..].try_into().expect("8 bytes")),
                u32::from_be_bytes(data[..4].try_into().expect("4 bytes")),
            ),
            _ => return Err(invalid("timestamp extension of a bad size")),
        };
        from_unix_seconds(secs)
            .ok_or_else(|| invalid("timestamp outside years 0..9999"))?
            .with_nanosecond(nanos)
            .map(Value::DateTime)
            .ok_or_else(|| invalid("timestamp nanoseconds beyond 999999999"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(v: Value) {
        let bytes = encode(&v);
        assert_eq!(decode(&bytes, 64), Ok(v.clone()), "{bytes:02x?}");
        for cut in 0..bytes.len() {
            assert_eq!(
                decode(&bytes[..cut], 64),
                Err(DecodeError::Truncated),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn round_trips_every_type_and_width() {
        for i in [
            0,
            1,
            127,
            128,
            255,
            256,
            65535,
            65536,
            4294967295,
            4294967296,
            i64::MAX,
            -1,
            -32,
            -33,
            -128,
            -129,
            -32768,
            -32769,
            -2147483648,
            -2147483649,
            i64::MIN,
        ] {
            round(Value::Int(i));
        }
        round(Value::Nil);
        round(Value::Bool(true));
        round(Value::Double(-2.5e300));
        for n in [0, 31, 32, 255, 256, 70000] {
            round(Value::String("é".repeat(n / 2) + &"x".repeat(n % 2)));
            round(Value::Bytes(vec![7; n]));
            round(Value::Array(vec![Value::Nil; n.min(300)]));
        }
        let mut m = Map::new();
        for i in 0..20 {
            m.insert(format!("k{}", 20 - i), Value::Int(i));
        }
        round(Value::Struct(m));
        for (y, mo, d, h, mi, s) in [
            (1970, 1, 1, 0, 0, 0),
            (2026, 11, 21, 5, 17, 0),
            (2106, 2, 7, 6, 28, 16),
            (2500, 1, 1, 0, 0, 0),
            (1969, 12, 31, 23, 59, 59),
            (1, 1, 1, 0, 0, 0),
            (9999, 12, 31, 23, 59, 59),
        ] {
            let whole = DateTime::new(y, mo, d, h, mi, s).unwrap();
            round(Value::DateTime(whole));
            for ns in [1, 250_000_000, 999_999_999] {
                round(Value::DateTime(whole.with_nanosecond(ns).unwrap()));
            }
        }
    }

    #[test]
    fn frame_lengths() {
        let mut many = Vec::new();
        let mut m = Map::new();
        m.insert(
            "k".into(),
            Value::Array(vec![Value::Bytes(vec![1; 300]), Value::Nil]),
        );
        let values = [
            Value::Int(-5),
            Value::String("x".repeat(70_000)),
            Value::Struct(m),
            Value::Array((0..20).map(Value::Int).collect()),
            Value::DateTime(DateTime::new(2500, 1, 1, 0, 0, 0).unwrap()),
            Value::Double(1.5),
        ];
        for v in &values {
            many.extend(encode(v));
        }
        let mut at = 0;
        for v in &values {
            let len = encode(v).len();
            assert_eq!(frame_len(&many[at..], 64), Ok(FrameLen::Complete(len)));
            for cut in 0..len {
                match frame_len(&many[at..at + cut], 64) {
                    Ok(FrameLen::NeedAtLeast(n)) => {
                        assert!(n > cut && n <= len, "{v:?} cut {cut}: {n}")
                    }
                    other => panic!("{v:?} cut {cut}: {other:?}"),
                }
            }
            at += len;
        }
        // A big declared body is known to be needed in full.
        assert_eq!(
            frame_len(&[0xc6, 0, 0x10, 0, 0, 1, 2], 64),
            Ok(FrameLen::NeedAtLeast(5 + 0x100000))
        );
        // So is a container announcing more elements than could ever fit.
        assert_eq!(
            frame_len(&[0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0], 64),
            Ok(FrameLen::NeedAtLeast(5 + 0xffff_ffff))
        );
        assert_eq!(
            frame_len(&[0x92, 0xdf, 0xff, 0xff, 0xff, 0xff], 64),
            Ok(FrameLen::NeedAtLeast(6 + 2 * 0xffff_ffff + 1))
        );
        let deep: Vec<u8> = std::iter::repeat_n(0x91, 100).chain([0xc0]).collect();
        assert_eq!(frame_len(&deep, 64), Err(DecodeError::TooDeep(64)));
        let empties: Vec<u8> = std::iter::repeat_n(0x91, 64).chain([0x90]).collect();
        assert_eq!(frame_len(&empties, 64), Err(DecodeError::TooDeep(64)));
        assert_eq!(decode(&empties, 64), Err(DecodeError::TooDeep(64)));
        assert!(frame_len(&[0xc1], 64).is_err());
    }

    #[test]
    fn nesting_too_deep_is_found_before_the_input_runs_out() {
        // Found by fuzzing: frame_len gave up as soon as the outer array's
        // elements could not all fit, where the decoder read on into the
        // available bytes and found an array nested too deep.
        let input = [0x92, 0x92, 0x91, 0x91];
        assert_eq!(frame_len(&input, 2), Err(DecodeError::TooDeep(2)));
        assert_eq!(decode_prefix(&input, 2), Err(DecodeError::TooDeep(2)));
        // The bound still counts every element announced.
        assert_eq!(
            frame_len(&[0x92, 0x92, 0xc0], 64),
            Ok(FrameLen::NeedAtLeast(5))
        );
        assert_eq!(
            frame_len(&[0x92, 0x91, 0x91, 0xc0], 64),
            Ok(FrameLen::NeedAtLeast(5))
        );
    }

    #[test]
    fn a_container_too_deep_is_refused_at_its_header() {
        // Found by fuzzing: the decoder called this truncated (the inner array
        // announces more than is left) where frame_len said too deep.
        for input in [
            &[0x91, 0x9f][..],
            &[0x91, 0xdf, 0, 0, 0, 9],
            &[0x81, 0xa0, 0x81],
        ] {
            assert_eq!(
                frame_len(input, 1),
                Err(DecodeError::TooDeep(1)),
                "{input:02x?}"
            );
            assert_eq!(
                decode_prefix(input, 1),
                Err(DecodeError::TooDeep(1)),
                "{input:02x?}"
            );
        }
    }

    #[test]
    fn known_bytes() {
        assert_eq!(encode(&Value::from("RPC")), b"\xa3RPC");
        assert_eq!(encode(&Value::Int(-1)), [0xff]);
        let t = DateTime::new(1970, 1, 1, 0, 0, 1).unwrap();
        assert_eq!(encode(&Value::DateTime(t)), [0xd6, 0xff, 0, 0, 0, 1]);
        // Keys that are integers or UTF-8 bin read as strings.
        let v = decode(&[0x82, 0x01, 0xc0, 0xc4, 0x01, b'a', 0xc3], 64).unwrap();
        let keys: Vec<&String> = v.as_struct().unwrap().keys().collect();
        assert_eq!(keys, ["1", "a"]);
    }

    #[test]
    fn refusals() {
        assert!(matches!(decode(&[0xc1], 64), Err(DecodeError::Invalid(_))));
        assert!(matches!(
            decode(&[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 64),
            Err(DecodeError::Invalid(_))
        ));
        assert!(matches!(
            decode(&[0xa1, 0xff], 64),
            Err(DecodeError::Invalid(_))
        ));
        assert!(matches!(
            decode(&[0x81, 0xc0, 0xc0], 64),
            Err(DecodeError::Invalid(_))
        ));
        assert!(matches!(
            decode(&[0xd4, 0x05, 0x00], 64),
            Err(DecodeError::Invalid(_))
        ));
        assert!(matches!(
            decode(&[0xc0, 0xc0], 64),
            Err(DecodeError::Invalid(_))
        ));
        // A huge declared length with no bytes behind it allocates nothing.
        assert_eq!(
            decode(&[0xdd, 0xff, 0xff, 0xff, 0xff], 64),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            decode(&[0xdf, 0xff, 0xff, 0xff, 0xff], 64),
            Err(DecodeError::Truncated)
        );
        let deep: Vec<u8> = std::iter::repeat_n(0x91, 100).chain([0xc0]).collect();
        assert_eq!(decode(&deep, 64), Err(DecodeError::TooDeep(64)));
        assert!(decode(&deep, 128).is_ok());
    }
}
