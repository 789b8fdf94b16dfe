//! A recovery email address: parsed once, here, with one rule and one message for every
//! place that accepts one (the profile, new accounts).

use crate::error::Error;

/// A bare address (`name@domain`, no display name), at most 254 bytes, no line breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// `None` for an empty (or all-space) field: no address bound.
    pub fn parse_optional(text: Option<&str>) -> Result<Option<Email>, Error> {
        match text.map(str::trim).filter(|t| !t.is_empty()) {
            None => Ok(None),
            Some(t) => Email::parse(t).map(Some),
        }
    }

    pub fn parse(text: &str) -> Result<Email, Error> {
        super::transport::parse_address(text)
            .filter(|m| m.name.is_none())
            .map(|m| Email(m.email.to_string()))
            .ok_or_else(|| {
                Error::InvalidRequest(crate::i18n::Msg::new(
                    crate::i18n::k::MSG_THAT_IS_NOT_A_VALID,
                ))
            })
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_for_every_recovery_address() {
        assert_eq!(
            Email::parse(" admin@pbx.test ")
                .expect("valid")
                .into_string(),
            "admin@pbx.test"
        );
        for bad in [
            "PBX <pbx@pbx.test>",
            "not an address",
            "a@b\r\nBcc: x@y",
            "@pbx.test",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Email::parse_optional(Some("  ")).expect("empty"), None);
        assert_eq!(Email::parse_optional(None).expect("none"), None);
    }
}
