//! The providers' signatures: Zadarma's base64 of hex HMAC-SHA1 and Mango's hex SHA-256, over raw strings.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use md5::Md5;
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

/// The signature of a Zadarma API request: `path + params + md5(params)` with `params` sorted
/// by key and encoded as PHP's `http_build_query` does (RFC 1738).
pub(crate) fn zadarma_api(secret: &str, path: &str, params: &[(String, String)]) -> String {
    let query = php_query(params);
    let md5 = hex(&Md5::digest(query.as_bytes()));
    zadarma(secret, &format!("{path}{query}{md5}"))
}

/// `http_build_query` after `ksort`: keys in byte order, `urlencode` on keys and values.
pub(crate) fn php_query(params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_by(|left, right| left.0.cmp(&right.0));
    sorted
        .iter()
        .map(|(key, value)| format!("{}={}", php_urlencode(key), php_urlencode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// PHP's `urlencode`: letters, digits and `-_.` stay, a space becomes `+`, the rest `%XX`.
fn php_urlencode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => encoded.push(byte as char),
            b' ' => encoded.push('+'),
            other => encoded.push_str(&format!("%{other:02X}")),
        }
    }
    encoded
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

    #[test]
    fn the_php_query_sorts_keys_and_encodes_like_urlencode() {
        let params = [("to".to_owned(), "+7 916*1".to_owned()), ("from".to_owned(), "101".to_owned())];
        assert_eq!(php_query(&params), "from=101&to=%2B7+916%2A1");
    }
}
