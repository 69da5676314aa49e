//! Where the checks collect what they find wrong, and the checks every kind of destination shares.

use url::Url;

use super::Problem;

/// Collects problems as they are found, keeping the checks themselves linear.
pub(super) struct Found<'a>(pub(super) &'a mut Vec<Problem>);

impl Found<'_> {
    pub(super) fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem::new(key, message));
    }

    pub(super) fn keep<T>(&mut self, result: Result<T, Problem>) -> Option<T> {
        result.map_err(|problem| self.0.push(problem)).ok()
    }
}

/// A CRM account's address: http(s) with a host.
pub(super) fn check_base_url(value: Option<&str>, key: &str, example: &str, found: &mut Found<'_>) -> Option<Url> {
    match value.map(|text| (text, Url::parse(text))) {
        Some((_, Ok(url))) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Some(url),
        Some((text, _)) => {
            found.problem(key, format!("«{text}» is not an http(s) URL such as {example}"));
            None
        }
        None => {
            found.problem(key, format!("missing: the account's address, such as {example}"));
            None
        }
    }
}
