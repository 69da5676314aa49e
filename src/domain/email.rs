//! E-mail addresses, validated once at the edge.

use std::fmt;

/// A syntactically valid e-mail address (RFC 5322 addr-spec, as `email_address` checks it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("«{0}» is not a valid e-mail address")]
pub struct EmailError(String);

impl Email {
    /// # Errors
    /// When the text is not an e-mail address.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let trimmed = raw.trim();
        match email_address::EmailAddress::parse_with_options(
            trimmed,
            email_address::Options::default().without_display_text(),
        ) {
            Ok(address) if address.domain().contains('.') && deliverable(&address) => Ok(Self(trimmed.to_owned())),
            _ => Err(EmailError(trimmed.to_owned())),
        }
    }

    /// Rebuilds an address this module validated earlier (the store's column).
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// RFC 5322 also allows quoted local parts (`"a b"@x.ru`), address literals (`a@[127.0.0.1]`) and
/// words that look like MIME encoded-words; CRMs and mail servers refuse or misread them, and no
/// visitor types them, so they are not taken as a lead's address.
fn deliverable(address: &email_address::EmailAddress) -> bool {
    let local = address.local_part();
    !local.starts_with('"') && !address.domain().starts_with('[') && !local.contains("=?")
}

impl fmt::Display for Email {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_addresses_are_accepted_and_trimmed() {
        assert_eq!(Email::parse(" ivan@example.ru ").unwrap().as_str(), "ivan@example.ru");
        assert!(Email::parse("anna.petrova+leads@mail.example.com").is_ok());
    }

    #[test]
    fn text_without_a_proper_domain_is_refused() {
        for raw in [
            "ivan",
            "ivan@",
            "@example.ru",
            "ivan@localhost",
            "Ivan <ivan@example.ru>",
            "",
            "\"a\"@b.ru",
            "\"ivan petrov\"@example.ru",
            "a@[127.0.0.1]",
            "=?utf-8?q?x?=@b.ru",
        ] {
            assert!(Email::parse(raw).is_err(), "{raw}");
        }
    }
}
