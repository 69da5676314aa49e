//! Deliver: the CRM connectors behind one contract of CRM operations that every flow is written against.

pub mod amocrm;
pub mod rate_limit;
pub mod session_crm;
pub mod status;
pub mod transport;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::config::{DestinationConfig, Route};
use crate::domain::{
    Attachment, AutoContact, AutoDeal, CallNote, CrmRef, EntityKind, HistoryEvent, Lead, Phone, PhoneRegion, UserRef,
};
use crate::store::{Store, StoreError};
use amocrm::AmoCrm;
use session_crm::{LeadContext, SessionCrm};

/// A CRM account leads are delivered to.
pub enum Connector {
    AmoCrm(AmoCrm),
    /// A company's own CRM behind a cookie login, its calls configured as templates.
    SessionCrm(SessionCrm),
}

/// What a flow may ask of a CRM. Connectors differ in what they can do (a company's own CRM
/// may have no pipelines to move a deal in), so each says which of these it supports and a
/// route whose flow needs one its destination lacks is refused before a lead is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// Find the client's contact by phone, then by e-mail when the flow asks.
    FindClient,
    /// Find the client's deal in the route's pipeline (also how an interrupted deal create is
    /// recognised).
    FindClientDeal,
    /// Find a note the gateway wrote on a deal, by its first line.
    FindNote,
    CreateOrganization,
    CreateContact,
    /// Create a deal, or a ticket.
    CreateDeal,
    MoveDeal,
    /// Add a note, or a message, to a deal or ticket.
    AddNote,
    AttachFile,
    /// Log a call on the client's contact, and what that takes: the CRM's users by name or id,
    /// a contact and deal made for an unknown number, a look for a call already logged.
    LogCall,
}

impl fmt::Display for Operation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Self::FindClient => "find a client",
            Self::FindClientDeal => "find a client's deal in a pipeline",
            Self::FindNote => "find a note on a deal",
            Self::CreateOrganization => "create an organization",
            Self::CreateContact => "create a contact",
            Self::CreateDeal => "create a deal",
            Self::MoveDeal => "move a deal to a stage",
            Self::AddNote => "add a note to a deal",
            Self::AttachFile => "attach a file to a deal",
            Self::LogCall => "log a call",
        })
    }
}

/// How a client is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Search {
    /// Also by e-mail when the phone finds nobody.
    pub by_email: bool,
    /// Also the client's deal in the route's pipeline: the newest open one, else the newest closed one.
    pub with_deal: bool,
}

/// The client the CRM already knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFound {
    pub contact: CrmRef,
    pub organization: Option<CrmRef>,
    /// Only when the search asked for it.
    pub deal: Option<CrmRef>,
    /// The contact's responsible user (a `User`), where the CRM keeps one.
    pub responsible: Option<CrmRef>,
}

/// Who is calling, as the CRM knows them: for the card shown while a call rings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub contact: CrmRef,
    pub name: Option<String>,
    /// Open deals, newest first.
    pub open_deals: Vec<NamedRecord>,
}

/// A record with the name people know it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedRecord {
    pub record: CrmRef,
    pub name: Option<String>,
}

/// A file of the lead with its content, for CRMs that take uploads.
pub struct FileContent<'a> {
    pub attachment: &'a Attachment,
    pub content: Bytes,
}

/// How a [`DeliveryError::Blocked`] reads in a lead's `last_error`, which is all another node
/// sees of it: alerts find blocked destinations by it.
pub const BLOCKED_ERROR_START: &str = "the CRM has blocked the account";
/// Likewise for [`DeliveryError::Unauthorized`]: a refused token or a failed session login.
pub const UNAUTHORIZED_ERROR_START: &str = "the CRM refused our credentials";

/// Why a CRM call stopped, which decides what happens to the lead next.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// 429: the CRM wants fewer requests. Not the lead's fault; retried without counting.
    #[error("the CRM asked us to slow down (429)")]
    RateLimited { retry_in: Duration },
    /// 403 with a non-JSON body: amoCRM blocked the account for exceeding its limits.
    // Begins with BLOCKED_ERROR_START.
    #[error("the CRM has blocked the account (403); calls stop for {}s", retry_in.as_secs())]
    Blocked { retry_in: Duration },
    /// 5xx, a timeout or a network error: retried with backoff.
    #[error("the CRM is unavailable: {0}")]
    Unavailable(String),
    /// The token or login is refused and could not be renewed: someone must fix the credentials.
    // Begins with UNAUTHORIZED_ERROR_START.
    #[error("the CRM refused our credentials: {0}")]
    Unauthorized(String),
    /// The account does not match the configuration (a pipeline or stage is missing).
    #[error("{0}")]
    Misconfigured(String),
    /// The CRM refused this lead's data (400): retrying cannot help.
    #[error("the CRM rejected the lead: {0}")]
    Rejected(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DeliveryError {
    /// A one-word name of the error's kind, for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RateLimited { .. } => "rate_limited",
            Self::Blocked { .. } => "blocked",
            Self::Unavailable(_) => "unavailable",
            Self::Unauthorized(_) => "unauthorized",
            Self::Misconfigured(_) => "misconfigured",
            Self::Rejected(_) => "rejected",
            Self::Store(_) => "store",
        }
    }
}

/// What `config check` found wrong with a route, by the key it belongs to.
#[derive(Debug, thiserror::Error)]
pub enum RouteProblem {
    #[error("{0}")]
    Pipeline(String),
    #[error("{0}")]
    Status(String),
    /// `deal_fields` names ids the account does not have.
    #[error("{0}")]
    DealFields(String),
    #[error("{0}")]
    Destination(DeliveryError),
}

/// Every configured destination, built once at start-up and shared by all workers.
pub type Connectors = Arc<BTreeMap<String, Connector>>;

/// Each CRM call of an operation is recorded here, for the lead's history.
pub type Calls = Vec<HistoryEvent>;

impl Connector {
    pub fn build(config: &DestinationConfig, store: Store, phone_region: PhoneRegion, blocked_pause: Duration) -> Self {
        match config {
            DestinationConfig::AmoCrm(amocrm) => Self::AmoCrm(AmoCrm::new(amocrm, store, phone_region, blocked_pause)),
            DestinationConfig::SessionCrm(own) => Self::SessionCrm(SessionCrm::new(own, &store)),
        }
    }

    pub fn supports(&self, operation: Operation) -> bool {
        match self {
            Self::AmoCrm(_) => AmoCrm::supports(operation),
            Self::SessionCrm(own) => own.supports(operation),
        }
    }

    /// The client the CRM knows by the lead's phone (or e-mail), if any.
    ///
    /// # Errors
    /// Every operation fails with a `DeliveryError` classifying the CRM's answer.
    pub async fn find_client(
        &self,
        lead: &Lead,
        route: &Route,
        search: Search,
        calls: &mut Calls,
    ) -> Result<Option<ClientFound>, DeliveryError> {
        match self {
            Self::AmoCrm(amocrm) => amocrm.find_client(lead, route, search, calls).await,
            // The configured look-ups say what the CRM is searched by, and it has no pipelines.
            Self::SessionCrm(own) => {
                let found = own.find_contact(calls, &LeadContext::new(lead, route)).await?;
                Ok(found.map(|found| ClientFound {
                    contact: CrmRef::new(EntityKind::Contact, found.id),
                    organization: found.organization_id.map(|id| CrmRef::new(EntityKind::Organization, id)),
                    deal: None,
                    responsible: None,
                }))
            }
        }
    }

    /// The contact's deal in the route's pipeline, if it has one.
    pub async fn find_deal_of(
        &self,
        contact: &CrmRef,
        route: &Route,
        calls: &mut Calls,
    ) -> Result<Option<CrmRef>, DeliveryError> {
        match self {
            Self::AmoCrm(amocrm) => amocrm.find_deal_of(contact, route, calls).await,
            Self::SessionCrm(_) => Err(unsupported(Operation::FindClientDeal)),
        }
    }

    /// A note on `deal` whose text starts with `first_line`.
    pub async fn find_note(
        &self,
        deal: &CrmRef,
        first_line: &str,
        calls: &mut Calls,
    ) -> Result<Option<CrmRef>, DeliveryError> {
        match self {
            Self::AmoCrm(amocrm) => amocrm.find_note(deal, first_line, calls).await,
            Self::SessionCrm(_) => Err(unsupported(Operation::FindNote)),
        }
    }

    pub async fn create_organization(
        &self,
        lead: &Lead,
        route: &Route,
        calls: &mut Calls,
    ) -> Result<CrmRef, DeliveryError> {
        match self {
            Self::AmoCrm(_) => Err(unsupported(Operation::CreateOrganization)),
            Self::SessionCrm(own) => {
                let id = own.create_organization(calls, &LeadContext::new(lead, route)).await?;
                Ok(CrmRef::new(EntityKind::Organization, id))
            }
        }
    }

    pub async fn create_contact(
        &self,
        lead: &Lead,
        route: &Route,
        organization: Option<&CrmRef>,
        calls: &mut Calls,
    ) -> Result<CrmRef, DeliveryError> {
        match self {
            Self::AmoCrm(amocrm) => amocrm.create_contact(lead, organization, calls).await,
            Self::SessionCrm(own) => {
                let organization = organization.map(|organization| organization.id.as_str());
                let id = own.create_contact(calls, &LeadContext::new(lead, route), organization).await?;
                Ok(CrmRef::new(EntityKind::Contact, id))
            }
        }
    }

    /// Creates the lead's deal (or ticket) on the contact, placed as the route says.
    pub async fn create_deal(
        &self,
        lead: &Lead,
        route: &Route,
        contact: &CrmRef,
        organization: Option<&CrmRef>,
        calls: &mut Calls,
    ) -> Result<CrmRef, DeliveryError> {
        match self {
            Self::AmoCrm(amocrm) => amocrm.create_deal(lead, route, contact, organization, calls).await,
            Self::SessionCrm(own) => {
                let organization = organization.map(|organization| organization.id.as_str());
                let context = LeadContext::new(lead, route);
                let ticket = own.create_ticket(calls, &context, &contact.id, organization).await?;
                Ok(CrmRef { kind: EntityKind::Ticket, id: ticket.id, number: ticket.number })
            }
        }
    }

    /// Moves the deal to the route's pipeline and stage; doing it twice changes nothing.
    pub async fn move_deal(&self, deal: &CrmRef, route: &Route, calls: &mut Calls) -> Result<(), DeliveryError> {
        match self {
            Self::AmoCrm(amocrm) => amocrm.move_deal(deal, route, calls).await,
            Self::SessionCrm(_) => Err(unsupported(Operation::MoveDeal)),
        }
    }

    /// Adds `text` to the lead's deal (a note) or ticket (a message); a CRM's message template
    /// may also read the lead's fields. `None`: the message template has nothing to write for
    /// this lead, and nothing was sent.
    pub async fn add_note(
        &self,
        lead: &Lead,
        route: &Route,
        deal: &CrmRef,
        text: &str,
        calls: &mut Calls,
    ) -> Result<Option<CrmRef>, DeliveryError> {
        match self {
            Self::AmoCrm(amocrm) => amocrm.add_note(deal, text, calls).await.map(Some),
            Self::SessionCrm(own) => {
                let id = own.add_message(calls, &LeadContext::new(lead, route), &deal.id, text).await?;
                Ok(id.map(|id| CrmRef::new(EntityKind::Message, id)))
            }
        }
    }

    pub async fn attach_file(
        &self,
        lead: &Lead,
        route: &Route,
        deal: &CrmRef,
        file: FileContent<'_>,
        calls: &mut Calls,
    ) -> Result<CrmRef, DeliveryError> {
        match self {
            Self::AmoCrm(_) => Err(unsupported(Operation::AttachFile)),
            Self::SessionCrm(own) => {
                let context = LeadContext::new(lead, route);
                let FileContent { attachment, content } = file;
                let (name, content_type) = (&attachment.name, &attachment.content_type);
                let id = own.attach_file(calls, &context, &deal.id, name, content_type, content).await?;
                Ok(CrmRef::new(EntityKind::File, id))
            }
        }
    }

    /// The CRM user the configuration names, as a `User` record.
    ///
    /// # Errors
    /// `Misconfigured` naming the user when the CRM has no such user or, for a name, several.
    pub async fn crm_user(&self, who: &UserRef, calls: &mut Calls) -> Result<CrmRef, DeliveryError> {
        match self {
            Self::AmoCrm(amocrm) => amocrm.crm_user(who, calls).await,
            Self::SessionCrm(_) => Err(unsupported(Operation::LogCall)),
        }
    }

    /// Makes the contact for a call from or to a number the CRM does not know.
    pub async fn create_auto_contact(&self, spec: &AutoContact, calls: &mut Calls) -> Result<CrmRef, DeliveryError> {
        match self {
            Self::AmoCrm(amocrm) => amocrm.create_auto_contact(spec, calls).await,
            Self::SessionCrm(_) => Err(unsupported(Operation::LogCall)),
        }
    }

    /// Makes the deal of an auto-contact in the route's pipeline and stage. A resumed delivery
    /// finds one an interrupted call made with `find_deal_of`.
    pub async fn create_auto_deal(
        &self,
        spec: &AutoDeal,
        route: &Route,
        calls: &mut Calls,
    ) -> Result<CrmRef, DeliveryError> {
        match self {
            Self::AmoCrm(amocrm) => amocrm.create_auto_deal(spec, route, calls).await,
            Self::SessionCrm(_) => Err(unsupported(Operation::LogCall)),
        }
    }

    /// Logs the call on the contact and answers the logged call (a `Call`). Logging it twice
    /// makes two: a resumed delivery asks `find_call` first.
    pub async fn log_call(
        &self,
        contact: &CrmRef,
        note: &CallNote,
        calls: &mut Calls,
    ) -> Result<CrmRef, DeliveryError> {
        match self {
            Self::AmoCrm(amocrm) => amocrm.log_call(contact, note, calls).await,
            Self::SessionCrm(_) => Err(unsupported(Operation::LogCall)),
        }
    }

    /// The call with this provider id already logged on the contact, if any.
    pub async fn find_call(
        &self,
        contact: &CrmRef,
        uniq: &str,
        calls: &mut Calls,
    ) -> Result<Option<CrmRef>, DeliveryError> {
        match self {
            Self::AmoCrm(amocrm) => amocrm.find_call(contact, uniq, calls).await,
            Self::SessionCrm(_) => Err(unsupported(Operation::LogCall)),
        }
    }

    /// The contact with this phone, its name and its open deals; part of logging calls.
    pub async fn caller(&self, phone: &Phone, calls: &mut Calls) -> Result<Option<Caller>, DeliveryError> {
        match self {
            Self::AmoCrm(amocrm) => amocrm.caller(phone, calls).await,
            Self::SessionCrm(_) => Err(unsupported(Operation::LogCall)),
        }
    }

    /// Where a person opens the record in the CRM, when the CRM has such a page.
    pub fn card_url(&self, record: &CrmRef) -> Option<String> {
        match self {
            Self::AmoCrm(amocrm) => amocrm.card_url(record),
            // The configured card is a ticket's.
            Self::SessionCrm(own) if record.kind == EntityKind::Ticket => {
                own.card_url(&record.id, record.number.as_deref())
            }
            Self::SessionCrm(_) => None,
        }
    }

    /// Checks a route against the account: the pipeline and stage exist, the credentials work.
    ///
    /// # Errors
    /// What is wrong, in words for `config check`.
    pub async fn check_route(&self, route: &Route) -> Result<(), RouteProblem> {
        match self {
            Self::AmoCrm(amocrm) => amocrm.check_route(route).await,
            Self::SessionCrm(own) => own.check().await.map_err(RouteProblem::Destination),
        }
    }
}

/// A flow asked for what the connector does not do; routes are checked against this at start,
/// so reaching it means a flow forgot to ask `supports` first.
fn unsupported(operation: Operation) -> DeliveryError {
    DeliveryError::Misconfigured(format!("this destination cannot {operation}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_and_refused_errors_read_as_alerts_look_for_them() {
        let blocked = DeliveryError::Blocked { retry_in: Duration::from_secs(60) }.to_string();
        assert!(blocked.starts_with(BLOCKED_ERROR_START), "{blocked}");
        let refused = DeliveryError::Unauthorized("POST /api/v4/leads answered 401".into()).to_string();
        assert!(refused.starts_with(UNAUTHORIZED_ERROR_START), "{refused}");
    }
}
