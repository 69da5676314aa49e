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

    pub fn expand(&self, template: &str) -> String {
        let mut expanded = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            expanded.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            let name_length = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            let value = after[name_length..].starts_with('}').then(|| self.0.get(&after[..name_length])).flatten();
            match value {
                Some(value) => {
                    expanded.push_str(value);
                    rest = &after[name_length + 1..];
                }
                None => {
                    expanded.push('{');
                    rest = after;
                }
            }
        }
        expanded.push_str(rest);
        expanded
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
        let text = variables.expand("Сделка {visit}: {utmSource}/{utm_source}, {utmSorce}, {not closed, {} {{visit}}");
        assert_eq!(text, "Сделка 12345: yandex/yandex, {utmSorce}, {not closed, {} {12345}");
    }

    #[test]
    fn the_request_gives_domain_page_ip_date_and_the_pages_utm_tags() {
        let mut headers = HeaderMap::new();
        headers.insert("referer", "https://shop.example.ru/promo?utm_source=vk&utm_campaign=spring".parse().unwrap());
        let mut variables = Variables::from_request(&headers, Some("203.0.113.7".parse().unwrap()));
        variables.set_parameter("utm_campaign", "summer");
        let text = variables.expand("{domain} {ip} {utmSource} {utmCampaign} {landingPage}");
        assert_eq!(
            text,
            "shop.example.ru 203.0.113.7 vk summer https://shop.example.ru/promo?utm_source=vk&utm_campaign=spring"
        );
        assert_eq!(variables.expand("{date}").len(), "2026-11-21".len());
    }
}
