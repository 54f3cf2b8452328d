//! gzip for HTTP bodies, with a bound on the decompressed size.

use flate2::read::{GzDecoder, ZlibDecoder};
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::{Read, Write};

/// Why a compressed body was refused.
#[derive(Debug, thiserror::Error)]
pub enum InflateError {
    /// The body inflates beyond the limit.
    #[error("decompressed body exceeds {0} bytes")]
    TooLarge(usize),
    /// The body is not valid compressed data.
    #[error("corrupt compressed body: {0}")]
    Corrupt(std::io::Error),
}

/// Content encodings this crate reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// No compression.
    Identity,
    /// gzip (also `x-gzip`).
    Gzip,
    /// zlib-wrapped deflate.
    Deflate,
}

impl Encoding {
    /// Parses a `Content-Encoding` header value; `None` for an unsupported coding.
    pub fn parse(header: Option<&str>) -> Option<Encoding> {
        match header.map(|h| h.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("identity") => Some(Encoding::Identity),
            Some("gzip") | Some("x-gzip") => Some(Encoding::Gzip),
            Some("deflate") => Some(Encoding::Deflate),
            Some(_) => None,
        }
    }
}

/// Decompresses `body`, refusing output larger than `limit` bytes.
pub fn inflate(body: &[u8], encoding: Encoding, limit: usize) -> Result<Vec<u8>, InflateError> {
    match encoding {
        Encoding::Identity if body.len() > limit => Err(InflateError::TooLarge(limit)),
        Encoding::Identity => Ok(body.to_vec()),
        Encoding::Gzip => read_bounded(GzDecoder::new(body), limit),
        Encoding::Deflate => read_bounded(ZlibDecoder::new(body), limit),
    }
}

fn read_bounded(reader: impl Read, limit: usize) -> Result<Vec<u8>, InflateError> {
    let mut out = Vec::new();
    // Reading one byte past the limit tells "exactly at the limit" from "over it".
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(cap)
        .read_to_end(&mut out)
        .map_err(InflateError::Corrupt)?;
    if out.len() > limit {
        return Err(InflateError::TooLarge(limit));
    }
    Ok(out)
}

/// Compresses `body` with gzip.
pub fn gzip(body: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::with_capacity(body.len() / 3 + 32), Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(body);
    enc.finish().unwrap_or_default()
}

/// Whether an `Accept-Encoding` header value admits gzip.
pub fn accepts_gzip(header: Option<&str>) -> bool {
    let Some(header) = header else { return false };
    header.split(',').any(|part| {
        let mut fields = part.split(';');
        let coding = fields.next().unwrap_or("").trim();
        let refused = fields.any(|f| {
            let f = f.trim().replace(' ', "");
            f == "q=0" || f == "q=0.0" || f == "q=0.00" || f == "q=0.000"
        });
        (coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip")) && !refused
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bounds() {
        let body = b"hello hello hello hello".repeat(100);
        let packed = gzip(&body);
        assert!(packed.len() < body.len());
        assert_eq!(inflate(&packed, Encoding::Gzip, body.len()).unwrap(), body);
        assert!(matches!(
            inflate(&packed, Encoding::Gzip, body.len() - 1),
            Err(InflateError::TooLarge(_))
        ));
        assert!(matches!(
            inflate(b"not gzip", Encoding::Gzip, 100),
            Err(InflateError::Corrupt(_))
        ));
        let bomb = gzip(&vec![0u8; 10 << 20]);
        assert!(matches!(
            inflate(&bomb, Encoding::Gzip, 1 << 20),
            Err(InflateError::TooLarge(_))
        ));
    }

    #[test]
    fn accept_encoding() {
        assert!(accepts_gzip(Some("gzip")));
        assert!(accepts_gzip(Some("deflate, gzip;q=0.5")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(Some("identity")));
        assert!(!accepts_gzip(None));
        assert_eq!(Encoding::parse(Some("GZIP")), Some(Encoding::Gzip));
        assert_eq!(Encoding::parse(Some("br")), None);
    }
}
