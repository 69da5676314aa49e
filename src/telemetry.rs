//! Logging: one subscriber for the process, filtered by `RUST_LOG`, written as text or JSON lines to stderr.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The filter when `RUST_LOG` is not set: the gateway's own news, not its libraries' chatter.
const DEFAULT_FILTER: &str = "info,sqlx=warn,tower_http=warn";

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).try_init(),
        // Colours only for a person at a terminal: files and journald get plain text.
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
    };
}

/// Names the source the current request is for, in its access-log line (the `request` span
/// that `http::observe` opens around every request).
pub fn note_source(source: &crate::domain::SourceId) {
    tracing::Span::current().record("source", source.0.as_str());
}
