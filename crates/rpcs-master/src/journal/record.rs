//! How records sit in a journal file: a 4-byte length, a 4-byte CRC-32 of the
//! length and the payload together (both little-endian), then the payload.
//!
//! Reading stops at the first record that is cut short, empty, or whose
//! checksum does not match: that is where a crash tore the last write, and
//! everything before it is whole. The checksum covers the length so that a
//! run of zeros (what a file system can leave past the last sync) is never a
//! record, and no record is empty for the same reason.

/// The largest payload a record may carry; [`write`] refuses more, so that
/// nothing is acknowledged that reading would take for a torn length.
pub const MAX_RECORD: usize = 1 << 30;

/// The bytes in front of each payload.
pub const HEADER: usize = 8;

/// A payload no record can carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Records are never empty.
    #[error("an empty record")]
    Empty,
    /// Over [`MAX_RECORD`].
    #[error("a record of {0} bytes exceeds the limit of {MAX_RECORD}")]
    TooLarge(usize),
}

/// Appends one record carrying `payload` to `out`.
pub fn write(out: &mut Vec<u8>, payload: &[u8]) -> Result<(), RecordError> {
    if payload.is_empty() {
        return Err(RecordError::Empty);
    }
    if payload.len() > MAX_RECORD {
        return Err(RecordError::TooLarge(payload.len()));
    }
    let len = (payload.len() as u32).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&checksum(&len, payload).to_le_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

fn checksum(len: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(len);
    hasher.update(payload);
    hasher.finalize()
}

/// The whole records at the start of `bytes`, and how many bytes they take
/// (where a torn tail, if any, begins).
pub fn read_all(bytes: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut records = Vec::new();
    let mut at = 0;
    while let Some((payload, next)) = read_one(bytes, at) {
        records.push(payload);
        at = next;
    }
    (records, at)
}

/// The record at `at`, and where the next one starts.
fn read_one(bytes: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let header = bytes.get(at..at.checked_add(HEADER)?)?;
    let len = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().ok()?);
    if len == 0 || len > MAX_RECORD {
        return None;
    }
    let start = at + HEADER;
    let payload = bytes.get(start..start.checked_add(len)?)?;
    (checksum(&header[..4], payload) == crc).then_some((payload, start + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            write(&mut out, p).unwrap();
        }
        out
    }

    #[test]
    fn records_read_back_in_order() {
        let bytes = journal(&[b"one", b"2", b"three"]);
        let (records, len) = read_all(&bytes);
        assert_eq!(records, vec![&b"one"[..], b"2", b"three"]);
        assert_eq!(len, bytes.len());
    }

    #[test]
    fn every_torn_tail_keeps_the_whole_records_before_it() {
        let bytes = journal(&[b"first", b"second record"]);
        let first_len = HEADER + 5;
        for cut in 0..bytes.len() {
            let (records, len) = read_all(&bytes[..cut]);
            let whole = if cut >= first_len { 1 } else { 0 };
            assert_eq!(records.len(), whole, "cut at {cut}");
            assert_eq!(len, whole * first_len);
        }
    }

    #[test]
    fn a_flipped_bit_ends_the_journal_there() {
        let mut bytes = journal(&[b"first", b"second", b"third"]);
        let second = HEADER + 5;
        bytes[second + HEADER + 2] ^= 0x10;
        let (records, len) = read_all(&bytes);
        assert_eq!(records, vec![&b"first"[..]]);
        assert_eq!(len, second);
    }

    #[test]
    fn zeros_past_the_last_record_are_not_records() {
        let mut bytes = journal(&[b"whole"]);
        let good = bytes.len();
        bytes.extend_from_slice(&[0; 4096]);
        assert_eq!(read_all(&bytes), (vec![&b"whole"[..]], good));
    }

    #[test]
    fn empty_and_oversized_payloads_are_refused() {
        let mut out = Vec::new();
        assert_eq!(write(&mut out, b""), Err(RecordError::Empty));
        assert!(out.is_empty());
    }
}
