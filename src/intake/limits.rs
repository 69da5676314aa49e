//! How often senders may call: a rate limit per source on every intake endpoint, and per address on each form.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, NotUntil, Quota, RateLimiter};

use crate::config::{SourceConfig, SourceKind};
use crate::domain::SourceId;
use crate::http::error::ApiError;

/// Each source's limit over all its senders, and each form's limit per visitor's address.
#[derive(Clone, Default)]
pub struct IntakeLimits {
    per_source: Arc<HashMap<SourceId, DefaultDirectRateLimiter>>,
    per_address: Arc<HashMap<SourceId, DefaultKeyedRateLimiter<IpAddr>>>,
}

impl IntakeLimits {
    pub fn new(sources: &[SourceConfig]) -> Self {
        let per_source = sources
            .iter()
            .filter_map(|source| {
                Some((source.id.clone(), RateLimiter::direct(Quota::per_minute(source.requests_per_minute?))))
            })
            .collect();
        let per_address = sources
            .iter()
            .filter_map(|source| match &source.kind {
                SourceKind::Form(form) => {
                    let per_minute = NonZeroU32::new(form.per_ip_per_minute).unwrap_or(NonZeroU32::MIN);
                    Some((source.id.clone(), RateLimiter::keyed(Quota::per_minute(per_minute))))
                }
                _ => None,
            })
            .collect();
        Self { per_source: Arc::new(per_source), per_address: Arc::new(per_address) }
    }

    /// One more request for `source`, or `429` with how long to wait.
    pub fn admit(&self, source: &SourceId) -> Result<(), ApiError> {
        let Some(limiter) = self.per_source.get(source) else { return Ok(()) };
        limiter.check().map_err(|refused| ApiError::TooManyRequests {
            message: format!("Ошибка! Источник «{source}» превысил свой лимит запросов в минуту; повторите позже"),
            retry_after: wait_of(&refused),
        })
    }

    /// One more submission of `form` from `address`, or `429` with how long to wait.
    pub fn admit_address(&self, form: &SourceId, address: Option<IpAddr>) -> Result<(), ApiError> {
        let (Some(limiter), Some(address)) = (self.per_address.get(form), address) else { return Ok(()) };
        if limiter.len() > 100_000 {
            limiter.retain_recent();
        }
        limiter.check_key(&address).map_err(|refused| ApiError::TooManyRequests {
            message: "Слишком много заявок с вашего адреса. Попробуйте через минуту".to_owned(),
            retry_after: wait_of(&refused),
        })
    }
}

/// Whole seconds until the next request is let through, at least one.
fn wait_of(refused: &NotUntil<<DefaultClock as Clock>::Instant>) -> Duration {
    let wait = refused.wait_time_from(DefaultClock::default().now());
    Duration::from_secs(wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RetryPolicy, Route, SourceFeedback};
    use secrecy::SecretString;

    fn partner(limit: Option<u32>) -> SourceConfig {
        SourceConfig {
            id: SourceId("partner".to_owned()),
            kind: SourceKind::Partner { keys: SecretString::from("k".repeat(20)).into() },
            route: Route::default(),
            retry: RetryPolicy::default(),
            feedback: SourceFeedback::default(),
            requests_per_minute: limit.and_then(NonZeroU32::new),
        }
    }

    #[test]
    fn a_source_takes_its_minute_s_requests_then_says_how_long_to_wait() {
        let limits = IntakeLimits::new(&[partner(Some(3))]);
        let source = SourceId("partner".to_owned());
        for _ in 0..3 {
            assert!(limits.admit(&source).is_ok());
        }
        let Err(ApiError::TooManyRequests { retry_after, .. }) = limits.admit(&source) else {
            panic!("the fourth request of the minute was let through");
        };
        // Three a minute: one more is let through every 20 s.
        assert!((Duration::from_secs(1)..=Duration::from_secs(20)).contains(&retry_after), "{retry_after:?}");
    }

    #[test]
    fn a_source_without_a_limit_and_an_unknown_one_are_never_held() {
        let limits = IntakeLimits::new(&[partner(None)]);
        for _ in 0..1000 {
            assert!(limits.admit(&SourceId("partner".to_owned())).is_ok());
            assert!(limits.admit(&SourceId("other".to_owned())).is_ok());
        }
    }
}
