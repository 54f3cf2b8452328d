//! Brine, RPyC's serializer for immutable values, as its registry protocol uses
//! it (`("RPYC", "QUERY", ("SLAVE",))` and the answers).
//!
//! Every type brine has is decoded, so that any request a Python peer sends is
//! read rather than guessed at: `None`, `NotImplemented`, `Ellipsis`, booleans,
//! integers (Python's are unbounded; here they are `i128`, and longer ones are
//! refused), floats, complex numbers, bytes, strings, tuples, slices and
//! frozensets. Every length and count is checked against the bytes that remain
//! before anything is allocated, and nesting is bounded, so no input can make
//! the decoder allocate more than its input or recurse without end.

use std::fmt;

/// The deepest nesting of tuples (and slices, frozensets) accepted.
pub const MAX_DEPTH: usize = 32;

/// The longest decimal integer accepted: beyond `i128`'s 39 digits and sign
/// nothing fits anyway.
const MAX_INT_DIGITS: usize = 40;

/// One brine value.
#[derive(Debug, Clone, PartialEq)]
pub enum Brine {
    /// Python's `None`.
    None,
    /// `NotImplemented`.
    NotImplemented,
    /// `Ellipsis` (`...`).
    Ellipsis,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i128),
    /// A float.
    Float(f64),
    /// A complex number: real and imaginary parts.
    Complex(f64, f64),
    /// Bytes (Python 3's `bytes`).
    Bytes(Vec<u8>),
    /// A string (Python 3's `str`).
    Str(String),
    /// A tuple.
    Tuple(Vec<Brine>),
    /// A slice: start, stop, step.
    Slice(Box<[Brine; 3]>),
    /// A frozenset, as its items in the order they were written.
    FrozenSet(Vec<Brine>),
}

impl Brine {
    /// A string value.
    pub fn str(s: impl Into<String>) -> Brine {
        Brine::Str(s.into())
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Brine::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i128> {
        match self {
            Brine::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The items, if this is a tuple.
    pub fn as_tuple(&self) -> Option<&[Brine]> {
        match self {
            Brine::Tuple(items) => Some(items),
            _ => None,
        }
    }
}

/// Why bytes are not one brine value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrineError {
    /// The input ended inside a value.
    Truncated,
    /// A tag brine does not have.
    UnknownTag(u8),
    /// Tuples nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A count or length larger than the input could hold.
    TooLong(u64),
    /// An integer that is not decimal digits, or does not fit `i128`.
    BadInt,
    /// A string whose bytes are not UTF-8.
    BadUtf8,
    /// A slice that is not three values.
    BadSlice,
    /// Bytes left after the value.
    TrailingBytes(usize),
}

impl fmt::Display for BrineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrineError::Truncated => write!(f, "brine value cut short"),
            BrineError::UnknownTag(t) => write!(f, "unknown brine tag 0x{t:02x}"),
            BrineError::TooDeep => write!(f, "brine tuples nested deeper than {MAX_DEPTH}"),
            BrineError::TooLong(n) => write!(f, "brine length {n} exceeds the input"),
            BrineError::BadInt => write!(f, "malformed brine integer"),
            BrineError::BadUtf8 => write!(f, "brine string is not UTF-8"),
            BrineError::BadSlice => write!(f, "brine slice is not start, stop, step"),
            BrineError::TrailingBytes(n) => write!(f, "{n} bytes after the brine value"),
        }
    }
}

impl std::error::Error for BrineError {}

mod tag {
    pub const NONE: u8 = 0x00;
    pub const EMPTY_BYTES: u8 = 0x01;
    pub const EMPTY_TUPLE: u8 = 0x02;
    pub const TRUE: u8 = 0x03;
    pub const FALSE: u8 = 0x04;
    pub const NOT_IMPLEMENTED: u8 = 0x05;
    pub const ELLIPSIS: u8 = 0x06;
    pub const STR: u8 = 0x08;
    pub const BYTES1: u8 = 0x0a;
    pub const BYTES4: u8 = 0x0d;
    pub const BYTES_L1: u8 = 0x0e;
    pub const BYTES_L4: u8 = 0x0f;
    pub const TUPLE1: u8 = 0x10;
    pub const TUPLE4: u8 = 0x13;
    pub const TUPLE_L1: u8 = 0x14;
    pub const TUPLE_L4: u8 = 0x15;
    pub const INT_L1: u8 = 0x16;
    pub const INT_L4: u8 = 0x17;
    pub const FLOAT: u8 = 0x18;
    pub const SLICE: u8 = 0x19;
    pub const FROZENSET: u8 = 0x1a;
    pub const COMPLEX: u8 = 0x1b;
    /// Integers −48..=159 are one byte, `0x50 + n`.
    pub const IMM_ZERO: u8 = 0x50;
}

/// Decodes exactly one brine value from `input`.
pub fn decode(input: &[u8]) -> Result<Brine, BrineError> {
    let mut r = Reader { input, pos: 0 };
    let value = r.value(0)?;
    match input.len() - r.pos {
        0 => Ok(value),
        n => Err(BrineError::TrailingBytes(n)),
    }
}

/// Encodes `value` as RPyC's `brine.dump` would.
pub fn encode(value: &Brine) -> Vec<u8> {
    let mut out = Vec::new();
    write(value, &mut out);
    out
}

/// Appends the encoding of `value` to `out`.
pub fn write(value: &Brine, out: &mut Vec<u8>) {
    match value {
        Brine::None => out.push(tag::NONE),
        Brine::NotImplemented => out.push(tag::NOT_IMPLEMENTED),
        Brine::Ellipsis => out.push(tag::ELLIPSIS),
        Brine::Bool(true) => out.push(tag::TRUE),
        Brine::Bool(false) => out.push(tag::FALSE),
        Brine::Int(n) => write_int(*n, out),
        Brine::Float(x) => {
            out.push(tag::FLOAT);
            out.extend_from_slice(&x.to_be_bytes());
        }
        Brine::Complex(re, im) => {
            out.push(tag::COMPLEX);
            out.extend_from_slice(&re.to_be_bytes());
            out.extend_from_slice(&im.to_be_bytes());
        }
        Brine::Bytes(b) => write_bytes(b, out),
        Brine::Str(s) => {
            out.push(tag::STR);
            write_bytes(s.as_bytes(), out);
        }
        Brine::Tuple(items) => write_tuple(items, out),
        Brine::Slice(parts) => {
            out.push(tag::SLICE);
            write_tuple(parts.as_slice(), out);
        }
        Brine::FrozenSet(items) => {
            out.push(tag::FROZENSET);
            write_tuple(items, out);
        }
    }
}

fn write_int(n: i128, out: &mut Vec<u8>) {
    if (-0x30..0xa0).contains(&n) {
        // In range by the check above, so the sum is a byte.
        out.push((n + i128::from(tag::IMM_ZERO)) as u8);
        return;
    }
    let digits = n.to_string();
    // At most 40 characters: always the one-byte length form.
    out.push(tag::INT_L1);
    out.push(digits.len() as u8);
    out.extend_from_slice(digits.as_bytes());
}

fn write_bytes(b: &[u8], out: &mut Vec<u8>) {
    match b.len() {
        0 => out.push(tag::EMPTY_BYTES),
        n @ 1..=4 => out.push(tag::BYTES1 + (n as u8 - 1)),
        n if n < 256 => {
            out.push(tag::BYTES_L1);
            out.push(n as u8);
        }
        n => {
            out.push(tag::BYTES_L4);
            out.extend_from_slice(&len_u32(n).to_be_bytes());
        }
    }
    out.extend_from_slice(b);
}

fn write_tuple(items: &[Brine], out: &mut Vec<u8>) {
    match items.len() {
        0 => out.push(tag::EMPTY_TUPLE),
        n @ 1..=4 => out.push(tag::TUPLE1 + (n as u8 - 1)),
        n if n < 256 => {
            out.push(tag::TUPLE_L1);
            out.push(n as u8);
        }
        n => {
            out.push(tag::TUPLE_L4);
            out.extend_from_slice(&len_u32(n).to_be_bytes());
        }
    }
    for item in items {
        write(item, out);
    }
}

/// A length as brine's four-byte form carries it; nothing this crate builds
/// comes near 4 GiB, and brine itself cannot say more.
fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], BrineError> {
        if n > self.remaining() {
            return Err(BrineError::Truncated);
        }
        let bytes = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn byte(&mut self) -> Result<u8, BrineError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<usize, BrineError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn f64(&mut self) -> Result<f64, BrineError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_be_bytes(a))
    }

    /// A length or count of `n` items of at least one byte each: refused when
    /// the input cannot hold them, before anything is allocated.
    fn check_len(&self, n: usize) -> Result<usize, BrineError> {
        if n > self.remaining() {
            return Err(BrineError::TooLong(n as u64));
        }
        Ok(n)
    }

    fn value(&mut self, depth: usize) -> Result<Brine, BrineError> {
        let t = self.byte()?;
        Ok(match t {
            tag::NONE => Brine::None,
            tag::NOT_IMPLEMENTED => Brine::NotImplemented,
            tag::ELLIPSIS => Brine::Ellipsis,
            tag::TRUE => Brine::Bool(true),
            tag::FALSE => Brine::Bool(false),
            tag::EMPTY_TUPLE => Brine::Tuple(Vec::new()),
            tag::EMPTY_BYTES | tag::BYTES1..=tag::BYTES4 | tag::BYTES_L1 | tag::BYTES_L4 => {
                Brine::Bytes(self.bytes_after(t)?.to_vec())
            }
            tag::STR => {
                let t = self.byte()?;
                let raw = self.bytes_after(t)?;
                let s = std::str::from_utf8(raw).map_err(|_| BrineError::BadUtf8)?;
                Brine::Str(s.to_owned())
            }
            tag::TUPLE1..=tag::TUPLE4 | tag::TUPLE_L1 | tag::TUPLE_L4 => {
                Brine::Tuple(self.tuple_after(t, depth)?)
            }
            tag::INT_L1 => {
                let n = usize::from(self.byte()?);
                self.int(n)?
            }
            tag::INT_L4 => {
                let n = self.u32()?;
                self.int(n)?
            }
            tag::FLOAT => Brine::Float(self.f64()?),
            tag::COMPLEX => Brine::Complex(self.f64()?, self.f64()?),
            tag::SLICE => {
                let parts = self.nested_tuple(depth)?;
                let parts: [Brine; 3] = parts.try_into().map_err(|_| BrineError::BadSlice)?;
                Brine::Slice(Box::new(parts))
            }
            tag::FROZENSET => Brine::FrozenSet(self.nested_tuple(depth)?),
            t if (tag::IMM_ZERO - 0x30..tag::IMM_ZERO + 0xa0).contains(&t) => {
                Brine::Int(i128::from(t) - i128::from(tag::IMM_ZERO))
            }
            t => return Err(BrineError::UnknownTag(t)),
        })
    }

    /// The bytes of a bytes value whose tag `t` was just read.
    fn bytes_after(&mut self, t: u8) -> Result<&'a [u8], BrineError> {
        let n = match t {
            tag::EMPTY_BYTES => 0,
            tag::BYTES1..=tag::BYTES4 => usize::from(t - tag::BYTES1) + 1,
            tag::BYTES_L1 => usize::from(self.byte()?),
            tag::BYTES_L4 => self.u32()?,
            t => return Err(BrineError::UnknownTag(t)),
        };
        let n = self.check_len(n)?;
        self.take(n)
    }

    /// The items of a tuple whose tag `t` was just read.
    fn tuple_after(&mut self, t: u8, depth: usize) -> Result<Vec<Brine>, BrineError> {
        if depth >= MAX_DEPTH {
            return Err(BrineError::TooDeep);
        }
        let n = match t {
            tag::EMPTY_TUPLE => 0,
            tag::TUPLE1..=tag::TUPLE4 => usize::from(t - tag::TUPLE1) + 1,
            tag::TUPLE_L1 => usize::from(self.byte()?),
            tag::TUPLE_L4 => self.u32()?,
            t => return Err(BrineError::UnknownTag(t)),
        };
        let n = self.check_len(n)?;
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.value(depth + 1)?);
        }
        Ok(items)
    }

    /// The tuple inside a slice or a frozenset.
    fn nested_tuple(&mut self, depth: usize) -> Result<Vec<Brine>, BrineError> {
        let t = self.byte()?;
        self.tuple_after(t, depth + 1)
    }

    fn int(&mut self, n: usize) -> Result<Brine, BrineError> {
        let n = self.check_len(n)?;
        if n == 0 || n > MAX_INT_DIGITS {
            return Err(BrineError::BadInt);
        }
        let text = std::str::from_utf8(self.take(n)?).map_err(|_| BrineError::BadInt)?;
        // Python writes `str(int)`: an optional minus and digits only.
        let digits = text.strip_prefix('-').unwrap_or(text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BrineError::BadInt);
        }
        text.parse().map(Brine::Int).map_err(|_| BrineError::BadInt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn a_query_matches_the_bytes_rpyc_sends() {
        let query = Brine::Tuple(vec![
            Brine::str("RPYC"),
            Brine::str("QUERY"),
            Brine::Tuple(vec![Brine::str("SLAVE")]),
        ]);
        let bytes = hex("12 08 0d 52505943 08 0e 05 5155455259 10 08 0e 05 534c415645");
        assert_eq!(encode(&query), bytes);
        assert_eq!(decode(&bytes), Ok(query));
    }

    #[test]
    fn a_query_answer_matches_the_bytes_rpyc_reads() {
        let answer = Brine::Tuple(vec![Brine::Tuple(vec![
            Brine::str("127.0.0.1"),
            Brine::Int(18812),
        ])]);
        let bytes = hex("10 11 08 0e 09 3132372e302e302e31 16 05 3138383132");
        assert_eq!(encode(&answer), bytes);
        assert_eq!(decode(&bytes), Ok(answer));
    }

    #[test]
    fn ok_empty_tuple_and_none_match_rpyc() {
        assert_eq!(encode(&Brine::str("OK")), hex("08 0b 4f4b"));
        assert_eq!(encode(&Brine::Tuple(vec![])), hex("02"));
        assert_eq!(encode(&Brine::None), hex("00"));
    }

    #[test]
    fn rpycs_own_docstring_example_decodes_and_reencodes() {
        // From brine's docstring, with Python 3's str for the first item.
        let bytes = hex("140e080b6865 57 080c6c6c6f 58 02 16033930 30 00 03 06 \
             18 4032333333333333 1b 402a000000000000 4032333333333333 \
             19 12 51 52 53 1a 12 55 56 57 05");
        let value = decode(&bytes).unwrap();
        let Brine::Tuple(items) = &value else {
            panic!("not a tuple: {value:?}")
        };
        assert_eq!(items.len(), 14);
        assert_eq!(items[0], Brine::str("he"));
        assert_eq!(items[1], Brine::Int(7));
        assert_eq!(items[5], Brine::Int(900));
        assert_eq!(items[9], Brine::Float(18.2));
        assert_eq!(items[10], Brine::Complex(13.0, 18.2));
        assert_eq!(encode(&value), bytes);
    }

    #[test]
    fn integers_round_trip_at_every_boundary() {
        for n in [
            -49,
            -48,
            0,
            159,
            160,
            i128::from(i64::MAX),
            i128::MIN + 1,
            i128::MAX,
        ] {
            assert_eq!(decode(&encode(&Brine::Int(n))), Ok(Brine::Int(n)), "{n}");
        }
        assert_eq!(encode(&Brine::Int(-48)), [0x20]);
        assert_eq!(encode(&Brine::Int(159)), [0xef]);
    }

    #[test]
    fn long_bytes_and_tuples_use_the_four_byte_forms() {
        let long = Brine::Bytes(vec![7; 300]);
        let bytes = encode(&long);
        assert_eq!(&bytes[..5], &[0x0f, 0, 0, 1, 44]);
        assert_eq!(decode(&bytes), Ok(long));
        let many = Brine::Tuple(vec![Brine::None; 256]);
        assert_eq!(decode(&encode(&many)), Ok(many));
    }

    #[test]
    fn a_length_beyond_the_input_is_refused_before_allocating() {
        assert_eq!(
            decode(&hex("0f ffffffff 00")),
            Err(BrineError::TooLong(0xffff_ffff))
        );
        assert_eq!(
            decode(&hex("15 ffffffff 00")),
            Err(BrineError::TooLong(0xffff_ffff))
        );
        assert_eq!(
            decode(&hex("17 ffffffff 31")),
            Err(BrineError::TooLong(0xffff_ffff))
        );
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert_eq!(decode(&[]), Err(BrineError::Truncated));
        assert_eq!(decode(&[0x07]), Err(BrineError::UnknownTag(7)));
        assert_eq!(decode(&hex("0b 41")), Err(BrineError::TooLong(2)));
        assert_eq!(decode(&hex("18 0000")), Err(BrineError::Truncated));
        assert_eq!(decode(&hex("08 0a ff")), Err(BrineError::BadUtf8));
        assert_eq!(decode(&hex("16 02 2b31")), Err(BrineError::BadInt));
        assert_eq!(decode(&hex("16 00")), Err(BrineError::BadInt));
        assert_eq!(decode(&hex("00 00")), Err(BrineError::TrailingBytes(1)));
        assert_eq!(decode(&hex("19 11 00 00")), Err(BrineError::BadSlice));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let bytes = vec![tag::TUPLE1; 10_000];
        assert_eq!(decode(&bytes), Err(BrineError::TooDeep));
        let mut ok = vec![tag::TUPLE1; MAX_DEPTH - 1];
        ok.push(tag::NONE);
        assert!(decode(&ok).is_ok());
    }
}
