//! Sources at a glance: today's and the week's leads, how they ended, what waits, and a red
//! banner for a source that is accepting leads but not delivering them.

use std::time::Instant;

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, Duration, Utc};

use super::page::{Frame, moment, render};
use crate::http::admin::Operator;
use crate::http::error::ConsoleError;
use crate::http::state::AppState;
use crate::store::overview::SourceActivity;

pub struct SourceRow {
    pub source: String,
    pub destination: String,
    pub activity: SourceActivity,
    pub oldest_waiting: String,
    pub last_delivered: String,
    /// Leads wait, the oldest longer than `stalled_after`, and none reached the CRM for as long.
    pub stalled: bool,
}

#[derive(Template)]
#[template(path = "console/sources.html")]
struct SourcesPage {
    frame: Frame,
    rows: Vec<SourceRow>,
    /// The threshold as configured (`10m`), for the banner.
    stalled_after: String,
}

/// `GET /admin/sources`
pub async fn page(State(state): State<AppState>, operator: Operator) -> Result<Response, ConsoleError> {
    let now = Utc::now();
    let today = now.date_naive().and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    let started = Instant::now();
    let activity = state.store.source_activity(today, now - Duration::days(7)).await?;
    let frame = Frame::new(&state, &operator).timed(started.elapsed());
    let stalled_after = Duration::from_std(state.console.config.stalled_after).unwrap_or(Duration::MAX);
    let rows = state
        .source_keys
        .0
        .iter()
        .map(|source| {
            let activity = activity.iter().find(|activity| activity.source == source.id.0).cloned();
            let activity =
                activity.unwrap_or_else(|| SourceActivity { source: source.id.0.clone(), ..SourceActivity::default() });
            row(activity, source.route.destination.clone(), now - stalled_after)
        })
        .collect();
    let threshold = humantime::format_duration(state.console.config.stalled_after).to_string();
    render(&SourcesPage { frame, rows, stalled_after: threshold })
}

fn row(activity: SourceActivity, destination: String, stalled_since: DateTime<Utc>) -> SourceRow {
    SourceRow {
        source: activity.source.clone(),
        destination,
        oldest_waiting: activity.oldest_waiting.map(moment).unwrap_or_default(),
        last_delivered: activity.last_delivered.map(moment).unwrap_or_default(),
        stalled: activity.stalled_since(stalled_since),
        activity,
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
}
