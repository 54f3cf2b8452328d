//! A LIFO of byte strings in one contiguous buffer: the items of one stack.
//!
//! Each item is stored as its bytes followed by its length, written so that it
//! reads backwards from the end (a LEB128 varint with its bytes reversed). The
//! top item is therefore always the last record, and popping it is a read of
//! the length and a truncation. A 15-byte item costs 16 bytes here, against the
//! 60 or so a separately allocated string in a list would cost.

/// The items of one stack, top last.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Items {
    buf: Vec<u8>,
    len: usize,
}

impl Items {
    /// No items.
    pub fn new() -> Items {
        Items::default()
    }

    /// How many items there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes the items take, lengths included.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Puts `item` on top.
    pub fn push(&mut self, item: &[u8]) {
        self.buf.extend_from_slice(item);
        write_len_backwards(&mut self.buf, item.len());
        self.len += 1;
    }

    /// Takes the top item.
    pub fn pop(&mut self) -> Option<Vec<u8>> {
        let (start, end) = self.top_record(self.buf.len())?;
        let item = self.buf[start..end].to_vec();
        self.buf.truncate(start);
        self.len -= 1;
        self.release_spare();
        Some(item)
    }

    /// The top `n` items (fewer if there are fewer), top first, without taking
    /// them.
    pub fn peek(&self, n: usize) -> impl Iterator<Item = &[u8]> + '_ {
        let mut end = self.buf.len();
        let mut left = n.min(self.len);
        std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            let (start, item_end) = self.top_record(end)?;
            end = start;
            left -= 1;
            Some(&self.buf[start..item_end])
        })
    }

    /// Takes the top `n` items (at most all of them), top first.
    pub fn pop_many(&mut self, n: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::with_capacity(n.min(self.len));
        while out.len() < n {
            match self.pop() {
                Some(item) => out.push(item),
                None => break,
            }
        }
        out
    }

    /// Removes every item.
    pub fn clear(&mut self) {
        *self = Items::new();
    }

    /// The buffer as it is, bottom item first (for snapshots).
    pub fn raw(&self) -> &[u8] {
        &self.buf
    }

    /// The buffer cut between items into parts of about `max` bytes (more for
    /// an item larger than that), bottom first.
    pub fn chunks(&self, max: usize) -> Vec<&[u8]> {
        let mut cuts = vec![self.buf.len()];
        let mut end = self.buf.len();
        while let Some((start, _)) = self.top_record(end) {
            if cuts.last().is_some_and(|&c| c - start > max) && end != *cuts.last().unwrap_or(&0) {
                cuts.push(end);
            }
            end = start;
        }
        cuts.push(0);
        cuts.dedup();
        cuts.reverse();
        cuts.windows(2).map(|w| &self.buf[w[0]..w[1]]).collect()
    }

    /// Items from buffers made by [`Items::raw`] (or parts of one cut between
    /// items), bottom first; `None` if a buffer is not a sequence of whole items.
    pub fn from_raw<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> Option<Items> {
        let mut items = Items::new();
        for part in parts {
            let mut end = part.len();
            while end > 0 {
                let (len, width) = read_len_backwards(&part[..end])?;
                end = (end - width).checked_sub(len)?;
                items.len += 1;
            }
            items.buf.extend_from_slice(part);
        }
        Some(items)
    }

    /// Every item, bottom first (for snapshots).
    pub fn iter_bottom_up(&self) -> Vec<&[u8]> {
        let mut all: Vec<&[u8]> = self.peek(self.len).collect();
        all.reverse();
        all
    }

    /// The record ending at `end`: where its item starts and ends. `None` at the
    /// bottom (or, which cannot happen, a broken buffer).
    fn top_record(&self, end: usize) -> Option<(usize, usize)> {
        if end == 0 {
            return None;
        }
        let (len, width) = read_len_backwards(&self.buf[..end])?;
        let item_end = end - width;
        let start = item_end.checked_sub(len)?;
        Some((start, item_end))
    }

    /// Gives memory back once the buffer is mostly empty, so a stack that was
    /// once large does not keep its peak size.
    fn release_spare(&mut self) {
        if self.buf.capacity() > 4096 && self.buf.len() < self.buf.capacity() / 4 {
            self.buf.shrink_to(self.buf.len() * 2);
        }
    }
}

/// Appends `len` as a LEB128 varint with its bytes reversed, so that the byte
/// holding the lowest seven bits comes last.
fn write_len_backwards(buf: &mut Vec<u8>, len: usize) {
    let mut groups = [0u8; 10];
    let mut n = 0;
    let mut rest = len;
    loop {
        let low = (rest & 0x7f) as u8;
        rest >>= 7;
        groups[n] = if rest == 0 { low } else { low | 0x80 };
        n += 1;
        if rest == 0 {
            break;
        }
    }
    buf.extend(groups[..n].iter().rev());
}

/// Reads a length written by [`write_len_backwards`] from the end of `buf`:
/// the length and how many bytes it took.
fn read_len_backwards(buf: &[u8]) -> Option<(usize, usize)> {
    let mut len = 0usize;
    for (i, &byte) in buf.iter().rev().enumerate().take(10) {
        len |= usize::from(byte & 0x7f).checked_shl(7 * i as u32)?;
        if byte & 0x80 == 0 {
            return Some((len, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_come_off_in_reverse_order_of_pushing() {
        let mut items = Items::new();
        for item in [&b"a"[..], b"", b"ccc"] {
            items.push(item);
        }
        assert_eq!(items.len(), 3);
        assert_eq!(items.pop().as_deref(), Some(&b"ccc"[..]));
        assert_eq!(items.pop().as_deref(), Some(&b""[..]));
        assert_eq!(items.pop().as_deref(), Some(&b"a"[..]));
        assert_eq!(items.pop(), None);
        assert!(items.is_empty());
    }

    #[test]
    fn lengths_of_every_width_read_back() {
        let mut items = Items::new();
        let sizes = [0, 1, 127, 128, 300, 16_383, 16_384, 70_000];
        for &n in &sizes {
            items.push(&vec![n as u8; n]);
        }
        for &n in sizes.iter().rev() {
            assert_eq!(items.pop(), Some(vec![n as u8; n]), "item of {n} bytes");
        }
    }

    #[test]
    fn peek_shows_the_top_without_taking_it() {
        let mut items = Items::new();
        for i in 0..5u8 {
            items.push(&[i; 3]);
        }
        let top: Vec<&[u8]> = items.peek(2).collect();
        assert_eq!(top, vec![&[4u8; 3][..], &[3u8; 3][..]]);
        assert_eq!(items.peek(99).count(), 5);
        assert_eq!(items.len(), 5);
        assert_eq!(items.pop_many(2), vec![vec![4u8; 3], vec![3u8; 3]]);
        assert_eq!(
            items.iter_bottom_up(),
            vec![&[0u8; 3][..], &[1; 3], &[2; 3]]
        );
    }

    #[test]
    fn raw_buffers_rebuild_the_same_items_and_torn_ones_are_refused() {
        let mut items = Items::new();
        for i in 0..300u16 {
            items.push(&i.to_be_bytes().repeat(i as usize % 7));
        }
        let raw = items.raw().to_vec();
        assert_eq!(Items::from_raw([&raw[..]]), Some(items.clone()));
        let half = items.peek(150).map(|i| i.len() + 1).sum::<usize>();
        let (low, high) = raw.split_at(raw.len() - half);
        assert_eq!(Items::from_raw([low, high]), Some(items));
        assert_eq!(
            Items::from_raw([&b"a\x05"[..]]),
            None,
            "an item longer than the buffer"
        );
        assert_eq!(
            Items::from_raw([&b"\x80"[..]]),
            None,
            "a length that never ends"
        );
    }

    #[test]
    fn chunks_cut_between_items() {
        let mut items = Items::new();
        for i in 0..1000u32 {
            items.push(&i.to_le_bytes());
        }
        let chunks = items.chunks(100);
        assert!(chunks.len() >= 50, "{} chunks", chunks.len());
        assert!(chunks.iter().all(|c| c.len() <= 100));
        assert_eq!(Items::from_raw(chunks), Some(items.clone()));
        assert_eq!(Items::new().chunks(100), Vec::<&[u8]>::new());
        let mut big = Items::new();
        big.push(&[7; 500]);
        assert_eq!(big.chunks(100).len(), 1, "an item is never split");
    }

    #[test]
    fn a_small_item_costs_one_byte_more_than_itself() {
        let mut items = Items::new();
        for _ in 0..1000 {
            items.push(&[b'x'; 15]);
        }
        assert_eq!(items.bytes(), 16 * 1000);
    }

    #[test]
    fn a_drained_stack_gives_its_memory_back() {
        let mut items = Items::new();
        for _ in 0..100_000 {
            items.push(b"0123456789");
        }
        let peak = items.buf.capacity();
        items.pop_many(99_990);
        assert!(
            items.buf.capacity() < peak / 100,
            "kept {} of {peak}",
            items.buf.capacity()
        );
        assert_eq!(items.len(), 10);
    }
}
