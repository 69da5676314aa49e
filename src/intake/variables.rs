//! `{variable}` templates in website leads' texts, filled from the lead and the visit it came from.

use std::collections::HashMap;

use axum::http::HeaderMap;
use chrono::Utc;
use url::Url;

/// The values a template may name. A name the lead does not know stays in the text as written,
/// so a misspelt `{utmSorce}` is seen in the CRM rather than silently dropped.
#[derive(Debug, Default, Clone)]
pub struct Variables(HashMap<String, String>);

impl Variables {
    /// The visit as the request shows it: the site's domain and page (from `Origin`/`Referer`),
    /// the visitor's address and browser, today's date, and the UTM tags of the page's address.
    pub fn from_request(headers: &HeaderMap, client_ip: Option<std::net::IpAddr>) -> Self {
        let mut variables = Self::default();
        let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).map(str::to_owned);
        let page = header("referer").and_then(|text| Url::parse(&text).ok());
        let origin = header("origin").and_then(|text| Url::parse(&text).ok());
        if let Some(host) = origin.as_ref().or(page.as_ref()).and_then(|url| url.host_str()) {
            variables.set("domain", host);
        }
        if let Some(page) = &page {
            variables.set("referrer", page.as_str());
            variables.set("landingPage", page.as_str());
            variables.set("orderPage", page.as_str());
            variables.add_utm_tags(page);
        }
        if let Some(ip) = client_ip {
            variables.set("ip", &ip.to_string());
        }
        if let Some(agent) = header("user-agent") {
            variables.set("agent", &agent);
        }
        variables.set("date", &Utc::now().format("%Y-%m-%d").to_string());
        variables
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.0.insert(name.to_owned(), value.to_owned());
    }

    /// A parameter the site sent: known under its own name and, for `snake_case` names, also
    /// under the camelCase name the templates use (`utm_source` → `{utmSource}`). A value the
    /// site sends wins over what the request headers suggested.
    pub fn set_parameter(&mut self, name: &str, value: &str) {
        self.set(name, value);
        if name.contains('_') {
            self.set(&camel_case(name), value);
        }
        // The landing page the site names beats the Referer's; `utm_*` parameters the site
        // sends come later in name order and beat both.
        if name == "landing_page"
            && let Ok(page) = Url::parse(value)
        {
            self.add_utm_tags(&page);
        }
    }

    /// The UTM tags of a page's address.
    fn add_utm_tags(&mut self, page: &Url) {
        for (key, value) in page.query_pairs() {
            if key.starts_with("utm_") {
                self.0.insert(camel_case(&key), value.into_owned());
            }
        }
    }

    /// Fills `template`, giving up as soon as the text would pass `limit` characters: a short
    /// template naming a long value many times costs no more than the limit, never its product.
    ///
    /// # Errors
    /// When the filled text is longer than `limit` characters.
    pub fn expand(&self, template: &str, limit: usize) -> Result<String, TooLong> {
        let mut expanded = BoundedText { text: String::new(), chars: 0, limit };
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            expanded.push(&rest[..start])?;
            let after = &rest[start + 1..];
            let name_length = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            let value = after[name_length..].starts_with('}').then(|| self.0.get(&after[..name_length])).flatten();
            match value {
                Some(value) => {
                    expanded.push(value)?;
                    rest = &after[name_length + 1..];
                }
                None => {
                    expanded.push("{")?;
                    rest = after;
                }
            }
        }
        expanded.push(rest)?;
        Ok(expanded.text)
    }
}

/// A filled template went over its limit; `limit` is the number of characters allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("больше {limit} символов после подстановки переменных")]
pub struct TooLong {
    pub limit: usize,
}

/// Text that refuses to grow past `limit` characters.
struct BoundedText {
    text: String,
    chars: usize,
    limit: usize,
}

impl BoundedText {
    fn push(&mut self, part: &str) -> Result<(), TooLong> {
        // Counting stops one past the room left, so a huge part costs no more than the limit.
        let room = self.limit - self.chars;
        let part_chars = part.chars().take(room + 1).count();
        if part_chars > room {
            return Err(TooLong { limit: self.limit });
        }
        self.chars += part_chars;
        self.text.push_str(part);
        Ok(())
    }
}

fn camel_case(name: &str) -> String {
    let mut words = name.split('_').filter(|word| !word.is_empty());
    let mut camel = words.next().unwrap_or_default().to_owned();
    for word in words {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            camel.extend(first.to_uppercase());
            camel.push_str(chars.as_str());
        }
    }
    camel
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_variables_are_filled_and_unknown_ones_stay_visible() {
        let mut variables = Variables::default();
        variables.set("visit", "12345");
        variables.set_parameter("utm_source", "yandex");
        let text =
            variables.expand("Сделка {visit}: {utmSource}/{utm_source}, {utmSorce}, {not closed, {} {{visit}}", 100);
        assert_eq!(text.unwrap(), "Сделка 12345: yandex/yandex, {utmSorce}, {not closed, {} {12345}");
    }

    #[test]
    fn a_template_that_would_pass_its_limit_stops_there() {
        let mut variables = Variables::default();
        variables.set("x", &"A".repeat(16 * 1024));
        // 16,384 × 16 KiB would be 256 MB; the expansion gives up after the first value.
        let amplified = "{x}".repeat(16 * 1024);
        assert_eq!(variables.expand(&amplified, 1024), Err(TooLong { limit: 1024 }));
        variables.set("short", "ЖК");
        assert_eq!(variables.expand("{short}{short}", 4).unwrap(), "ЖКЖК");
        assert_eq!(variables.expand("{short}{short}!", 4), Err(TooLong { limit: 4 }));
    }

    #[test]
    fn the_request_gives_domain_page_ip_date_and_the_pages_utm_tags() {
        let mut headers = HeaderMap::new();
        headers.insert("referer", "https://shop.example.ru/promo?utm_source=vk&utm_campaign=spring".parse().unwrap());
        let mut variables = Variables::from_request(&headers, Some("203.0.113.7".parse().unwrap()));
        variables.set_parameter("utm_campaign", "summer");
        let text = variables.expand("{domain} {ip} {utmSource} {utmCampaign} {landingPage}", 1024).unwrap();
        assert_eq!(
            text,
            "shop.example.ru 203.0.113.7 vk summer https://shop.example.ru/promo?utm_source=vk&utm_campaign=spring"
        );
        assert_eq!(variables.expand("{date}", 10).unwrap().len(), "2026-11-21".len());
    }
}
