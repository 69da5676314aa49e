//! Brazilian taxpayer documents (CPF, CNPJ), validated by their check digits once at the edge.

use std::fmt;

/// A CPF (11 digits, a person) or CNPJ (14 digits, a company), kept as bare digits: the form the
/// portal's batch file wants ("sem máscara/formatação").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Document {
    kind: DocumentKind,
    digits: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentKind {
    Cpf,
    Cnpj,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DocumentError {
    #[error("the document is empty")]
    Empty,
    #[error("«{0}» has a character that is not a digit or a mask (. - / space)")]
    NotDigits(String),
    #[error("«{0}» has {1} digits; a CPF has 11 and a CNPJ 14")]
    WrongLength(String, usize),
    #[error("«{0}» repeats one digit, which the check digits do not catch but no real document is")]
    RepeatedDigit(String),
    #[error("«{0}» has wrong check digits for a {1}")]
    CheckDigits(String, DocumentKind),
}

impl Document {
    /// Accepts bare digits or the usual masks (`529.982.247-25`, `11.222.333/0001-81`).
    ///
    /// # Errors
    /// When the text is not 11 or 14 digits once the mask is removed, or its check digits are wrong.
    pub fn parse(raw: &str) -> Result<Self, DocumentError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(DocumentError::Empty);
        }
        let unmasked: String = trimmed.chars().filter(|c| !matches!(c, '.' | '-' | '/' | ' ')).collect();
        if !unmasked.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(DocumentError::NotDigits(trimmed.to_owned()));
        }
        let kind = match unmasked.len() {
            11 => DocumentKind::Cpf,
            14 => DocumentKind::Cnpj,
            other => return Err(DocumentError::WrongLength(trimmed.to_owned(), other)),
        };
        let digits: Vec<u32> = unmasked.bytes().map(|byte| u32::from(byte - b'0')).collect();
        if digits.iter().all(|&digit| digit == digits[0]) {
            return Err(DocumentError::RepeatedDigit(trimmed.to_owned()));
        }
        let base = digits.len() - 2;
        let first = check_digit(&digits[..base], kind);
        let second = check_digit(&digits[..=base], kind);
        if (first, second) != (digits[base], digits[base + 1]) {
            return Err(DocumentError::CheckDigits(trimmed.to_owned(), kind));
        }
        Ok(Self { kind, digits: unmasked })
    }

    /// Rebuilds a document this module validated earlier (the store's column).
    pub fn from_stored(digits: String) -> Self {
        let kind = if digits.len() == 14 { DocumentKind::Cnpj } else { DocumentKind::Cpf };
        Self { kind, digits }
    }

    /// The bare digits.
    pub fn as_str(&self) -> &str {
        &self.digits
    }

    pub fn kind(&self) -> DocumentKind {
        self.kind
    }
}

/// The next check digit of `digits` (modulo 11, as the Receita Federal defines both documents).
/// CPF weights count down from `len + 1` to 2; CNPJ weights run 2..=9 from the right, cycling.
fn check_digit(digits: &[u32], kind: DocumentKind) -> u32 {
    let sum: u32 = digits
        .iter()
        .rev()
        .zip(2u32..)
        .map(|(&digit, position)| {
            let weight = match kind {
                DocumentKind::Cpf => position,
                DocumentKind::Cnpj => (position - 2) % 8 + 2,
            };
            digit * weight
        })
        .sum();
    match sum % 11 {
        0 | 1 => 0,
        remainder => 11 - remainder,
    }
}

impl fmt::Display for Document {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.pad(&self.digits)
    }
}

impl fmt::Display for DocumentKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Self::Cpf => "CPF",
            Self::Cnpj => "CNPJ",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_cpf_is_accepted_bare_or_masked_and_kept_as_digits() {
        for raw in ["52998224725", "529.982.247-25", " 529 982 247 25 "] {
            let document = Document::parse(raw).unwrap();
            assert_eq!(document.as_str(), "52998224725", "{raw}");
            assert_eq!(document.kind(), DocumentKind::Cpf);
        }
        assert!(Document::parse("111.444.777-35").is_ok());
    }

    #[test]
    fn a_valid_cnpj_is_accepted_bare_or_masked_and_kept_as_digits() {
        for raw in ["11222333000181", "11.222.333/0001-81", "112.223.330/0018-1"] {
            let document = Document::parse(raw).unwrap();
            assert_eq!(document.as_str(), "11222333000181", "{raw}");
            assert_eq!(document.kind(), DocumentKind::Cnpj);
        }
        assert!(Document::parse("11.444.777/0001-61").is_ok());
    }

    #[test]
    fn the_cnpj_of_the_portal_contract_example_is_valid() {
        assert_eq!(Document::parse("56921485000100").unwrap().kind(), DocumentKind::Cnpj);
    }

    #[test]
    fn one_changed_digit_fails_the_check_digits() {
        for raw in ["52998224726", "52998224735", "62998224725", "11222333000182", "11222333000191", "21222333000181"] {
            assert!(matches!(Document::parse(raw), Err(DocumentError::CheckDigits(..))), "{raw}");
        }
    }

    #[test]
    fn one_digit_repeated_is_refused_although_its_check_digits_add_up() {
        for raw in ["00000000000", "111.111.111-11", "99999999999", "11111111111111", "00.000.000/0000-00"] {
            assert!(matches!(Document::parse(raw), Err(DocumentError::RepeatedDigit(_))), "{raw}");
        }
    }

    #[test]
    fn wrong_lengths_letters_and_empty_text_are_not_documents() {
        assert!(matches!(Document::parse("5299822472"), Err(DocumentError::WrongLength(_, 10))));
        assert!(matches!(Document::parse("112223330001811"), Err(DocumentError::WrongLength(_, 15))));
        assert!(matches!(Document::parse("529982247ab"), Err(DocumentError::NotDigits(_))));
        assert!(matches!(Document::parse("52998224725x"), Err(DocumentError::NotDigits(_))));
        assert!(matches!(Document::parse("  "), Err(DocumentError::Empty)));
    }

    #[test]
    fn the_error_names_the_text_and_the_kind() {
        let message = Document::parse("11.222.333/0001-82").unwrap_err().to_string();
        assert!(message.contains("11.222.333/0001-82") && message.contains("CNPJ"), "{message}");
    }
}
