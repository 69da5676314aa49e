//! One advertiser as an operator types it (command-line options, the console's form), checked
//! into a change with the same rules as a row of the advertisers file.

use super::advertiser::{AdvertiserChange, AdvertiserId, parse_listings};
use super::advertiser_file::{blank_to_none, parse_optional_email};
use super::document::Document;

/// The fields as typed; `None` leaves the stored value, `Some("")` clears it where it may be cleared.
#[derive(Debug, Clone, Default)]
pub struct AdvertiserFields {
    pub id: String,
    pub document: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    /// The given listings replace the stored ones; `[""]` removes them all, `[]` keeps them.
    pub listings: Vec<String>,
    pub send_lead_email: Option<bool>,
    pub destination: Option<String>,
    pub pipeline: Option<String>,
    pub status: Option<String>,
}

impl AdvertiserFields {
    /// The change the fields ask for; the error names what is wrong.
    pub fn change(&self) -> Result<AdvertiserChange, String> {
        let document = self.document.as_deref().map(Document::parse).transpose().map_err(|error| error.to_string())?;
        Ok(AdvertiserChange {
            document,
            name: self.name.as_deref().and_then(blank_to_none),
            email: self.email.as_deref().map(parse_optional_email).transpose()?,
            send_lead_email: self.send_lead_email,
            destination: self.destination.as_deref().map(blank_to_none),
            pipeline: self.pipeline.as_deref().map(blank_to_none),
            status: self.status.as_deref().map(blank_to_none),
            listings: (!self.listings.is_empty()).then(|| parse_listings(&self.listings.join(";"))),
            ..AdvertiserChange::new(AdvertiserId::parse(&self.id).map_err(|error| error.to_string())?)
        })
    }
}
