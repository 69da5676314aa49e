//! Sources and destinations at a glance: each source's leads, outcomes, intake→CRM times and
//! what waits, with a red banner for a source accepting leads but not delivering them; each
//! destination's CRM calls against its budget, 429s, pause and login.

use std::time::Instant;

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, Duration, Utc};

use super::dashboard::{Figure, budgets, calls_against_budgets, class_counts, class_name, quantile_class};
use super::page::{Frame, moment, render};
use super::range::TimeRange;
use super::texts::Texts;
use crate::connectors::rate_limit::Paused;
use crate::connectors::status::{ConnectorStatus, Login, LoginFailure};
use crate::http::admin::Operator;
use crate::http::error::ConsoleError;
use crate::http::state::AppState;
use crate::store::StoredTokens;
use crate::store::dashboard::{Buckets, LatencyCount};
use crate::store::overview::SourceActivity;

/// The destinations' calls are shown minute by minute over this many minutes.
const RECENT_MINUTES: i64 = 15;

pub struct SourceRow {
    pub source: String,
    pub destination: String,
    pub activity: SourceActivity,
    pub oldest_waiting: String,
    pub last_delivered: String,
    /// Leads wait, the oldest longer than `stalled_after`, and none reached the CRM for as long.
    pub stalled: bool,
    /// The week's leads that reached the CRM: the median and 95th percentile time from intake
    /// to the outcome, as a time class's bound ("≤ 5 s"); empty when none did.
    pub median: String,
    pub p95: String,
}

/// One destination: its calls of the last minutes against its budget, and its state.
pub struct DestinationRow {
    pub name: String,
    pub kind: &'static str,
    pub budget: u32,
    /// The busiest second of the last minutes, and the mean rate over them.
    pub busiest: i64,
    pub mean: String,
    pub too_many_requests: i64,
    /// A 429 pause or a block in force, in words; empty when calls flow.
    pub pause: String,
    pub login: String,
    /// The login needs a person: refused, or the token has expired.
    pub login_bad: bool,
    pub figure: Option<Figure>,
}

#[derive(Template)]
#[template(path = "console/sources.html")]
struct SourcesPage {
    frame: Frame,
    rows: Vec<SourceRow>,
    /// The threshold as configured (`10m`), for the banner.
    stalled_after: String,
    destinations: Vec<DestinationRow>,
    /// `15 min`, as the page names the destinations' window.
    recent_window: String,
}

/// `GET /admin/sources`
pub async fn page(State(state): State<AppState>, operator: Operator) -> Result<Response, ConsoleError> {
    let now = Utc::now();
    let today = now.date_naive().and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    let started = Instant::now();
    let week = now - Duration::days(7);
    let activity = state.store.source_activity(today, week).await?;
    // One bucket as wide as the week: only the time classes per source matter here.
    let whole_week = Buckets { from: week, until: now + Duration::seconds(1), width: Duration::days(8) };
    let latency = state.store.latency_counts(whole_week).await?;
    let minute = Duration::minutes(1);
    let probe = Buckets { from: now, until: now, width: minute };
    let until = probe.start_of(probe.index_of(now) + 1);
    let recent = TimeRange {
        preset: "custom",
        buckets: Buckets { from: until - minute * i32::try_from(RECENT_MINUTES).unwrap_or(15), until, width: minute },
    };
    let calls = state.store.call_counts(recent.buckets).await?;
    let mut tokens = std::collections::BTreeMap::new();
    for (name, connector) in state.connectors.iter() {
        if connector.status().login == Login::OAuth {
            tokens.insert(name.clone(), state.store.load_tokens(name).await?);
        }
    }
    let frame = Frame::new(&state, &operator).timed(started.elapsed());
    let t = frame.t;
    let mut figures: std::collections::BTreeMap<String, Figure> =
        calls_against_budgets(t, &recent, &calls, &budgets(&state))
            .into_iter()
            .map(|figure| (figure.chart.id.clone(), figure))
            .collect();
    let destinations = state
        .connectors
        .iter()
        .map(|(name, connector)| {
            let mine = calls.iter().filter(|count| &count.destination == name);
            let (busiest, total, refused) = mine.fold((0, 0, 0), |(busiest, total, refused), count| {
                (busiest.max(count.busiest_second), total + count.calls, refused + count.too_many_requests)
            });
            let figure = figures.remove(&format!("chart-calls-{name}"));
            let status = connector.status();
            let (login, login_bad) = login(t, &status, tokens.get(name).cloned().flatten(), now);
            DestinationRow {
                name: name.clone(),
                kind: status.kind,
                budget: status.requests_per_second,
                busiest,
                mean: format!("{:.2}", total as f64 / (RECENT_MINUTES * 60) as f64),
                too_many_requests: refused,
                pause: pause(t, status.paused),
                login,
                login_bad,
                figure,
            }
        })
        .collect();
    let stalled_after = Duration::from_std(state.console.config.stalled_after).unwrap_or(Duration::MAX);
    let rows = state
        .source_keys
        .0
        .iter()
        .map(|source| {
            let activity = activity.iter().find(|activity| activity.source == source.id.0).cloned();
            let activity =
                activity.unwrap_or_else(|| SourceActivity { source: source.id.0.clone(), ..SourceActivity::default() });
            let mut row = row(activity, source.route.destination.clone(), now - stalled_after);
            let classes = class_counts(latency.iter().filter(|count: &&LatencyCount| count.source == source.id.0));
            row.median = quantile_class(&classes, 0.5).map(|class| class_name(t, class)).unwrap_or_default();
            row.p95 = quantile_class(&classes, 0.95).map(|class| class_name(t, class)).unwrap_or_default();
            row
        })
        .collect();
    let threshold = humantime::format_duration(state.console.config.stalled_after).to_string();
    let recent_window = format!("{RECENT_MINUTES} {}", t.time_units[2]);
    render(&SourcesPage { frame, rows, stalled_after: threshold, destinations, recent_window })
}

fn row(activity: SourceActivity, destination: String, stalled_since: DateTime<Utc>) -> SourceRow {
    SourceRow {
        source: activity.source.clone(),
        destination,
        oldest_waiting: activity.oldest_waiting.map(moment).unwrap_or_default(),
        last_delivered: activity.last_delivered.map(moment).unwrap_or_default(),
        stalled: activity.stalled_since(stalled_since),
        activity,
        median: String::new(),
        p95: String::new(),
    }
}

/// A pause in words: how long calls stay stopped.
fn pause(t: &Texts, paused: Option<Paused>) -> String {
    let rounded = |retry_in: std::time::Duration| {
        humantime::format_duration(std::time::Duration::from_secs(retry_in.as_secs().max(1)))
    };
    match paused {
        None => String::new(),
        Some(Paused::Blocked { retry_in }) => format!("{} {}", t.blocked_for, rounded(retry_in)),
        Some(Paused::Throttled { retry_in }) => format!("{} {}", t.throttled_for, rounded(retry_in)),
    }
}

/// How the connector signs in, in words, and whether that needs a person now.
fn login(
    t: &Texts,
    status: &ConnectorStatus,
    tokens: Option<StoredTokens>,
    now: chrono::DateTime<Utc>,
) -> (String, bool) {
    let short = |length: std::time::Duration| {
        humantime::format_duration(std::time::Duration::from_secs(length.as_secs())).to_string()
    };
    match &status.login {
        Login::LongLivedToken => (t.long_lived_token.to_owned(), false),
        Login::OAuth => match tokens {
            None => (t.oauth_not_yet.to_owned(), false),
            Some(tokens) if tokens.expires_at <= now => {
                (format!("{} {}", t.oauth_expired, moment(tokens.expires_at)), false)
            }
            Some(tokens) => (format!("{} {}", t.oauth_valid_until, moment(tokens.expires_at)), false),
        },
        Login::Session(session) => {
            let mut text = match (session.logging_in, session.open_for) {
                (true, _) => t.session_logging_in.to_owned(),
                (false, Some(open)) => {
                    format!(
                        "{} {}; {} {}",
                        t.session_open_for,
                        short(open),
                        t.session_renews_in,
                        short(session.lifetime.saturating_sub(open))
                    )
                }
                (false, None) => t.session_none.to_owned(),
            };
            let failed = session.last_failure.map(|(kind, ago)| {
                let kind = match kind {
                    LoginFailure::Refused => t.login_refused,
                    LoginFailure::Unavailable => t.login_unavailable,
                    LoginFailure::RateLimited => "429",
                };
                format!("; {}: {kind}, {} {}", t.last_login_failed, short(ago), t.ago)
            });
            let bad = session.last_failure.is_some_and(|(kind, _)| kind == LoginFailure::Refused);
            text.push_str(&failed.unwrap_or_default());
            (text, bad)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_stalled_when_leads_wait_and_nothing_reached_the_crm_for_a_while() {
        let now = Utc::now();
        let waiting = SourceActivity {
            waiting: 3,
            oldest_waiting: Some(now - Duration::minutes(20)),
            last_delivered: Some(now - Duration::minutes(30)),
            ..SourceActivity::default()
        };
        assert!(row(waiting.clone(), "main".into(), now - Duration::minutes(10)).stalled);
        let delivering = SourceActivity { last_delivered: Some(now - Duration::minutes(1)), ..waiting.clone() };
        assert!(!row(delivering, "main".into(), now - Duration::minutes(10)).stalled, "still delivering");
        let fresh = SourceActivity { oldest_waiting: Some(now - Duration::minutes(1)), ..waiting };
        assert!(!row(fresh, "main".into(), now - Duration::minutes(10)).stalled, "the queue is only just behind");
        assert!(!row(SourceActivity::default(), "main".into(), now).stalled, "nothing waits");
    }

    #[test]
    fn a_pause_and_a_sign_in_are_put_in_words_and_a_refused_login_is_flagged() {
        use std::time::Duration as Std;

        use crate::connectors::status::SessionLogin;

        let t = crate::console::texts::texts(crate::config::ConsoleLanguage::English);
        assert_eq!(pause(t, None), "");
        let blocked = pause(t, Some(Paused::Blocked { retry_in: Std::from_millis(90_400) }));
        assert_eq!(blocked, "blocked by the CRM for another 1m 30s");
        let status = |login| ConnectorStatus { kind: "session_crm", requests_per_second: 5, paused: None, login };
        let now = Utc::now();
        let open = SessionLogin {
            open_for: Some(Std::from_secs(600)),
            lifetime: Std::from_secs(1500),
            last_failure: None,
            logging_in: false,
        };
        let (text, bad) = login(t, &status(Login::Session(open.clone())), None, now);
        assert_eq!((text.as_str(), bad), ("session open for 10m; renewed in 15m", false));
        let refused =
            SessionLogin { open_for: None, last_failure: Some((LoginFailure::Refused, Std::from_secs(20))), ..open };
        let (text, bad) = login(t, &status(Login::Session(refused)), None, now);
        assert_eq!(
            (text.as_str(), bad),
            ("no session: the next call logs in; the last login failed: refused, 20s ago", true)
        );
        let tokens = StoredTokens {
            seeded_from: String::new(),
            access_token: String::new(),
            refresh_token: String::new(),
            expires_at: now - Duration::minutes(1),
        };
        let (text, _) = login(t, &status(Login::OAuth), Some(tokens), now);
        assert!(text.starts_with("OAuth: the access token has expired"), "{text}");
    }
}
