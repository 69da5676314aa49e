//! What a website lead asks of its CRM deal and contact beyond name, phone and e-mail.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A CRM field a website lead can fill, by the name the proxy-lead API and form settings use:
/// `price`, `responsible_user_id`, `pipeline_id`, `status_id`, `tags`, a numeric id (a custom
/// field of the deal) or `contact.<id>` (a custom field of the contact), besides the lead's own
/// `name`, `phone`, `email`, `comment` and the deal's `title`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CrmField {
    Name,
    Phone,
    Email,
    Comment,
    Title,
    Tags,
    Price,
    ResponsibleUser,
    PipelineId,
    StatusId,
    DealField(i64),
    ContactField(i64),
}

impl FromStr for CrmField {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        let custom_id = |digits: &str| digits.parse::<i64>().ok().filter(|id| *id > 0);
        Ok(match name {
            "name" => Self::Name,
            "phone" => Self::Phone,
            "email" => Self::Email,
            "comment" => Self::Comment,
            "title" => Self::Title,
            "tags" => Self::Tags,
            "price" => Self::Price,
            "responsible_user_id" => Self::ResponsibleUser,
            "pipeline_id" => Self::PipelineId,
            "status_id" => Self::StatusId,
            other => {
                if let Some(id) = other.strip_prefix("contact.").and_then(custom_id) {
                    Self::ContactField(id)
                } else if let Some(id) = custom_id(other) {
                    Self::DealField(id)
                } else {
                    return Err(format!(
                        "«{other}» is not a CRM field: use name, phone, email, comment, title, tags, price, \
                         responsible_user_id, pipeline_id, status_id, a custom field id, or contact.<id>"
                    ));
                }
            }
        })
    }
}

impl fmt::Display for CrmField {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name => formatter.write_str("name"),
            Self::Phone => formatter.write_str("phone"),
            Self::Email => formatter.write_str("email"),
            Self::Comment => formatter.write_str("comment"),
            Self::Title => formatter.write_str("title"),
            Self::Tags => formatter.write_str("tags"),
            Self::Price => formatter.write_str("price"),
            Self::ResponsibleUser => formatter.write_str("responsible_user_id"),
            Self::PipelineId => formatter.write_str("pipeline_id"),
            Self::StatusId => formatter.write_str("status_id"),
            Self::DealField(id) => write!(formatter, "{id}"),
            Self::ContactField(id) => write!(formatter, "contact.{id}"),
        }
    }
}

/// The deal a website lead makes, as the site or the form's settings describe it. Empty for
/// other channels, whose deals follow their source's route alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DealSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub responsible_user_id: Option<i64>,
    /// Overrides the route's pipeline, by the CRM's own id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_id: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Custom field id → value, on the deal.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub deal_fields: BTreeMap<i64, String>,
    /// Custom field id → value, on a contact the lead creates.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub contact_fields: BTreeMap<i64, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
}

impl DealSpec {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// Sets one of the deal's own fields from text; `Err` says what the value should be.
    /// The lead's `name`, `phone`, `email` and `comment` are not the deal's and are refused.
    pub fn set(&mut self, field: CrmField, value: &str) -> Result<(), String> {
        let value = value.trim();
        let number = |what: &str| value.parse::<i64>().map_err(|_| format!("«{value}» is not a whole number ({what})"));
        match field {
            CrmField::Title => self.title = Some(value.to_owned()).filter(|title| !title.is_empty()),
            CrmField::Tags => {
                self.tags = value.split(',').map(str::trim).filter(|tag| !tag.is_empty()).map(str::to_owned).collect();
            }
            CrmField::Price => self.price = Some(number("the deal's budget")?),
            CrmField::ResponsibleUser => self.responsible_user_id = Some(number("a CRM user id")?),
            CrmField::PipelineId => self.pipeline_id = Some(number("a CRM pipeline id")?),
            CrmField::StatusId => self.status_id = Some(number("a CRM stage id")?),
            CrmField::DealField(id) => {
                self.deal_fields.insert(id, value.to_owned());
            }
            CrmField::ContactField(id) => {
                self.contact_fields.insert(id, value.to_owned());
            }
            CrmField::Name | CrmField::Phone | CrmField::Email | CrmField::Comment => {
                return Err(format!("{field} is a field of the lead, not of the deal"));
            }
        }
        Ok(())
    }
}

/// A file that came with a lead, kept on disk under its content hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Lower-case hex SHA-256 of the content: the file's name in the file store.
    pub sha256: String,
    /// The name the visitor's file had.
    pub name: String,
    pub content_type: String,
    pub size: u64,
    /// Where a person reading the CRM downloads it: a signed link to this gateway.
    pub url: String,
}

/// Asked of a new lead at insert: if its client already has a lead of the same source that is
/// still on its way, or was settled within `window`, the new one is not stored again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateCheck {
    pub window: Duration,
    /// A note for the earlier lead's deal saying the client asked again; `None`: nothing is added.
    pub append_note: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_round_trip_and_unknown_ones_are_explained() {
        for name in ["name", "title", "tags", "price", "responsible_user_id", "status_id", "1276733", "contact.264909"]
        {
            assert_eq!(name.parse::<CrmField>().unwrap().to_string(), name);
        }
        assert!("utm".parse::<CrmField>().unwrap_err().contains("«utm»"));
        assert!("contact.x".parse::<CrmField>().is_err());
        assert!("-5".parse::<CrmField>().is_err());
    }

    #[test]
    fn deal_values_are_typed_and_tags_split_on_commas() {
        let mut spec = DealSpec::default();
        spec.set(CrmField::Tags, " Тег1, , utm ").unwrap();
        spec.set(CrmField::Price, "123").unwrap();
        spec.set(CrmField::DealField(1276733), "Текст").unwrap();
        assert_eq!(spec.tags, ["Тег1", "utm"]);
        assert_eq!(spec.price, Some(123));
        assert_eq!(spec.deal_fields[&1276733], "Текст");
        assert!(spec.set(CrmField::Price, "12.5").unwrap_err().contains("«12.5»"));
        assert!(spec.set(CrmField::Name, "x").is_err());
    }
}
