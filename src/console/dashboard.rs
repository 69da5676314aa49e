//! The dashboard: leads by source, outcomes, intake→CRM times, CRM calls against each
//! destination's budget over a chosen range, and the queue now.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use chrono::Utc;

use super::chart::{Cell, Chart, Limit, Series};
use super::page::{Frame, render};
use super::range::{RangeForm, TimeRange};
use super::texts::Texts;
use crate::domain::LeadStatus;
use crate::http::admin::Operator;
use crate::http::error::ConsoleError;
use crate::http::state::AppState;
use crate::store::dashboard::{CallCount, LATENCY_BOUNDS_MS, LatencyCount, LeadCount, QueueDepth};

/// A chart as the page shows it: the drawing, and the same numbers for the table beneath.
pub struct Figure {
    pub chart: Chart,
    pub svg: String,
    /// A sentence under the chart: what it counts, or a total the drawing leaves out.
    pub note: String,
}

#[derive(Template)]
#[template(path = "console/dashboard.html")]
struct DashboardPage {
    frame: Frame,
    preset: &'static str,
    /// The custom range's fields as sent, to fill the form again.
    from: String,
    until: String,
    figures: Vec<Figure>,
}

/// `GET /admin/dashboard?range=24h|7d|30d` or `?from=…&until=…`
pub async fn page(
    State(state): State<AppState>,
    operator: Operator,
    Query(form): Query<RangeForm>,
) -> Result<Response, ConsoleError> {
    let now = Utc::now();
    let range = TimeRange::parse(&form, now).map_err(ConsoleError::Invalid)?;
    let started = Instant::now();
    let leads = state.store.lead_counts(range.buckets).await?;
    let latency = state.store.latency_counts(range.buckets).await?;
    let calls = state.store.call_counts(range.buckets).await?;
    let queue = state.store.queue_depth(now).await?;
    let frame = Frame::new(&state, &operator).timed(started.elapsed());
    let t = frame.t;
    let mut figures =
        vec![leads_by_source(t, &range, &leads), outcomes(t, &range, &leads), latencies(t, &range, &latency)];
    figures.extend(calls_against_budgets(t, &range, &calls, &budgets(&state)));
    figures.push(queue_now(t, &queue));
    render(&DashboardPage { frame, preset: range.preset, from: form.from, until: form.until, figures })
}

/// Each destination's configured requests per second, as this process's connectors hold it.
pub fn budgets(state: &AppState) -> BTreeMap<String, u32> {
    state.connectors.iter().map(|(name, connector)| (name.clone(), connector.status().requests_per_second)).collect()
}

fn labels(range: &TimeRange) -> Vec<String> {
    range.buckets.span().map(|index| range.label(index)).collect()
}

/// Where bucket `index` sits among the range's buckets.
fn position(range: &TimeRange, index: i64) -> Option<usize> {
    usize::try_from(index - range.buckets.span().start()).ok().filter(|position| *position < range.buckets.count())
}

fn leads_by_source(t: &Texts, range: &TimeRange, counts: &[LeadCount]) -> Figure {
    let sources: BTreeSet<&str> = counts.iter().map(|count| count.source.as_str()).collect();
    let length = range.buckets.count();
    let series = sources
        .iter()
        .enumerate()
        .map(|(order, source)| {
            let mut values = vec![0; length];
            for count in counts.iter().filter(|count| count.source == *source) {
                if let Some(position) = position(range, count.bucket) {
                    values[position] += count.count;
                }
            }
            Series {
                name: (*source).to_owned(),
                class: format!("c{}", order % 8),
                cells: values.into_iter().map(Cell::count).collect(),
            }
        })
        .collect();
    let total: i64 = counts.iter().map(|count| count.count).sum();
    let chart = Chart {
        id: "chart-leads".into(),
        title: t.chart_leads.into(),
        unit: t.unit_leads.into(),
        labels: labels(range),
        series,
        limit: None,
        class_ticks: None,
    };
    Figure { svg: chart.stacked_bars(), chart, note: format!("{}: {total}", t.total) }
}

/// The outcomes a lead can have now, in the order they are stacked, each with its colour.
const OUTCOMES: [(&[&str], LeadStatus, &str); 6] = [
    (&["approved"], LeadStatus::Approved, "out-approved"),
    (&["rejected"], LeadStatus::Rejected, "out-rejected"),
    (&["skipped"], LeadStatus::Skipped, "out-skipped"),
    (&["pending", "processing"], LeadStatus::Pending, "out-waiting"),
    (&["unrouted"], LeadStatus::Unrouted, "out-unrouted"),
    (&["dead"], LeadStatus::Dead, "out-dead"),
];

fn outcomes(t: &Texts, range: &TimeRange, counts: &[LeadCount]) -> Figure {
    let length = range.buckets.count();
    let series = OUTCOMES
        .iter()
        .map(|(statuses, status, class)| {
            let mut values = vec![0; length];
            for count in counts.iter().filter(|count| statuses.contains(&count.status.as_str())) {
                if let Some(position) = position(range, count.bucket) {
                    values[position] += count.count;
                }
            }
            Series {
                name: t.status(*status).into(),
                class: (*class).into(),
                cells: values.into_iter().map(Cell::count).collect(),
            }
        })
        .collect();
    let chart = Chart {
        id: "chart-outcomes".into(),
        title: t.chart_outcomes.into(),
        unit: t.unit_leads.into(),
        labels: labels(range),
        series,
        limit: None,
        class_ticks: None,
    };
    Figure { svg: chart.stacked_bars(), chart, note: t.chart_outcomes_note.into() }
}

/// The class holding quantile `q` of the leads counted in `classes`; `None` for no leads.
pub fn quantile_class(classes: &[i64], q: f64) -> Option<usize> {
    let total: i64 = classes.iter().sum();
    if total == 0 {
        return None;
    }
    // The rank of the q-th lead, counted from one: the median of 3 is the 2nd.
    let rank = ((q * total as f64).ceil() as i64).clamp(1, total);
    let mut seen = 0;
    classes.iter().position(|count| {
        seen += count;
        seen >= rank
    })
}

/// How a time class is named: its upper bound, or "more than" the last bound.
pub fn class_name(t: &Texts, class: usize) -> String {
    match LATENCY_BOUNDS_MS.get(class) {
        Some(bound) => format!("≤ {}", duration(t, *bound)),
        None => format!("> {}", duration(t, LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.len() - 1])),
    }
}

fn duration(t: &Texts, millis: i64) -> String {
    let [ms, s, min, h, d] = t.time_units;
    match millis {
        millis if millis < 1_000 => format!("{millis} {ms}"),
        millis if millis < 60_000 => format!("{} {s}", millis / 1_000),
        millis if millis < 3_600_000 => format!("{} {min}", millis / 60_000),
        millis if millis < 86_400_000 => format!("{} {h}", millis / 3_600_000),
        millis => format!("{} {d}", millis / 86_400_000),
    }
}

/// Counts of each time class, summed over sources.
pub(super) fn class_counts<'a>(counts: impl Iterator<Item = &'a LatencyCount>) -> Vec<i64> {
    let mut classes = vec![0; LATENCY_BOUNDS_MS.len() + 1];
    for count in counts {
        if let Some(slot) = classes.get_mut(count.class) {
            *slot += count.count;
        }
    }
    classes
}

fn latencies(t: &Texts, range: &TimeRange, counts: &[LatencyCount]) -> Figure {
    let per_bucket: Vec<Vec<i64>> =
        range.buckets.span().map(|index| class_counts(counts.iter().filter(|count| count.bucket == index))).collect();
    let series = [("p50", 0.5, "c0"), ("p95", 0.95, "c1"), ("p99", 0.99, "c3")]
        .into_iter()
        .map(|(name, q, class)| Series {
            name: name.into(),
            class: class.into(),
            cells: per_bucket
                .iter()
                .map(|classes| match quantile_class(classes, q) {
                    // Drawn at its class's upper bound: class 0 sits one step above zero.
                    Some(found) => Cell { value: Some(found as f64 + 1.0), text: class_name(t, found) },
                    None => Cell::empty(),
                })
                .collect(),
        })
        .collect();
    // Every other bound is named, so the labels stay legible at a phone's width.
    let mut ticks = vec!["0".to_owned()];
    ticks.extend(
        (0..=LATENCY_BOUNDS_MS.len()).map(|class| if class % 2 == 1 { class_name(t, class) } else { String::new() }),
    );
    let delivered: i64 = counts.iter().map(|count| count.count).sum();
    let chart = Chart {
        id: "chart-latency".into(),
        title: t.chart_latency.into(),
        unit: t.unit_time.into(),
        labels: labels(range),
        series,
        limit: None,
        class_ticks: Some(ticks),
    };
    Figure { svg: chart.lines(), chart, note: format!("{} ({}: {delivered})", t.chart_latency_note, t.total) }
}

pub(super) fn calls_against_budgets(
    t: &Texts,
    range: &TimeRange,
    counts: &[CallCount],
    budgets: &BTreeMap<String, u32>,
) -> Vec<Figure> {
    let mut destinations: BTreeSet<&str> = budgets.keys().map(String::as_str).collect();
    destinations.extend(counts.iter().map(|count| count.destination.as_str()).filter(|name| !name.is_empty()));
    let seconds = range.buckets.width.num_seconds().max(1) as f64;
    destinations
        .into_iter()
        .map(|destination| {
            let length = range.buckets.count();
            let (mut busiest, mut mean, mut refused) = (vec![Cell::count(0); length], vec![Cell::count(0); length], 0);
            for count in counts.iter().filter(|count| count.destination == destination) {
                if let Some(position) = position(range, count.bucket) {
                    busiest[position] = Cell::count(count.busiest_second);
                    let per_second = count.calls as f64 / seconds;
                    mean[position] = Cell { value: Some(per_second), text: format!("{per_second:.3}") };
                }
                refused += count.too_many_requests;
            }
            let total: i64 =
                counts.iter().filter(|count| count.destination == destination).map(|count| count.calls).sum();
            let chart = Chart {
                id: format!("chart-calls-{destination}"),
                title: format!("{} «{destination}»", t.chart_calls),
                unit: t.unit_calls.into(),
                labels: labels(range),
                series: vec![
                    Series { name: t.busiest_second.into(), class: "c3".into(), cells: busiest },
                    Series { name: t.mean_rate.into(), class: "c0".into(), cells: mean },
                ],
                limit: budgets
                    .get(destination)
                    .map(|budget| Limit { label: t.budget.into(), value: f64::from(*budget) }),
                class_ticks: None,
            };
            let note = format!("{}: {total}; 429: {refused}. {}", t.total, t.chart_calls_note);
            Figure { svg: chart.lines(), chart, note }
        })
        .collect()
}

fn queue_now(t: &Texts, queue: &QueueDepth) -> Figure {
    let parts = [
        (t.queue_due, queue.due),
        (t.queue_retry, queue.retry_later),
        (t.status(LeadStatus::Processing), queue.processing),
        (t.status(LeadStatus::Unrouted), queue.unrouted),
        (t.feedback, queue.feedback),
    ];
    let chart = Chart {
        id: "chart-queue".into(),
        title: t.chart_queue.into(),
        unit: t.unit_leads.into(),
        labels: parts.iter().map(|(name, _)| (*name).to_owned()).collect(),
        series: vec![Series {
            name: t.chart_queue.into(),
            class: "c0".into(),
            cells: parts.iter().map(|(_, count)| Cell::count(*count)).collect(),
        }],
        limit: None,
        class_ticks: None,
    };
    Figure { svg: chart.stacked_bars(), chart, note: t.chart_queue_note.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_read_from_the_class_counts() {
        assert_eq!(quantile_class(&[0, 0, 0], 0.5), None);
        assert_eq!(quantile_class(&[1, 1, 1], 0.5), Some(1), "the median of three is the second");
        assert_eq!(quantile_class(&[98, 1, 1], 0.95), Some(0));
        assert_eq!(quantile_class(&[98, 1, 1], 0.99), Some(1));
        assert_eq!(quantile_class(&[0, 0, 5], 0.5), Some(2));
    }

    #[test]
    fn time_classes_are_named_by_their_upper_bound() {
        let t = super::super::texts::texts(crate::config::ConsoleLanguage::English);
        assert_eq!(class_name(t, 0), "≤ 250 ms");
        assert_eq!(class_name(t, 4), "≤ 5 s");
        assert_eq!(class_name(t, LATENCY_BOUNDS_MS.len()), "> 3 d");
        let t = super::super::texts::texts(crate::config::ConsoleLanguage::Russian);
        assert_eq!(class_name(t, 8), "≤ 5 мин");
    }
}
