//! How often one address may submit each form: a keyed rate limiter per form.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::{SourceConfig, SourceKind};
use crate::domain::SourceId;

/// Per-form limits on how often one address may submit.
#[derive(Clone, Default)]
pub struct FormLimits(Arc<HashMap<SourceId, DefaultKeyedRateLimiter<IpAddr>>>);

impl FormLimits {
    pub fn new(sources: &[SourceConfig]) -> Self {
        let limits = sources
            .iter()
            .filter_map(|source| match &source.kind {
                SourceKind::Form(form) => {
                    let per_minute = NonZeroU32::new(form.per_ip_per_minute).unwrap_or(NonZeroU32::MIN);
                    Some((source.id.clone(), RateLimiter::keyed(Quota::per_minute(per_minute))))
                }
                _ => None,
            })
            .collect();
        Self(Arc::new(limits))
    }

    pub fn allows(&self, form: &SourceId, ip: Option<IpAddr>) -> bool {
        let (Some(limiter), Some(ip)) = (self.0.get(form), ip) else { return true };
        if limiter.len() > 100_000 {
            limiter.retain_recent();
        }
        limiter.check_key(&ip).is_ok()
    }
}
