//! Fixed-seed input bytes for property tests: the same cases on every run, so a
//! failure reproduces, and no dependency beyond a few lines of xorshift.

/// A xorshift64* generator of bytes.
pub struct Bytes {
    state: u64,
}

impl Bytes {
    /// A generator from `seed` (any value; zero is remapped, as xorshift needs).
    pub fn new(seed: u64) -> Bytes {
        Bytes { state: seed.max(1) }
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `len` pseudo-random bytes.
    pub fn fill(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// A buffer of pseudo-random length below `max_len`, then its bytes.
    pub fn buffer(&mut self, max_len: usize) -> Vec<u8> {
        let len = (self.next_u64() % max_len.max(1) as u64) as usize;
        self.fill(len)
    }
}

/// Runs `check` on `cases` buffers of up to `max_len` bytes drawn from `seed`.
pub fn run(seed: u64, cases: usize, max_len: usize, check: impl Fn(&[u8])) {
    let mut bytes = Bytes::new(seed);
    for _ in 0..cases {
        check(&bytes.buffer(max_len));
    }
}
