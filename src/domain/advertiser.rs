//! Advertisers: the portal's clients whose leads a portal source (Grupo ZAP) brings in.

use std::collections::HashSet;
use std::fmt;

use url::Url;

use super::document::Document;
use super::{Email, SourceId};

/// An advertiser as the gateway knows it, scoped by the source it sends leads through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertiser {
    pub source: SourceId,
    pub id: AdvertiserId,
    pub document: Document,
    pub name: String,
    /// Where the advertiser gets a copy of each lead when `send_lead_email` is set.
    pub email: Option<Email>,
    pub send_lead_email: bool,
    pub route: AdvertiserRoute,
    /// The `clientListingId`s of its listings; one listing belongs to one advertiser of a source.
    pub listings: Vec<String>,
    /// A disabled advertiser is kept with its listings but left out of the portal's batch file.
    pub enabled: bool,
}

impl Advertiser {
    /// Why its lead copies would go nowhere: the portal's flag set without an address to send to.
    pub fn missing_lead_email(&self) -> Option<&'static str> {
        (self.send_lead_email && self.email.is_none())
            .then_some("SEND_LEAD_EMAIL is true but there is no e-mail address to send the copies to")
    }
}

/// Where an advertiser's leads go; each `None` means the source's own setting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdvertiserRoute {
    pub destination: Option<String>,
    pub pipeline: Option<String>,
    pub status: Option<String>,
}

/// The advertiser's identifier in the gateway, the last segment of its lead URL
/// (`/grupozap/lead/{id}`): 1 to 64 of `A-Z a-z 0-9 . _ -`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AdvertiserId(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AdvertiserIdError {
    #[error("the advertiser id is empty")]
    Empty,
    #[error("the advertiser id «{0}» is longer than {max} characters", max = AdvertiserId::MAX_LEN)]
    TooLong(String),
    #[error("the advertiser id «{0}» may only have letters, digits, '.', '_' and '-'")]
    InvalidCharacter(String),
    #[error("the advertiser id «{0}» is only dots, which a URL path reads as a directory")]
    OnlyDots(String),
    #[error("«{0}» does not end in an advertiser id")]
    NotInUrl(String),
}

impl AdvertiserId {
    pub const MAX_LEN: usize = 64;

    /// # Errors
    /// When the text is empty, too long, or has a character that would need escaping in a URL.
    pub fn parse(raw: &str) -> Result<Self, AdvertiserIdError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(AdvertiserIdError::Empty);
        }
        if !trimmed.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-')) {
            return Err(AdvertiserIdError::InvalidCharacter(trimmed.to_owned()));
        }
        if trimmed.len() > Self::MAX_LEN {
            return Err(AdvertiserIdError::TooLong(trimmed.to_owned()));
        }
        // `.` and `..` are removed from a path by every URL parser, so the portal could never reach them.
        if trimmed.bytes().all(|byte| byte == b'.') {
            return Err(AdvertiserIdError::OnlyDots(trimmed.to_owned()));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// Rebuilds an id this module validated earlier (the store's column).
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL the portal posts this advertiser's leads to: `{public_url}/grupozap/lead/{id}`,
    /// keeping any path prefix the gateway is published under.
    pub fn lead_url(&self, public_url: &Url) -> Url {
        let mut url = public_url.clone();
        // The id's characters never need escaping, so pushing the segments cannot fail
        // for a URL that has a path (every http/https URL does).
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(["grupozap", "lead", self.as_str()]);
        }
        url
    }

    /// The id a lead URL ends in (`…/grupozap/lead/123456`), whoever's gateway it points to.
    ///
    /// # Errors
    /// When the path is empty or ends in `lead`: the portal's single-endpoint form names no
    /// advertiser, and the listing finds it instead.
    pub fn from_lead_url(url: &Url) -> Result<Self, AdvertiserIdError> {
        let last = url.path_segments().and_then(|mut segments| segments.rfind(|segment| !segment.is_empty()));
        match last {
            Some(segment) if !segment.eq_ignore_ascii_case("lead") => Self::parse(segment),
            _ => Err(AdvertiserIdError::NotInUrl(url.to_string())),
        }
    }
}

impl fmt::Display for AdvertiserId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.pad(&self.0)
    }
}

/// What an operator says about one advertiser (a command, a row of a file): each `None` leaves
/// the stored value as it is, so a file with fewer columns never erases what it does not mention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvertiserChange {
    pub id: AdvertiserId,
    pub document: Option<Document>,
    pub name: Option<String>,
    pub email: Option<Option<Email>>,
    pub send_lead_email: Option<bool>,
    pub destination: Option<Option<String>>,
    pub pipeline: Option<Option<String>>,
    pub status: Option<Option<String>>,
    /// The new listings replace all the stored ones.
    pub listings: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

impl AdvertiserChange {
    /// A change that changes nothing yet.
    pub fn new(id: AdvertiserId) -> Self {
        Self {
            id,
            document: None,
            name: None,
            email: None,
            send_lead_email: None,
            destination: None,
            pipeline: None,
            status: None,
            listings: None,
            enabled: None,
        }
    }

    /// The advertiser once changed. A new one is enabled, named after its document, without
    /// listings, e-mail copies or a route of its own unless the change says otherwise; it needs a
    /// document, so `None` is returned when neither the change nor `stored` has one.
    pub fn apply(self, source: &SourceId, stored: Option<Advertiser>) -> Option<Advertiser> {
        let document = self.document.or_else(|| stored.as_ref().map(|stored| stored.document.clone()))?;
        let stored = stored.unwrap_or_else(|| Advertiser {
            source: source.clone(),
            id: self.id.clone(),
            name: document.to_string(),
            document: document.clone(),
            email: None,
            send_lead_email: false,
            route: AdvertiserRoute::default(),
            listings: Vec::new(),
            enabled: true,
        });
        Some(Advertiser {
            source: stored.source,
            id: stored.id,
            document,
            name: self.name.unwrap_or(stored.name),
            email: self.email.unwrap_or(stored.email),
            send_lead_email: self.send_lead_email.unwrap_or(stored.send_lead_email),
            route: AdvertiserRoute {
                destination: self.destination.unwrap_or(stored.route.destination),
                pipeline: self.pipeline.unwrap_or(stored.route.pipeline),
                status: self.status.unwrap_or(stored.route.status),
            },
            listings: self.listings.unwrap_or(stored.listings),
            enabled: self.enabled.unwrap_or(stored.enabled),
        })
    }
}

/// Listing ids (`clientListingId`) written separated by `;` or spaces: each once, in order.
pub fn parse_listings(text: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    text.split(|c: char| c == ';' || c.is_whitespace())
        .filter(|listing| !listing.is_empty() && seen.insert(*listing))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portal_style_ids_are_accepted_and_trimmed() {
        for raw in ["123456", "imobiliaria-xpto", "A_b.9", &"x".repeat(64)] {
            assert!(AdvertiserId::parse(raw).is_ok(), "{raw}");
        }
        assert_eq!(AdvertiserId::parse(" 123456 ").unwrap().as_str(), "123456");
    }

    #[test]
    fn ids_that_would_not_survive_a_url_path_are_refused() {
        assert_eq!(AdvertiserId::parse(""), Err(AdvertiserIdError::Empty));
        assert!(matches!(AdvertiserId::parse(&"x".repeat(65)), Err(AdvertiserIdError::TooLong(_))));
        for raw in ["12 34", "a/b", "imobiliária", "a?b", "%41"] {
            assert!(matches!(AdvertiserId::parse(raw), Err(AdvertiserIdError::InvalidCharacter(_))), "{raw}");
        }
        assert!(matches!(AdvertiserId::parse(".."), Err(AdvertiserIdError::OnlyDots(_))));
    }

    #[test]
    fn the_lead_url_is_the_public_url_with_the_portal_path_and_the_id() {
        let id = AdvertiserId::parse("123456").unwrap();
        for (public, expected) in [
            ("https://gw.example.com", "https://gw.example.com/grupozap/lead/123456"),
            ("https://gw.example.com/", "https://gw.example.com/grupozap/lead/123456"),
            ("https://example.com/leadgate/", "https://example.com/leadgate/grupozap/lead/123456"),
        ] {
            assert_eq!(id.lead_url(&Url::parse(public).unwrap()).as_str(), expected, "{public}");
        }
    }

    fn zap() -> SourceId {
        SourceId("zap".to_owned())
    }

    fn change(id: &str) -> AdvertiserChange {
        AdvertiserChange::new(AdvertiserId::parse(id).unwrap())
    }

    #[test]
    fn the_id_is_read_back_from_a_lead_url_of_any_gateway() {
        let id = AdvertiserId::parse("imob-42").unwrap();
        let url = id.lead_url(&Url::parse("https://gw.example.com/prefix").unwrap());
        assert_eq!(AdvertiserId::from_lead_url(&url), Ok(id));
        let other = Url::parse("https://crm-ou-imobiliaria.com.br/grupozap/lead/123456/").unwrap();
        assert_eq!(AdvertiserId::from_lead_url(&other).unwrap().as_str(), "123456");
        for without_id in
            ["https://crm.com.br/lead", "https://imobiliariaxpto.crm.com.br/grupozap/lead", "https://x.com/"]
        {
            let url = Url::parse(without_id).unwrap();
            assert!(matches!(AdvertiserId::from_lead_url(&url), Err(AdvertiserIdError::NotInUrl(_))), "{without_id}");
        }
    }

    #[test]
    fn a_new_advertiser_needs_a_document_and_is_named_after_it() {
        assert_eq!(change("1").apply(&zap(), None), None);
        let document = Document::parse("11222333000181").unwrap();
        let advertiser = AdvertiserChange { document: Some(document), ..change("1") }.apply(&zap(), None).unwrap();
        assert_eq!(advertiser.name, "11222333000181");
        assert!(advertiser.enabled && !advertiser.send_lead_email && advertiser.listings.is_empty());
    }

    #[test]
    fn a_change_keeps_what_it_does_not_mention_and_clears_what_it_sets_to_none() {
        let stored = Advertiser {
            source: zap(),
            id: AdvertiserId::parse("1").unwrap(),
            document: Document::parse("52998224725").unwrap(),
            name: "Imobiliária X".to_owned(),
            email: Some(Email::parse("x@example.com").unwrap()),
            send_lead_email: true,
            route: AdvertiserRoute { pipeline: Some("Vendas".to_owned()), ..AdvertiserRoute::default() },
            listings: vec!["a1".to_owned()],
            enabled: false,
        };
        let changed = AdvertiserChange { email: Some(None), listings: Some(vec!["b2".to_owned()]), ..change("1") }
            .apply(&zap(), Some(stored.clone()))
            .unwrap();
        assert_eq!(changed.email, None);
        assert_eq!(changed.listings, ["b2"]);
        assert_eq!(
            Advertiser { email: stored.email.clone(), listings: stored.listings.clone(), ..changed },
            stored,
            "everything else is as stored"
        );
    }

    #[test]
    fn listings_are_split_on_semicolons_and_spaces_once_each() {
        assert_eq!(parse_listings(" a40171; b2  c3;;a40171 "), ["a40171", "b2", "c3"]);
        assert!(parse_listings(" ; ").is_empty());
    }
}
