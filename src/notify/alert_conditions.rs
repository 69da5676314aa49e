//! Alerts, what is wrong now: each condition read from what the database holds, so every node
//! sees the same ones, worded with counts, names and times only (never a lead's personal data).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};

use crate::config::{AlertsConfig, SourceConfig};
use crate::connectors::{BLOCKED_ERROR_START, UNAUTHORIZED_ERROR_START};
use crate::domain::SourceId;
use crate::store::{Store, StoreError};

/// What kind of trouble; with its source or destination it makes the alert's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionKind {
    LeadDead,
    FeedbackFailed,
    SourceStalled,
    DestinationBlocked,
    DestinationAuth,
    OldestPending,
}

impl ConditionKind {
    const ALL: [Self; 6] = [
        Self::LeadDead,
        Self::FeedbackFailed,
        Self::SourceStalled,
        Self::DestinationBlocked,
        Self::DestinationAuth,
        Self::OldestPending,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::LeadDead => "lead_dead",
            Self::FeedbackFailed => "feedback_failed",
            Self::SourceStalled => "source_stalled",
            Self::DestinationBlocked => "destination_blocked",
            Self::DestinationAuth => "destination_auth",
            Self::OldestPending => "oldest_pending",
        }
    }

    fn about_destination(self) -> bool {
        matches!(self, Self::DestinationBlocked | Self::DestinationAuth)
    }
}

/// One condition that holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub kind: ConditionKind,
    pub source: Option<String>,
    pub destination: Option<String>,
    /// What holds, in a sentence for an operator.
    pub summary: String,
    /// When it began, as far as the recorded leads tell.
    pub since: DateTime<Utc>,
}

impl Condition {
    /// `source_stalled:partner`, `destination_auth:main`, `oldest_pending`: one alert per key.
    pub fn key(&self) -> String {
        match self.destination.as_ref().or(self.source.as_ref()) {
            Some(name) => format!("{}:{name}", self.kind.as_str()),
            None => self.kind.as_str().to_owned(),
        }
    }

    /// The kind, source and destination a key was made of, for a condition that has ended.
    pub fn parse_key(key: &str) -> Option<(ConditionKind, Option<String>, Option<String>)> {
        let (kind, name) = match key.split_once(':') {
            Some((kind, name)) => (kind, Some(name.to_owned())),
            None => (key, None),
        };
        let kind = ConditionKind::ALL.into_iter().find(|known| known.as_str() == kind)?;
        Some(if kind.about_destination() { (kind, None, name) } else { (kind, name, None) })
    }
}

/// Every condition that holds at `now`.
///
/// # Errors
/// When the database cannot be read.
pub async fn conditions_now(
    store: &Store,
    sources: &BTreeMap<SourceId, SourceConfig>,
    config: &AlertsConfig,
    now: DateTime<Utc>,
) -> Result<Vec<Condition>, StoreError> {
    let window = now - duration(config.repeat_after);
    let mut found = Vec::new();
    for dead in store.dead_by_source(window).await? {
        found.push(Condition {
            kind: ConditionKind::LeadDead,
            summary: format!(
                "{} lead(s) of source «{}» went dead between {} and {}; they wait to be re-sent",
                dead.count,
                dead.source,
                moment(dead.first),
                moment(dead.latest)
            ),
            source: Some(dead.source),
            destination: None,
            since: dead.first,
        });
    }
    let mut failed: BTreeMap<String, (String, DateTime<Utc>)> = BTreeMap::new();
    for failure in store.failed_feedback_by_source(window).await? {
        let (parts, since) = failed.entry(failure.source).or_insert_with(|| (String::new(), failure.first));
        let separator = if parts.is_empty() { "" } else { ", " };
        let _ = write!(parts, "{separator}{} {}", failure.count, feedback_name(&failure.kind));
        *since = (*since).min(failure.first);
    }
    for (source, (parts, since)) in failed {
        found.push(Condition {
            kind: ConditionKind::FeedbackFailed,
            summary: format!("{parts} for leads of source «{source}» failed for good since {}", moment(since)),
            source: Some(source),
            destination: None,
            since,
        });
    }
    // The week bounds only when the last delivery is looked for, as on the console's page.
    let activity = store.source_activity(now, now - Duration::days(7)).await?;
    let stalled_since = now - duration(config.stalled_after);
    for source in activity.iter().filter(|source| source.stalled_since(stalled_since)) {
        let oldest = source.oldest_waiting.unwrap_or(now);
        let delivered = match source.last_delivered {
            Some(at) => format!("the last lead reached the CRM at {}", moment(at)),
            None => "no lead reached the CRM in the last 7 days".to_owned(),
        };
        found.push(Condition {
            kind: ConditionKind::SourceStalled,
            summary: format!(
                "source «{}» is accepting leads but not delivering them: {} wait, the oldest since {}; {delivered}",
                source.source,
                source.waiting,
                moment(oldest)
            ),
            source: Some(source.source.clone()),
            destination: None,
            since: oldest,
        });
    }
    let waiting: i64 = activity.iter().map(|source| source.waiting).sum();
    if let Some(oldest) = activity.iter().filter_map(|source| source.oldest_waiting).min()
        && oldest < now - duration(config.oldest_pending)
    {
        found.push(Condition {
            kind: ConditionKind::OldestPending,
            summary: format!(
                "the oldest waiting lead was received at {}, more than {} ago; {waiting} lead(s) wait",
                moment(oldest),
                humantime::format_duration(config.oldest_pending)
            ),
            source: None,
            destination: None,
            since: oldest,
        });
    }
    for (kind, error_start, what) in [
        (
            ConditionKind::DestinationBlocked,
            BLOCKED_ERROR_START,
            "has blocked the account (403); calls pause and resume",
        ),
        (
            ConditionKind::DestinationAuth,
            UNAUTHORIZED_ERROR_START,
            "refused the gateway's credentials (a refused token or a failed login); someone must fix them",
        ),
    ] {
        let mut by_destination: BTreeMap<String, (i64, DateTime<Utc>)> = BTreeMap::new();
        for waiting in store.waiting_with_error(error_start).await? {
            // A lead without its own route goes where its source's route goes.
            let destination = waiting.route_destination.or_else(|| {
                sources.get(&SourceId(waiting.source.clone())).map(|source| source.route.destination.clone())
            });
            let Some(destination) = destination else { continue };
            let (count, since) = by_destination.entry(destination).or_insert((0, waiting.since));
            *count += waiting.count;
            *since = (*since).min(waiting.since);
        }
        for (destination, (count, since)) in by_destination {
            found.push(Condition {
                kind,
                summary: format!(
                    "destination «{destination}» {what}; {count} waiting lead(s) were last refused so, since {}",
                    moment(since)
                ),
                source: None,
                destination: Some(destination),
                since,
            });
        }
    }
    Ok(found)
}

/// The sentence of a resolved message: what no longer holds.
pub fn resolved_summary(
    kind: ConditionKind,
    source: Option<&str>,
    destination: Option<&str>,
    config: &AlertsConfig,
) -> String {
    let source = source.unwrap_or_default();
    let destination = destination.unwrap_or_default();
    let window = humantime::format_duration(config.repeat_after);
    match kind {
        ConditionKind::LeadDead => format!("no lead of source «{source}» went dead in the last {window}"),
        ConditionKind::FeedbackFailed => {
            format!("no callback or e-mail for leads of source «{source}» failed for good in the last {window}")
        }
        ConditionKind::SourceStalled => format!("source «{source}» is delivering again, or none of its leads waits"),
        ConditionKind::DestinationBlocked => {
            format!("no waiting lead of destination «{destination}» was last refused as blocked")
        }
        ConditionKind::DestinationAuth => {
            format!("no waiting lead of destination «{destination}» was last refused for its credentials")
        }
        ConditionKind::OldestPending => {
            format!("no waiting lead is older than {}", humantime::format_duration(config.oldest_pending))
        }
    }
}

pub fn moment(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn feedback_name(kind: &str) -> &str {
    match kind {
        "callback" => "callback(s)",
        "email" => "e-mail(s)",
        "deal_note" => "deal note(s)",
        other => other,
    }
}

fn duration(value: std::time::Duration) -> Duration {
    Duration::from_std(value).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_names_the_kind_and_its_source_or_destination_and_parses_back() {
        let condition = |kind, source: Option<&str>, destination: Option<&str>| Condition {
            kind,
            source: source.map(str::to_owned),
            destination: destination.map(str::to_owned),
            summary: String::new(),
            since: Utc::now(),
        };
        for (condition, key) in [
            (condition(ConditionKind::SourceStalled, Some("partner"), None), "source_stalled:partner"),
            (condition(ConditionKind::DestinationAuth, None, Some("main")), "destination_auth:main"),
            (condition(ConditionKind::OldestPending, None, None), "oldest_pending"),
        ] {
            assert_eq!(condition.key(), key);
            let parsed = Condition::parse_key(key).unwrap();
            assert_eq!(parsed, (condition.kind, condition.source, condition.destination));
        }
        assert_eq!(Condition::parse_key("no_such_kind:x"), None);
    }
}
