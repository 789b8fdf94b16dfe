//! The few BER shapes LDAP needs (X.690, definite lengths only): writing a TLV with a
//! tag and its content, and reading one back out of a buffer without trusting a length.

/// Appends the TLV `tag` + `content` to `out`.
pub fn put(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = (n as u32).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (4 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
}

/// A TLV of its own.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    put(&mut out, tag, content);
    out
}

/// An INTEGER (or ENUMERATED with tag 0x0a) in its shortest two's complement form.
pub fn int(tag: u8, v: i64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 7
        && ((bytes[start] == 0 && bytes[start + 1] & 0x80 == 0)
            || (bytes[start] == 0xff && bytes[start + 1] & 0x80 != 0))
    {
        start += 1;
    }
    tlv(tag, &bytes[start..])
}

/// Universal tags used here.
pub const BOOLEAN: u8 = 0x01;
pub const INTEGER: u8 = 0x02;
pub const OCTET_STRING: u8 = 0x04;
pub const ENUMERATED: u8 = 0x0a;
pub const SEQUENCE: u8 = 0x30;
pub const SET: u8 = 0x31;

/// A reader over BER bytes: each call takes one TLV off the front.
#[derive(Clone, Copy)]
pub struct Cursor<'a>(pub &'a [u8]);

/// Malformed BER (a length past the end, a tag not where expected).
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

impl<'a> Cursor<'a> {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The next TLV: its tag and content.
    pub fn take(&mut self) -> Result<(u8, &'a [u8]), Malformed> {
        let (&tag, rest) = self.0.split_first().ok_or(Malformed)?;
        let (&first, rest) = rest.split_first().ok_or(Malformed)?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return Err(Malformed);
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |a, b| (a << 8) | usize::from(*b));
            (len, &rest[n..])
        };
        if rest.len() < len {
            return Err(Malformed);
        }
        let (content, rest) = rest.split_at(len);
        self.0 = rest;
        Ok((tag, content))
    }

    /// The next TLV, which must have `tag`.
    pub fn expect(&mut self, tag: u8) -> Result<&'a [u8], Malformed> {
        match self.take()? {
            (t, c) if t == tag => Ok(c),
            _ => Err(Malformed),
        }
    }

    /// The next TLV as an integer of `tag` (at most 8 bytes).
    pub fn int(&mut self, tag: u8) -> Result<i64, Malformed> {
        let c = self.expect(tag)?;
        if c.is_empty() || c.len() > 8 {
            return Err(Malformed);
        }
        let neg = c[0] & 0x80 != 0;
        Ok(c.iter()
            .fold(if neg { -1i64 } else { 0 }, |a, b| (a << 8) | i64::from(*b)))
    }
}

/// How many bytes the whole TLV at the start of `buf` takes, once its header is there.
pub fn full_len(buf: &[u8]) -> Option<usize> {
    let first = *buf.get(1)?;
    if first < 0x80 {
        return Some(2 + usize::from(first));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        return Some(usize::MAX);
    }
    let bytes = buf.get(2..2 + n)?;
    let len = bytes.iter().fold(0usize, |a, b| (a << 8) | usize::from(*b));
    Some(2 + n + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_integers_round_trip() {
        for n in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let t = tlv(OCTET_STRING, &vec![7; n]);
            assert_eq!(full_len(&t), Some(t.len()), "{n}");
            let mut c = Cursor(&t);
            assert_eq!(c.expect(OCTET_STRING).map(<[u8]>::len), Ok(n));
            assert!(c.is_empty());
        }
        assert_eq!(int(INTEGER, 3), [2, 1, 3]);
        assert_eq!(int(INTEGER, 128), [2, 2, 0, 128]);
        assert_eq!(int(INTEGER, -1), [2, 1, 0xff]);
        for v in [
            0,
            1,
            127,
            128,
            255,
            256,
            65_535,
            i64::from(i32::MAX),
            -1,
            -129,
        ] {
            assert_eq!(Cursor(&int(INTEGER, v)).int(INTEGER), Ok(v), "{v}");
        }
        // A length past the end is refused, not trusted.
        assert_eq!(Cursor(&[4, 5, 1, 2]).take(), Err(Malformed));
        assert_eq!(
            Cursor(&[4, 0x84, 0xff, 0xff, 0xff, 0xff]).take(),
            Err(Malformed)
        );
    }
}
