//! Credentials the emulator accepts: access tokens with expiry, single-use refresh tokens and codes.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use rand::distr::{Alphanumeric, SampleString};

use crate::EmulatorConfig;

const TOKEN_LENGTH: usize = 48;

/// A freshly issued access/refresh pair.
#[derive(Clone, Debug)]
pub struct IssuedTokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: Duration,
}

#[derive(Debug)]
pub struct Tokens {
    long_lived: Option<String>,
    long_lived_revoked: bool,
    lifetime: Duration,
    /// Access token → the instant it stops working.
    access: HashMap<String, Instant>,
    /// Refresh tokens that have not been used yet; using one removes it, because amoCRM
    /// refresh tokens are single-use.
    refresh: HashSet<String>,
    authorization_code: Option<String>,
}

impl Tokens {
    pub fn new(config: &EmulatorConfig) -> Self {
        Tokens {
            long_lived: config.long_lived_token.clone(),
            long_lived_revoked: false,
            lifetime: config.access_token_lifetime,
            access: HashMap::new(),
            refresh: config.refresh_token.iter().cloned().collect(),
            authorization_code: config.authorization_code.clone(),
        }
    }

    pub fn accepts(&self, token: &str, now: Instant) -> bool {
        let long_lived = !self.long_lived_revoked && self.long_lived.as_deref() == Some(token);
        long_lived || self.access.get(token).is_some_and(|expires| now < *expires)
    }

    /// Spends the authorization code; `false` when it is unknown or already used.
    pub fn redeem_code(&mut self, code: &str) -> bool {
        if self.authorization_code.as_deref() == Some(code) {
            self.authorization_code = None;
            true
        } else {
            false
        }
    }

    /// Spends a refresh token; `false` when it is unknown or already used.
    pub fn redeem_refresh(&mut self, token: &str) -> bool {
        self.refresh.remove(token)
    }

    /// Issues a new pair. Earlier access tokens keep working until their own expiry.
    pub fn issue(&mut self, now: Instant) -> IssuedTokens {
        let mut rng = rand::rng();
        let access_token = Alphanumeric.sample_string(&mut rng, TOKEN_LENGTH);
        let refresh_token = Alphanumeric.sample_string(&mut rng, TOKEN_LENGTH);
        self.access.insert(access_token.clone(), now + self.lifetime);
        self.refresh.insert(refresh_token.clone());
        IssuedTokens { access_token, refresh_token, expires_in: self.lifetime }
    }

    /// Makes every issued access token stop working now, as if its lifetime had run out.
    pub fn expire_access_tokens(&mut self, include_long_lived: bool) {
        self.access.clear();
        if include_long_lived {
            self.long_lived_revoked = true;
        }
    }

    /// Refresh tokens that can still be used, for tests that need one without the OAuth dance.
    pub fn live_refresh_tokens(&self) -> Vec<String> {
        let mut tokens: Vec<String> = self.refresh.iter().cloned().collect();
        tokens.sort();
        tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens::new(&EmulatorConfig::default())
    }

    #[test]
    fn refresh_tokens_are_single_use_and_rotate() {
        let mut tokens = tokens();
        assert!(tokens.redeem_refresh("sandbox-refresh-token-0"));
        let issued = tokens.issue(Instant::now());
        assert!(!tokens.redeem_refresh("sandbox-refresh-token-0"));
        assert!(tokens.redeem_refresh(&issued.refresh_token));
    }

    #[test]
    fn access_tokens_expire_after_their_lifetime() {
        let mut tokens = tokens();
        let now = Instant::now();
        let issued = tokens.issue(now);
        assert!(tokens.accepts(&issued.access_token, now));
        assert!(!tokens.accepts(&issued.access_token, now + issued.expires_in));
    }

    #[test]
    fn forced_expiry_spares_the_long_lived_token_unless_asked() {
        let mut tokens = tokens();
        let now = Instant::now();
        let issued = tokens.issue(now);
        tokens.expire_access_tokens(false);
        assert!(!tokens.accepts(&issued.access_token, now));
        assert!(tokens.accepts("sandbox-long-lived-token", now));
        tokens.expire_access_tokens(true);
        assert!(!tokens.accepts("sandbox-long-lived-token", now));
    }

    #[test]
    fn authorization_code_works_once() {
        let mut tokens = tokens();
        assert!(tokens.redeem_code("sandbox-code"));
        assert!(!tokens.redeem_code("sandbox-code"));
    }
}
