//! How records sit in a journal file: a 4-byte length, a 4-byte CRC-32 of the
//! payload (both little-endian), then the payload.
//!
//! Reading stops at the first record that is cut short or whose checksum does
//! not match: that is where a crash tore the last write, and everything before
//! it is whole. A record claiming more than [`MAX_RECORD`] is treated the same
//! way, so a torn length can never make recovery allocate gigabytes.

/// The largest payload a record may carry.
pub const MAX_RECORD: usize = 64 << 20;

/// The bytes in front of each payload.
pub const HEADER: usize = 8;

/// Appends one record carrying `payload` to `out`.
pub fn write(out: &mut Vec<u8>, payload: &[u8]) {
    debug_assert!(
        payload.len() <= MAX_RECORD,
        "record of {} bytes",
        payload.len()
    );
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
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
    if len > MAX_RECORD {
        return None;
    }
    let start = at + HEADER;
    let payload = bytes.get(start..start.checked_add(len)?)?;
    (crc32fast::hash(payload) == crc).then_some((payload, start + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            write(&mut out, p);
        }
        out
    }

    #[test]
    fn records_read_back_in_order() {
        let bytes = journal(&[b"one", b"", b"three"]);
        let (records, len) = read_all(&bytes);
        assert_eq!(records, vec![&b"one"[..], b"", b"three"]);
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
    fn a_huge_length_is_not_believed() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&[0; 4]);
        assert_eq!(read_all(&bytes), (vec![], 0));
    }
}
