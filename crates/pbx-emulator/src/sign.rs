//! The providers' signatures: Zadarma's base64 of hex HMAC-SHA1 and Mango's hex SHA-256, over raw strings.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// `base64(lowercase-hex(HMAC-SHA1(secret, text)))`: PHP's `hash_hmac` gives hex text, and
/// Zadarma base64-encodes that text, not the raw digest.
pub(crate) fn zadarma(secret: &str, text: &str) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(text.as_bytes());
    STANDARD.encode(hex(&mac.finalize().into_bytes()))
}

/// `lowercase-hex(sha256(api_key + json + api_salt))` over the `json` string exactly as sent.
pub(crate) fn mango(api_key: &str, json: &str, api_salt: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(api_key.as_bytes());
    digest.update(json.as_bytes());
    digest.update(api_salt.as_bytes());
    hex(&digest.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zadarma_signature_is_56_characters_of_base64_over_40_hex_digits() {
        let signature = zadarma("secret", "79161234567749512345672024-05-17 14:03:21");
        assert_eq!(signature.len(), 56);
        let decoded = STANDARD.decode(&signature).unwrap();
        assert!(decoded.iter().all(|byte| byte.is_ascii_hexdigit() && !byte.is_ascii_uppercase()));
    }

    #[test]
    fn a_mango_sign_is_lowercase_hex_sha256() {
        // sha256("abc") is a published test vector.
        assert_eq!(mango("a", "b", "c"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
