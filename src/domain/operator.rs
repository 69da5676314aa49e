//! The console's people: user names, roles, passwords as typed and as stored (argon2id).

use std::fmt;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use secrecy::{ExposeSecret, SecretString};

/// Passwords shorter than this are refused: the console faces the network.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Hashing a longer text only costs CPU; nobody types it.
const MAX_PASSWORD_CHARS: usize = 256;

/// A console user's login name: 1–64 of `a-z 0-9 . _ -`, so it reads the same in logs and the audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OperatorError {
    #[error("a user name is 1 to 64 characters of a-z, 0-9, «.», «_» and «-»")]
    Username,
    #[error("the role is «admin» or «viewer»")]
    Role,
    #[error("a password has at least {MIN_PASSWORD_CHARS} characters")]
    PasswordTooShort,
    #[error("a password has at most {MAX_PASSWORD_CHARS} characters")]
    PasswordTooLong,
}

impl Username {
    /// # Errors
    /// When the name is empty, too long, or has characters other than the allowed ones.
    pub fn parse(raw: &str) -> Result<Self, OperatorError> {
        let name = raw.trim().to_lowercase();
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-');
        if name.is_empty() || name.len() > 64 || !name.chars().all(allowed) {
            return Err(OperatorError::Username);
        }
        Ok(Self(name))
    }

    /// Rebuilds a name this module validated earlier (the store's column).
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// What a console user may do. A viewer reads lists, timelines and the dead-lead page; it never
/// re-sends, exports, or sees what a lead carried beyond the list's columns (see docs/console.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Viewer => "viewer",
        }
    }

    /// # Errors
    /// When the text names no role.
    pub fn parse(raw: &str) -> Result<Self, OperatorError> {
        match raw.trim() {
            "admin" => Ok(Self::Admin),
            "viewer" => Ok(Self::Viewer),
            _ => Err(OperatorError::Role),
        }
    }

    pub fn is_admin(self) -> bool {
        self == Self::Admin
    }
}

/// A console user as stored, without the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleUser {
    pub id: i64,
    pub username: Username,
    pub role: Role,
    pub disabled: bool,
}

/// A new password as typed, long enough; never printed.
pub struct Password(SecretString);

impl Password {
    /// # Errors
    /// When it is shorter than `MIN_PASSWORD_CHARS` characters (or absurdly long).
    pub fn parse(raw: SecretString) -> Result<Self, OperatorError> {
        let count = raw.expose_secret().chars().count();
        if count < MIN_PASSWORD_CHARS {
            return Err(OperatorError::PasswordTooShort);
        }
        if count > MAX_PASSWORD_CHARS {
            return Err(OperatorError::PasswordTooLong);
        }
        Ok(Self(raw))
    }

    /// The argon2id hash (PHC string, random salt, the crate's default cost) to store.
    pub fn hash(&self) -> String {
        Argon2::default()
            .hash_password(self.0.expose_secret().as_bytes())
            .map(|hash| hash.to_string())
            .expect("argon2id hashes any password with a fresh salt")
    }
}

/// Whether `attempt` is the password `stored` (an argon2id PHC string) was made from. A stored
/// hash that cannot be read matches nothing.
pub fn password_matches(stored: &str, attempt: &SecretString) -> bool {
    PasswordHash::new(stored)
        .is_ok_and(|hash| Argon2::default().verify_password(attempt.expose_secret().as_bytes(), &hash).is_ok())
}

/// A hash of a password nobody has: checked when the user does not exist, so that an unknown
/// name takes as long to refuse as a wrong password and names cannot be probed by timing.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let random = format!("{:032x}", rand::random::<u128>());
        Password(SecretString::from(random)).hash()
    });
    &DECOY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_are_lower_case_and_plain() {
        assert_eq!(Username::parse(" Anna.Petrova ").unwrap().as_str(), "anna.petrova");
        assert_eq!(Username::parse(""), Err(OperatorError::Username));
        assert_eq!(Username::parse("анна"), Err(OperatorError::Username));
        assert_eq!(Username::parse("a b"), Err(OperatorError::Username));
    }

    #[test]
    fn passwords_shorter_than_twelve_characters_are_refused() {
        assert!(matches!(Password::parse(SecretString::from("elevenchars")), Err(OperatorError::PasswordTooShort)));
        // Characters, not bytes: twelve Cyrillic letters are enough.
        assert!(Password::parse(SecretString::from("абвгдеёжзийк")).is_ok());
    }

    #[test]
    fn a_hash_matches_its_password_only() {
        let password = Password::parse(SecretString::from("correct horse battery")).unwrap();
        let stored = password.hash();
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(password_matches(&stored, &SecretString::from("correct horse battery")));
        assert!(!password_matches(&stored, &SecretString::from("correct horse battery!")));
        assert!(!password_matches("not a hash", &SecretString::from("correct horse battery")));
    }

    #[test]
    fn roles_are_admin_and_viewer() {
        assert_eq!(Role::parse("admin"), Ok(Role::Admin));
        assert_eq!(Role::parse("viewer"), Ok(Role::Viewer));
        assert_eq!(Role::parse("root"), Err(OperatorError::Role));
    }
}
