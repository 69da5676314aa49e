//! The dashboard's time range, read once from its GET form: a preset (24 h, 7 d, 30 d) or a
//! custom from–until, cut into hour, six-hour or day buckets.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use serde::Deserialize;

use crate::store::dashboard::Buckets;

/// The form's fields as sent; empty ones are absent.
#[derive(Debug, Default, Deserialize)]
pub struct RangeForm {
    #[serde(default)]
    pub range: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub until: String,
}

/// The longest custom range: a quarter, in days.
pub const LONGEST_DAYS: i64 = 92;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeRange {
    /// `24h`, `7d`, `30d`, or `custom`.
    pub preset: &'static str,
    pub buckets: Buckets,
}

impl TimeRange {
    /// What the form asks for, ending at `now` for a preset; the error names the field at fault.
    pub fn parse(form: &RangeForm, now: DateTime<Utc>) -> Result<Self, String> {
        let (from, until) = (form.from.trim(), form.until.trim());
        if !from.is_empty() || !until.is_empty() {
            let from = moment("from", from, false)?;
            let until = moment("until", until, true)?;
            if from >= until {
                return Err("«from» must be earlier than «until»".to_owned());
            }
            if until - from > Duration::days(LONGEST_DAYS) {
                return Err(format!("the range may cover at most {LONGEST_DAYS} days"));
            }
            return Ok(Self { preset: "custom", buckets: cut(from, until) });
        }
        let (preset, length, width) = match form.range.trim() {
            "" | "24h" => ("24h", Duration::hours(24), Duration::hours(1)),
            "7d" => ("7d", Duration::days(7), Duration::hours(6)),
            "30d" => ("30d", Duration::days(30), Duration::days(1)),
            other => {
                let shown: String = other.chars().take(20).collect();
                return Err(format!("«range»: «{shown}» is not one of 24h, 7d, 30d"));
            }
        };
        // The current, unfinished bucket is the last one drawn.
        let buckets = Buckets { from: now, until: now, width };
        let until = buckets.start_of(buckets.index_of(now) + 1);
        Ok(Self { preset, buckets: Buckets { from: until - length, until, width } })
    }

    /// How a bucket's start is labelled: the hour within a day's range, the date for days.
    pub fn label(&self, index: i64) -> String {
        let start = self.buckets.start_of(index);
        if self.buckets.width >= Duration::days(1) {
            start.format("%m-%d").to_string()
        } else if self.buckets.until - self.buckets.from <= Duration::days(1) {
            start.format("%H:%M").to_string()
        } else {
            start.format("%m-%d %H:%M").to_string()
        }
    }
}

/// A custom range in buckets small enough to see its shape and few enough to draw.
fn cut(from: DateTime<Utc>, until: DateTime<Utc>) -> Buckets {
    let span = until - from;
    let width = if span <= Duration::days(2) {
        Duration::hours(1)
    } else if span <= Duration::days(14) {
        Duration::hours(6)
    } else {
        Duration::days(1)
    };
    let aligned = Buckets { from, until, width };
    let from = aligned.start_of(aligned.index_of(from));
    let until = aligned.start_of(aligned.index_of(until - Duration::milliseconds(1)) + 1);
    Buckets { from, until, width }
}

/// A date (`2026-11-28`: its start, or for `until` its end) or a moment (`2026-11-28T14:30`),
/// both UTC, as the form's date and datetime-local inputs send them.
fn moment(field: &str, text: &str, end_of_day: bool) -> Result<DateTime<Utc>, String> {
    if text.is_empty() {
        return Err(format!("«{field}» is missing: a custom range needs both «from» and «until»"));
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let date = if end_of_day { date.succ_opt().unwrap_or(date) } else { date };
        return Ok(date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(at) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(at.and_utc());
        }
    }
    let shown: String = text.chars().take(20).collect();
    Err(format!("«{field}»: «{shown}» is not a date (YYYY-MM-DD) or a time (YYYY-MM-DDTHH:MM)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(range: &str, from: &str, until: &str) -> RangeForm {
        RangeForm { range: range.into(), from: from.into(), until: until.into() }
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_preset_ends_with_the_current_bucket() {
        let now = at("2026-11-28T14:25:00Z");
        let day = TimeRange::parse(&form("", "", ""), now).unwrap();
        assert_eq!(
            (day.preset, day.buckets.from, day.buckets.until),
            ("24h", at("2026-11-27T15:00:00Z"), at("2026-11-28T15:00:00Z"))
        );
        assert_eq!(day.buckets.count(), 24);
        let month = TimeRange::parse(&form("30d", "", ""), now).unwrap();
        assert_eq!((month.buckets.count(), month.label(*month.buckets.span().end())), (30, "11-28".to_owned()));
        assert_eq!(TimeRange::parse(&form("7d", "", ""), now).unwrap().buckets.count(), 28);
    }

    #[test]
    fn a_custom_range_takes_whole_days_or_moments() {
        let now = at("2026-11-28T14:25:00Z");
        let days = TimeRange::parse(&form("24h", "2026-11-01", "2026-11-03"), now).unwrap();
        assert_eq!(
            (days.preset, days.buckets.from, days.buckets.until),
            ("custom", at("2026-11-01T00:00:00Z"), at("2026-11-04T00:00:00Z"))
        );
        assert_eq!(days.buckets.width, Duration::hours(6));
        let hours = TimeRange::parse(&form("", "2026-11-28T09:30", "2026-11-28T12:00"), now).unwrap();
        assert_eq!((hours.buckets.from, hours.buckets.count()), (at("2026-11-28T09:00:00Z"), 3));
    }

    #[test]
    fn bad_input_is_named() {
        let now = Utc::now();
        let problem = |range, from, until| TimeRange::parse(&form(range, from, until), now).unwrap_err();
        assert!(problem("1y", "", "").contains("«range»: «1y»"));
        assert!(problem("", "yesterday", "2026-11-03").contains("«from»: «yesterday» is not a date"));
        assert!(problem("", "2026-11-03", "").contains("«until» is missing"));
        assert!(problem("", "2026-11-05", "2026-11-03").contains("earlier"));
        assert!(problem("", "2026-01-01", "2026-11-03").contains("at most 92 days"));
    }
}
