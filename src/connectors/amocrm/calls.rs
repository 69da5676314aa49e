//! Calls in amoCRM: `call_in`/`call_out` notes on the client's contact, and the contact and deal made for an unknown number.

use super::AmoCrm;
use super::operations::{contact_ref, deal_ref, first_id, numeric};
use super::wire::{
    CallParams, Created, DealContacts, LinkedContact, NewCallNote, NewContact, NewDeal, NewFieldValue, NewFieldValues,
    NewTags, NotesEmbedded, TagName,
};
use crate::config::Route;
use crate::connectors::{Calls, DeliveryError};
use crate::domain::{AutoContact, AutoDeal, CallNote, CrmRef, Direction, EntityKind};

/// `params.source` of every call the gateway logs: other tools tell our calls by it.
const CALL_SOURCE: &str = "leadgate";

impl AmoCrm {
    /// The contact's number goes to the work phone (`PHONE`/`WORK`), as Telphin's widget puts it.
    pub async fn create_auto_contact(&self, spec: &AutoContact, calls: &mut Calls) -> Result<CrmRef, DeliveryError> {
        let contact = NewContact {
            name: &spec.name,
            responsible_user_id: spec.responsible.as_ref().map(user_id).transpose()?,
            custom_fields_values: vec![NewFieldValues {
                field_code: "PHONE",
                values: vec![NewFieldValue { value: spec.phone.e164(), enum_code: "WORK" }],
            }],
            embedded: NewTags { tags: spec.tags.iter().map(|name| TagName { name }).collect() },
        };
        let created: Created = self.client.post(calls, "/api/v4/contacts", &[contact]).await?;
        first_id(created.embedded.contacts, "contacts").map(contact_ref)
    }

    pub async fn create_auto_deal(
        &self,
        spec: &AutoDeal,
        route: &Route,
        calls: &mut Calls,
    ) -> Result<CrmRef, DeliveryError> {
        let placement = self.placement(route, calls).await?;
        let deal = NewDeal {
            name: &spec.name,
            pipeline_id: placement.pipeline_id,
            status_id: placement.status_id,
            responsible_user_id: spec.responsible.as_ref().map(user_id).transpose()?,
            embedded: DealContacts { contacts: vec![LinkedContact { id: numeric(&spec.contact)?, is_main: true }] },
        };
        let created: Created = self.client.post(calls, "/api/v4/leads", &[deal]).await?;
        first_id(created.embedded.leads, "leads").map(deal_ref)
    }

    /// The note's responsible user and `call_responsible` are the same user.
    pub async fn log_call(
        &self,
        contact: &CrmRef,
        note: &CallNote,
        calls: &mut Calls,
    ) -> Result<CrmRef, DeliveryError> {
        let responsible = note.responsible.as_ref().map(user_id).transpose()?;
        let item = NewCallNote {
            entity_id: numeric(contact)?,
            note_type: note_type(note.direction),
            responsible_user_id: responsible,
            params: CallParams {
                uniq: &note.uniq,
                phone: note.phone.e164(),
                duration: note.duration_seconds,
                source: CALL_SOURCE,
                link: note.link.as_ref().map(url::Url::as_str),
                call_status: note.call_status.code(),
                call_responsible: responsible,
            },
        };
        let created: Created = self.client.post(calls, "/api/v4/contacts/notes", &[item]).await?;
        first_id(created.embedded.notes, "notes").map(call_ref)
    }

    /// Reads every note of the contact (one request per 250): the documented facts name no
    /// filter by note type or by `uniq`, so the match is made here.
    pub async fn find_call(
        &self,
        contact: &CrmRef,
        uniq: &str,
        calls: &mut Calls,
    ) -> Result<Option<CrmRef>, DeliveryError> {
        let path = format!("/api/v4/contacts/{}/notes", numeric(contact)?);
        let pages: Vec<NotesEmbedded> = self.client.get_pages(calls, &path).await?;
        Ok(pages
            .into_iter()
            .flat_map(|page| page.notes)
            .find(|note| {
                matches!(note.note_type.as_str(), "call_in" | "call_out")
                    && note.params.get("uniq").and_then(|value| value.as_str()) == Some(uniq)
            })
            .map(|note| call_ref(note.id)))
    }
}

fn note_type(direction: Direction) -> &'static str {
    match direction {
        Direction::Incoming => "call_in",
        Direction::Outgoing => "call_out",
    }
}

fn call_ref(id: i64) -> CrmRef {
    CrmRef::new(EntityKind::Call, id.to_string())
}

/// A responsible user must be a user: another record's id would make a stranger responsible.
fn user_id(record: &CrmRef) -> Result<i64, DeliveryError> {
    if record.kind != EntityKind::User {
        return Err(DeliveryError::Misconfigured(format!("{record} cannot be responsible for a record")));
    }
    numeric(record)
}
