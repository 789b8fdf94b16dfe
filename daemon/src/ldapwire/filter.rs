//! Search filters: the string form of the config (RFC 4515, `(&(objectClass=person)
//! (uid={username}))`) parsed into the BER the server reads (RFC 4511 §4.5.1.7), and
//! the escaping that keeps a typed name a value: `*`, `(`, `)`, `\` and NUL become
//! `\2a`, `\28`, `\29`, `\5c`, `\00`, so `admin)(uid=*` matches nobody.

use super::ber::{put, tlv, OCTET_STRING, SEQUENCE};

/// `v` made safe to stand as an assertion value (RFC 4515 §3).
pub fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// The filter `text` in BER, or what is wrong with it, in words.
pub fn encode(text: &str) -> Result<Vec<u8>, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        at: 0,
    };
    let out = p.filter(0)?;
    if p.at != p.s.len() {
        return Err(format!("text after the filter's last ')' at {}", p.at + 1));
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn eat(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!("'{}' expected at {}", c as char, self.at + 1))
        }
    }

    fn filter(&mut self, depth: usize) -> Result<Vec<u8>, String> {
        if depth > 16 {
            return Err("filters nested more than 16 deep".into());
        }
        self.eat(b'(')?;
        let out = match self.peek() {
            Some(b'&') | Some(b'|') => {
                let tag = if self.peek() == Some(b'&') {
                    0xa0
                } else {
                    0xa1
                };
                self.at += 1;
                let mut all = Vec::new();
                while self.peek() == Some(b'(') {
                    all.extend(self.filter(depth + 1)?);
                }
                tlv(tag, &all)
            }
            Some(b'!') => {
                self.at += 1;
                tlv(0xa2, &self.filter(depth + 1)?)
            }
            _ => self.item()?,
        };
        self.eat(b')')?;
        Ok(out)
    }

    /// An attribute description or OID: letters, digits, `-`, `.`, `;`.
    fn attr(&mut self) -> &[u8] {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b';'))
        {
            self.at += 1;
        }
        &self.s[start..self.at]
    }

    /// A value up to `)`, its `\XX` escapes decoded; split at unescaped `*`.
    fn value(&mut self) -> Result<Vec<Vec<u8>>, String> {
        let mut parts = vec![Vec::new()];
        loop {
            match self.peek() {
                None | Some(b')') => return Ok(parts),
                Some(b'(') => return Err(format!("'(' in a value at {}", self.at + 1)),
                Some(b'*') => {
                    parts.push(Vec::new());
                    self.at += 1;
                }
                Some(b'\\') => {
                    let hex = self
                        .s
                        .get(self.at + 1..self.at + 3)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .ok_or_else(|| format!("a bad \\XX escape at {}", self.at + 1))?;
                    if let Some(last) = parts.last_mut() {
                        last.push(hex);
                    }
                    self.at += 3;
                }
                Some(c) => {
                    if let Some(last) = parts.last_mut() {
                        last.push(c);
                    }
                    self.at += 1;
                }
            }
        }
    }

    fn item(&mut self) -> Result<Vec<u8>, String> {
        let attr = self.attr().to_vec();
        let op_at = self.at;
        let rest = &self.s[self.at..];
        let (tag, skip) = if rest.starts_with(b"~=") {
            (0xa8, 2)
        } else if rest.starts_with(b">=") {
            (0xa5, 2)
        } else if rest.starts_with(b"<=") {
            (0xa6, 2)
        } else if rest.starts_with(b":") {
            return self.extensible(attr);
        } else if rest.starts_with(b"=") {
            (0xa3, 1)
        } else {
            return Err(format!(
                "'=', '~=', '>=', '<=' or ':' expected at {}",
                op_at + 1
            ));
        };
        if attr.is_empty() {
            return Err(format!("an attribute name expected at {}", op_at + 1));
        }
        self.at += skip;
        let parts = self.value()?;
        let mut content = tlv(OCTET_STRING, &attr);
        if parts.len() == 1 {
            put(&mut content, OCTET_STRING, &parts[0]);
            return Ok(tlv(tag, &content));
        }
        if tag != 0xa3 {
            return Err(format!("'*' only goes with '=' (at {})", op_at + 1));
        }
        if parts.iter().all(Vec::is_empty) && parts.len() == 2 {
            // attr=*: present.
            return Ok(tlv(0x87, &attr));
        }
        let last = parts.len() - 1;
        let mut subs = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            if p.is_empty() {
                if i != 0 && i != last {
                    return Err(format!("'**' in a value (at {})", op_at + 1));
                }
                continue;
            }
            let t = match i {
                0 => 0x80,
                i if i == last => 0x82,
                _ => 0x81,
            };
            put(&mut subs, t, p);
        }
        put(&mut content, SEQUENCE, &subs);
        Ok(tlv(0xa4, &content))
    }

    /// `attr[:dn][:rule]:=value` (RFC 4515 §3), e.g. AD's nested groups
    /// `memberOf:1.2.840.113556.1.4.1941:=...`.
    fn extensible(&mut self, attr: Vec<u8>) -> Result<Vec<u8>, String> {
        let mut dn = false;
        let mut rule = Vec::new();
        while self.peek() == Some(b':') {
            self.at += 1;
            if self.peek() == Some(b'=') {
                self.at += 1;
                let parts = self.value()?;
                if parts.len() != 1 {
                    return Err("'*' in an extensible match".into());
                }
                if attr.is_empty() && rule.is_empty() {
                    return Err("an extensible match needs an attribute or a rule".into());
                }
                let mut c = Vec::new();
                if !rule.is_empty() {
                    put(&mut c, 0x81, &rule);
                }
                if !attr.is_empty() {
                    put(&mut c, 0x82, &attr);
                }
                put(&mut c, 0x83, &parts[0]);
                if dn {
                    put(&mut c, 0x84, &[0xff]);
                }
                return Ok(tlv(0xa9, &c));
            }
            let word = self.attr().to_vec();
            if word.eq_ignore_ascii_case(b"dn") && !dn && rule.is_empty() {
                dn = true;
            } else if !word.is_empty() && rule.is_empty() {
                rule = word;
            } else {
                return Err(format!("a bad extensible match at {}", self.at + 1));
            }
        }
        Err(format!("':=' expected at {}", self.at + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// Encodings checked against RFC 4511's ASN.1 by hand (and what ldapsearch sends,
    /// seen with `-d 1`).
    #[test]
    fn filters_encode_as_rfc_4511_says() {
        // Expected bytes from an independent encoder of RFC 4511's ASN.1 (a few lines
        // of Python written for this test), not from this module.
        for (f, want) in [
            ("(uid=tech1)", "a30c040375696404057465636831"),
            ("(uid=*)", "8703756964"),
            (
                "(&(objectClass=person)(uid=a))",
                "a021a315040b6f626a656374436c6173730406706572736f6ea3080403756964040161",
            ),
            ("(cn=a*b*c)", "a40f0402636e3009800161810162820163"),
            ("(!(cn=*x))", "a20ba4090402636e3003820178"),
            (
                "(memberOf:1.2.840.113556.1.4.1941:=cn=g)",
                "a9298117312e322e3834302e3131333535362e312e342e3139343182086d656d6265724f668304636e3d67",
            ),
            ("(cn=a\\2ab)", "a3090402636e0403612a62"),
        ] {
            assert_eq!(hex(&encode(f).expect(f)), want, "{f}");
        }
    }

    #[test]
    fn a_typed_name_stays_a_value() {
        let name = "admin)(uid=*";
        let f = format!("(uid={})", escape(name));
        assert_eq!(f, "(uid=admin\\29\\28uid=\\2a)");
        let b = encode(&f).expect("one equality match");
        assert_eq!(b[0], 0xa3, "an equality match, not an OR or a present");
        assert!(b.ends_with(b"admin)(uid=*"));
        assert_eq!(escape("a\\b\0"), "a\\5cb\\00");
    }

    #[test]
    fn bad_filters_are_named() {
        for (f, why) in [
            ("uid=x", "'(' expected at 1"),
            ("(uid=x", "')' expected at 7"),
            ("(uid=x))", "text after"),
            ("(=x)", "attribute name"),
            ("(uid~=a*b)", "'*' only goes with '='"),
            ("(uid=\\zz)", "bad \\XX escape"),
            ("(uid)", "expected at 5"),
        ] {
            let e = encode(f).expect_err(f);
            assert!(e.contains(why), "{f}: {e}");
        }
    }
}
