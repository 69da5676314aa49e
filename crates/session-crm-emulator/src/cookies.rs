//! The session and CSRF cookies: their names, how the emulator writes them and reads them back.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};

pub const SESSION_COOKIE: &str = "sessionid";
pub const CSRF_COOKIE: &str = "csrftoken";
/// The header a client copies the CSRF cookie into; header names are case-insensitive.
pub const CSRF_HEADER: &str = "X-CSRFToken";

/// The value of cookie `name` among the request's `Cookie` headers (HTTP/2 may send several).
pub fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// `HttpOnly` keeps the session away from scripts; `Path=/` because the cookie is set by a
/// response under `/api/auth/`, and without it the browser (and reqwest's store) would only
/// send it back there. `Max-Age` announces the absolute lifetime so a client can log in again
/// before it runs out.
pub fn session(session_id: &str, lifetime: Duration) -> HeaderValue {
    let max_age = lifetime.as_secs().max(1);
    let cookie = format!("{SESSION_COOKIE}={session_id}; HttpOnly; Path=/; Max-Age={max_age}; SameSite=Lax");
    HeaderValue::from_str(&cookie).expect("session ids are alphanumeric")
}

/// Not `HttpOnly`: the whole point is that the client's code reads it and echoes it. A padded
/// token's `=` is percent-encoded, as Laravel writes `XSRF-TOKEN`; the header must carry it decoded.
pub fn csrf(token: &str) -> HeaderValue {
    let value = token.replace('=', "%3D");
    HeaderValue::from_str(&format!("{CSRF_COOKIE}={value}; Path=/; SameSite=Lax"))
        .expect("tokens are alphanumeric with = padding")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_is_found_among_several_headers_and_pairs() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("theme=dark; csrftoken=abc"));
        headers.append(header::COOKIE, HeaderValue::from_static("sessionid=s1"));
        assert_eq!(read(&headers, SESSION_COOKIE).as_deref(), Some("s1"));
        assert_eq!(read(&headers, CSRF_COOKIE).as_deref(), Some("abc"));
        assert_eq!(read(&headers, "missing"), None);
    }

    #[test]
    fn a_padded_token_travels_percent_encoded_in_its_cookie() {
        assert_eq!(csrf("abc=="), "csrftoken=abc%3D%3D; Path=/; SameSite=Lax");
        assert_eq!(csrf("abc"), "csrftoken=abc; Path=/; SameSite=Lax");
    }
}
