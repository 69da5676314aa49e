//! Phone numbers, normalized to E.164 once at the edge.
//!
//! The normalizer is `rlibphonenumber` (a port of Google's libphonenumber with current metadata).
//! The older `phonenumber` crate was rejected: it turns Russian 8-800 numbers into different,
//! invalid ones (its issue #76), and a gateway that rewrites a caller's number loses the lead.
//! The tests at the bottom pin the cases that matter to our users.

use std::fmt;

use rlibphonenumber::{PHONE_NUMBER_UTIL, PhoneNumberFormat, enums::Region};

/// A phone number in E.164 form (`+79991234567`), plus the text it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone {
    e164: String,
    raw: String,
}

/// How a phone is kept inside stored records: both texts, read back as stored like a column is.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredPhone {
    e164: String,
    raw: String,
}

impl serde::Serialize for Phone {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        StoredPhone { e164: self.e164.clone(), raw: self.raw.clone() }.serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Phone {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let stored = StoredPhone::deserialize(deserializer)?;
        Ok(Self::from_stored(stored.e164, stored.raw))
    }
}

/// The region used for numbers written without a country code (`8 999 …`, `(11) 98765-4321`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhoneRegion(Region);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PhoneError {
    #[error("«{0}» does not contain a phone number")]
    NotANumber(String),
    #[error("«{0}» has the wrong number of digits for a phone number")]
    ImpossibleNumber(String),
}

impl Phone {
    /// Parses what a person typed. Numbers are accepted when their length is possible for
    /// their country, not only when they fall in ranges the metadata knows to be assigned:
    /// refusing a real lead because the metadata is a year old is worse than storing an
    /// unusual number.
    ///
    /// # Errors
    /// When the text holds no digits that could form a number, or too few or too many of them.
    pub fn parse(raw: &str, region: PhoneRegion) -> Result<Self, PhoneError> {
        let trimmed = raw.trim();
        let number =
            PHONE_NUMBER_UTIL.parse(trimmed, Some(region.0)).map_err(|_| PhoneError::NotANumber(trimmed.to_owned()))?;
        if !PHONE_NUMBER_UTIL.is_possible_number(&number) {
            return Err(PhoneError::ImpossibleNumber(trimmed.to_owned()));
        }
        Ok(Self { e164: number.format_as(PhoneNumberFormat::E164).to_string(), raw: trimmed.to_owned() })
    }

    /// Rebuilds a phone from values this module produced earlier (the store's columns).
    pub fn from_stored(e164: String, raw: String) -> Self {
        Self { e164, raw }
    }

    pub fn e164(&self) -> &str {
        &self.e164
    }

    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The last ten digits: what amoCRM itself matches phones on, and the only search
    /// query that finds both `+7 999…` and `8 999…` spellings of one number.
    pub fn last_ten_digits(&self) -> &str {
        let digits = &self.e164[1..];
        &digits[digits.len().saturating_sub(10)..]
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.e164)
    }
}

impl PhoneRegion {
    pub const RUSSIA: Self = Self(Region::RU);
}

impl Default for PhoneRegion {
    fn default() -> Self {
        Self::RUSSIA
    }
}

impl std::str::FromStr for PhoneRegion {
    type Err = String;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        let upper = code.trim().to_ascii_uppercase();
        upper
            .parse::<Region>()
            .map(Self)
            .map_err(|_| format!("«{code}» is not a two-letter region code such as RU or BR"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ru(raw: &str) -> Result<String, PhoneError> {
        Phone::parse(raw, PhoneRegion::RUSSIA).map(|phone| phone.e164)
    }

    #[test]
    fn russian_spellings_of_one_mobile_number_normalize_to_the_same_e164() {
        for raw in ["8 (999) 123-45-67", "+7 999 123 45 67", "9991234567", "79991234567", "+7(999)1234567"] {
            assert_eq!(ru(raw).as_deref(), Ok("+79991234567"), "{raw}");
        }
    }

    #[test]
    fn russian_toll_free_8_800_numbers_keep_their_digits() {
        for raw in ["8-800-555-35-35", "88005553535", "+7 800 555 35 35"] {
            assert_eq!(ru(raw).as_deref(), Ok("+78005553535"), "{raw}");
        }
    }

    #[test]
    fn brazilian_area_code_and_number_normalize_with_the_brazil_region() {
        let brazil: PhoneRegion = "br".parse().unwrap();
        let phone = Phone::parse("(11) 98765-4321", brazil).unwrap();
        assert_eq!(phone.e164(), "+5511987654321");
        assert_eq!(Phone::parse("11987654321", brazil).unwrap().e164(), "+5511987654321");
        assert_eq!(Phone::parse("+55 21 2345-6789", PhoneRegion::RUSSIA).unwrap().e164(), "+552123456789");
    }

    #[test]
    fn a_number_with_a_country_code_ignores_the_default_region() {
        assert_eq!(ru("+1 202 555 0143").as_deref(), Ok("+12025550143"));
    }

    #[test]
    fn text_and_wrong_lengths_are_not_phones() {
        assert!(matches!(ru("abc"), Err(PhoneError::NotANumber(_))));
        assert!(matches!(ru("123"), Err(PhoneError::ImpossibleNumber(_))));
        assert!(matches!(ru("+7 (999) 123-45-6"), Err(PhoneError::ImpossibleNumber(_))));
        assert!(matches!(ru("999123456789012"), Err(PhoneError::ImpossibleNumber(_))));
    }

    #[test]
    fn the_raw_text_is_kept_and_the_search_key_is_the_last_ten_digits() {
        let phone = Phone::parse(" 8 (999) 123-45-67 ", PhoneRegion::RUSSIA).unwrap();
        assert_eq!(phone.raw(), "8 (999) 123-45-67");
        assert_eq!(phone.last_ten_digits(), "9991234567");
    }

    #[test]
    fn an_unknown_region_code_is_refused_with_its_name() {
        let error = "XX1".parse::<PhoneRegion>().unwrap_err();
        assert!(error.contains("XX1"));
    }
}
