//! pbx-authd patch: CRC-32 (IEEE 802.3, the polynomial and bit order of crc32fast, so
//! every checksum on flash stays the same) with one 1 KiB table instead of crc32fast's
//! 16 KiB slicing tables and SIMD paths: ~19 KB less firmware; sled checksums a few KB
//! per write on these boxes, where the byte-wise loop is not the cost. Checked by the
//! daemon's e2e `upgrade::` tests: the stores that released binaries wrote (with
//! crc32fast) open with every record intact, their checksums verified by this code.

const TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// The running CRC of what was given to [`Hasher::update`].
#[derive(Clone, Default)]
pub(crate) struct Hasher(u32);

impl Hasher {
    pub(crate) fn new() -> Hasher {
        Hasher(0)
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        let mut c = !self.0;
        for b in bytes {
            c = TABLE[((c ^ u32::from(*b)) & 0xff) as usize] ^ (c >> 8);
        }
        self.0 = !c;
    }

    pub(crate) fn finalize(self) -> u32 {
        self.0
    }
}
