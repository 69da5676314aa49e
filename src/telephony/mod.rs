//! The telephony source: provider webhooks parsed into `LegEvent`s, and one call's events assembled into a `Call`.
//!
//! Parsing is per provider (`telphin`, `zadarma`, `mango`) and checks what the provider signs;
//! `assemble` is provider-neutral apart from how each provider says a call is over.

pub mod assemble;
pub mod live;
pub mod mango;
mod outcome;
pub mod telphin;
pub mod zadarma;

#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use subtle::ConstantTimeEq;

use crate::domain::text;

pub use assemble::{Assembly, IgnoredBecause, assemble};

/// Why a webhook could not be turned into events. An event type we know but do not use is not
/// an error: parsers return no events for it, so the handler acknowledges it.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("the field {0} is missing")]
    MissingField(&'static str),
    #[error("the field {field} holds «{value}», which is not {expected}")]
    InvalidField { field: &'static str, value: String, expected: &'static str },
    #[error("the {0} carrying the signature is missing")]
    MissingSignature(&'static str),
    #[error("the signature does not match the event")]
    BadSignature,
    #[error("vpbx_api_key is not this account's API key")]
    ForeignApiKey,
    #[error("«{0}» is not an event type this provider is known to send")]
    UnknownEventType(String),
    #[error("the json field is not an event of the documented shape")]
    InvalidJson(#[source] serde_json::Error),
}

/// A webhook's form or query pairs as received; the first of repeated names wins.
struct Fields<'a>(&'a [(String, String)]);

impl<'a> Fields<'a> {
    /// The value exactly as received, for signatures.
    fn raw(&self, name: &str) -> Option<&'a str> {
        self.0.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// The value as text to keep: trimmed, without characters no store can hold, blank as absent.
    fn text(&self, name: &str) -> Option<String> {
        self.raw(name).and_then(clean)
    }

    fn required(&self, name: &'static str) -> Result<String, ProviderError> {
        self.text(name).ok_or(ProviderError::MissingField(name))
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Trimmed text without forbidden characters, or `None` when nothing is left.
fn clean(value: &str) -> Option<String> {
    let stripped = text::strip_forbidden(value.trim());
    (!stripped.is_empty()).then(|| stripped.into_owned())
}

/// The extension in a PBX address: `00012*101@sip.example` → `101`; plain `101` stays.
fn extension_in(address: &str) -> Option<String> {
    let address = address.trim();
    let address = address.strip_prefix("sip:").unwrap_or(address);
    let user = address.split('@').next().unwrap_or_default();
    clean(user.rsplit('*').next().unwrap_or_default())
}

/// PBX fields carry extensions (at most five digits) where a phone number might be expected;
/// such a party is a colleague, not a client.
fn is_extension(number: &str) -> bool {
    extension_in(number).is_some_and(|user| (1..=5).contains(&user.len()) && user.bytes().all(|b| b.is_ascii_digit()))
}

fn parse_number<T: std::str::FromStr>(
    field: &'static str,
    value: &str,
    expected: &'static str,
) -> Result<T, ProviderError> {
    value.trim().parse().map_err(|_| ProviderError::InvalidField { field, value: value.to_owned(), expected })
}

fn timestamp_seconds(field: &'static str, seconds: i64) -> Result<DateTime<Utc>, ProviderError> {
    DateTime::from_timestamp(seconds, 0).ok_or_else(|| ProviderError::InvalidField {
        field,
        value: seconds.to_string(),
        expected: "a Unix time in seconds",
    })
}

/// Constant-time comparison, so a forger learns nothing from how fast a guess is refused.
fn same_secret(expected: &[u8], received: &[u8]) -> bool {
    bool::from(expected.ct_eq(received))
}

fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    hex
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn the_extension_is_read_out_of_a_telphin_address() {
        assert_eq!(extension_in("00012*101@sip.telphin.com").as_deref(), Some("101"));
        assert_eq!(extension_in("101").as_deref(), Some("101"));
        assert_eq!(extension_in("sip:102@pbx.example").as_deref(), Some("102"));
        assert_eq!(extension_in(" "), None);
    }

    #[test]
    fn short_digit_strings_are_extensions_and_phone_numbers_are_not() {
        assert!(is_extension("101"));
        assert!(is_extension("00012*10123@pbx"));
        assert!(!is_extension("89991234567"));
        assert!(!is_extension("anonymous"));
        assert!(!is_extension(""));
    }

    #[test]
    fn hex_is_lowercase_and_two_digits_per_byte() {
        assert_eq!(lower_hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
    }
}
