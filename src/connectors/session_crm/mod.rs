//! The session CRM connector: a company's own CRM behind a cookie login and a CSRF header, its calls as templates.

mod context;
mod endpoint;
mod session;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use bytes::Bytes;
use minijinja::{Environment, Value};
use reqwest_cookie_store::CookieStoreMutex;
use url::Url;

use crate::config::{Endpoint, SessionCrmApi, SessionCrmConfig, Template};
use crate::connectors::transport::{Body, Transport};
use crate::connectors::{DeliveryError, Operation};
use crate::domain::HistoryEvent;
use crate::store::{SharedRateBudget, Store};
use context::Extras;
pub use context::LeadContext;
use endpoint::{Answer, File, Mode, Payload, Prepared};
use session::Session;

pub struct SessionCrm {
    transport: Transport,
    session: Session,
    /// Boxed so that `Connector`'s variants stay alike in size.
    calls: Box<Calls>,
}

/// What the configured calls are made from.
struct Calls {
    base_url: Url,
    api: SessionCrmApi,
    card_url: Option<Template>,
    templates: Environment<'static>,
}

/// A contact the CRM already has, and its organisation when the lookup reads one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundContact {
    pub id: String,
    pub organization_id: Option<String>,
}

/// A ticket just made: its id for further calls, its number for people, when the CRM gives one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTicket {
    pub id: String,
    pub number: Option<String>,
}

impl SessionCrm {
    pub fn new(config: &SessionCrmConfig, store: &Store) -> Self {
        Self::with_budget(config, store.shared_rate_budget(&config.name, config.requests_per_second))
    }

    fn with_budget(config: &SessionCrmConfig, shared_budget: Option<SharedRateBudget>) -> Self {
        // One jar per destination: two accounts on one host must not mix their sessions.
        let jar = Arc::new(CookieStoreMutex::default());
        let transport = Transport::with_cookies(
            &config.name,
            config.timeout,
            config.requests_per_second,
            shared_budget,
            Arc::clone(&jar),
        );
        tracing::debug!(destination = %config.name, "session CRM destination ready");
        let calls = Calls {
            base_url: config.base_url.clone(),
            api: (*config.api).clone(),
            card_url: config.card_url.clone(),
            templates: endpoint::environment(),
        };
        Self { transport, session: Session::new(config, jar), calls: Box::new(calls) }
    }

    /// The account's rate pause and its login, as they stand now.
    pub fn status(&self) -> crate::connectors::status::ConnectorStatus {
        crate::connectors::status::ConnectorStatus {
            kind: "session_crm",
            requests_per_second: self.transport.requests_per_second,
            paused: self.transport.limiter.paused(),
            login: crate::connectors::status::Login::Session(self.session.login()),
        }
    }

    /// What the configured calls let it do: no pipelines, so no deal look-ups or moves, no
    /// way to search tickets or messages for one an interrupted call may have made, and no
    /// calls to log.
    pub fn supports(&self, operation: Operation) -> bool {
        match operation {
            Operation::FindClient | Operation::CreateContact | Operation::CreateDeal => true,
            Operation::CreateOrganization => self.makes_organizations(),
            Operation::AddNote => self.adds_messages(),
            Operation::AttachFile => self.attaches_files(),
            Operation::FindClientDeal | Operation::FindNote | Operation::MoveDeal | Operation::LogCall => false,
        }
    }

    /// Tries each configured lookup in order until one finds the contact; a lookup that needs a
    /// value the lead lacks (an e-mail, say) is skipped without a call.
    ///
    /// # Errors
    /// As for every call: see `call`.
    pub async fn find_contact(
        &self,
        calls: &mut Vec<HistoryEvent>,
        lead: &LeadContext,
    ) -> Result<Option<FoundContact>, DeliveryError> {
        let context = lead.with(&Extras::default());
        let many = self.calls.api.find_contact.len() > 1;
        for (index, endpoint) in self.calls.api.find_contact.iter().enumerate() {
            let call = if many { format!("find_contact.{index}") } else { "find_contact".to_owned() };
            let Some(answer) = self.call(calls, &call, endpoint, &context, Mode::Lookup, None).await? else {
                continue;
            };
            if let Some(id) = answer.read(&endpoint.id) {
                let organization_id = endpoint.organization_id.as_deref().and_then(|pointer| answer.read(pointer));
                return Ok(Some(FoundContact { id, organization_id }));
            }
        }
        Ok(None)
    }

    /// Whether contacts get an organisation of their own (`create_organization` is configured).
    pub fn makes_organizations(&self) -> bool {
        self.calls.api.create_organization.is_some()
    }

    /// # Errors
    /// `Misconfigured` when `create_organization` is not configured; otherwise as for every call.
    pub async fn create_organization(
        &self,
        calls: &mut Vec<HistoryEvent>,
        lead: &LeadContext,
    ) -> Result<String, DeliveryError> {
        let endpoint = configured(self.calls.api.create_organization.as_ref(), "create_organization")?;
        self.create(calls, "create_organization", endpoint, &lead.with(&Extras::default()), None)
            .await
            .map(|(id, _)| id)
    }

    /// # Errors
    /// As for every call.
    pub async fn create_contact(
        &self,
        calls: &mut Vec<HistoryEvent>,
        lead: &LeadContext,
        organization_id: Option<&str>,
    ) -> Result<String, DeliveryError> {
        let context = lead.with(&Extras { organization_id, ..Extras::default() });
        self.create(calls, "create_contact", &self.calls.api.create_contact, &context, None).await.map(|(id, _)| id)
    }

    /// # Errors
    /// As for every call.
    pub async fn create_ticket(
        &self,
        calls: &mut Vec<HistoryEvent>,
        lead: &LeadContext,
        contact_id: &str,
        organization_id: Option<&str>,
    ) -> Result<CreatedTicket, DeliveryError> {
        let context = lead.with(&Extras { contact_id: Some(contact_id), organization_id, ..Extras::default() });
        let (id, answer) = self.create(calls, "create_ticket", &self.calls.api.create_ticket, &context, None).await?;
        let number = self.calls.api.create_ticket.number.as_deref().and_then(|pointer| answer.read(pointer));
        Ok(CreatedTicket { id, number })
    }

    /// Whether `add_message` is configured.
    pub fn adds_messages(&self) -> bool {
        self.calls.api.add_message.is_some()
    }

    /// Posts `text` to the ticket. Templates see it as `message`; `lead.comment` stays the
    /// visitor's own comment, which is what the default template sends. `None`: the
    /// template has nothing to write for this lead, and nothing is sent.
    ///
    /// # Errors
    /// `Misconfigured` when `add_message` is not configured; otherwise as for every call.
    pub async fn add_message(
        &self,
        calls: &mut Vec<HistoryEvent>,
        lead: &LeadContext,
        ticket_id: &str,
        text: &str,
    ) -> Result<Option<String>, DeliveryError> {
        let endpoint = configured(self.calls.api.add_message.as_ref(), "add_message")?;
        let context = lead.with(&Extras { ticket_id: Some(ticket_id), message: Some(text), ..Extras::default() });
        // A body that reads only what this lead lacks (`lead.comment` of a lead without one)
        // would post an empty message, which a CRM refuses or keeps as noise.
        if self.renders_nothing("add_message", endpoint, &context)? {
            return Ok(None);
        }
        self.create(calls, "add_message", endpoint, &context, None).await.map(|(id, _)| Some(id))
    }

    /// Whether every body field of `endpoint` renders empty (or needs an absent value).
    fn renders_nothing(&self, call: &str, endpoint: &Endpoint, context: &Value) -> Result<bool, DeliveryError> {
        for (field, template) in &endpoint.body {
            let name = format!("api.{call}.body.{field}");
            if endpoint::render(&self.calls.templates, &name, template, context)?.is_some_and(|text| !text.is_empty()) {
                return Ok(false);
            }
        }
        Ok(!endpoint.body.is_empty())
    }

    /// Whether `attach_file` is configured; without it, files go into the message as links.
    pub fn attaches_files(&self) -> bool {
        self.calls.api.attach_file.is_some()
    }

    /// Uploads one file to the ticket as a multipart body; templates also see `file_name`.
    ///
    /// # Errors
    /// `Misconfigured` when `attach_file` is not configured; otherwise as for every call.
    pub async fn attach_file(
        &self,
        calls: &mut Vec<HistoryEvent>,
        lead: &LeadContext,
        ticket_id: &str,
        name: &str,
        content_type: &str,
        content: Bytes,
    ) -> Result<String, DeliveryError> {
        let endpoint = configured(self.calls.api.attach_file.as_ref(), "attach_file")?;
        let context = lead.with(&Extras { ticket_id: Some(ticket_id), file_name: Some(name), ..Extras::default() });
        let file = File { name, content_type, content };
        self.create(calls, "attach_file", endpoint, &context, Some(file)).await.map(|(id, _)| id)
    }

    /// The ticket's card for people (e-mails, history), when `card_url` is set and can be made.
    pub fn card_url(&self, id: &str, number: Option<&str>) -> Option<String> {
        let template = self.calls.card_url.as_ref()?;
        let mut context = std::collections::BTreeMap::from([("id".to_owned(), Value::from(id))]);
        if let Some(number) = number {
            context.insert("number".to_owned(), Value::from(number));
        }
        endpoint::render(&self.calls.templates, "card_url", template, &Value::from(context)).ok().flatten()
    }

    /// Logs in, for `config check`.
    ///
    /// # Errors
    /// Why the login failed.
    pub async fn check(&self) -> Result<(), DeliveryError> {
        self.session.current(&self.transport, &mut Vec::new()).await.map(|_| ())
    }

    /// A call that makes something: its answer must hold the id.
    async fn create(
        &self,
        calls: &mut Vec<HistoryEvent>,
        call: &str,
        endpoint: &Endpoint,
        context: &Value,
        file: Option<File<'_>>,
    ) -> Result<(String, Answer), DeliveryError> {
        let answer = self.call(calls, call, endpoint, context, Mode::Create, file).await?;
        let answer = answer.ok_or_else(|| DeliveryError::Misconfigured(format!("{call} could not be prepared")))?;
        match answer.read(&endpoint.id) {
            Some(id) => Ok((id, answer)),
            // The CRM accepted the call, so the record may well exist: retrying may duplicate it,
            // but dropping the lead would lose it, and an operator can see the history.
            None => Err(DeliveryError::Unavailable(format!(
                "{call}: the answer has no id at {}; the CRM may have made the record anyway",
                endpoint.id
            ))),
        }
    }

    /// Sends one configured call within the session: logged in first when needed, and logged in
    /// again and repeated once when the CRM answers that the session is gone. `None` when a
    /// lookup is skipped.
    ///
    /// # Errors
    /// `Unauthorized` when the login fails or the CRM refuses the session again right after a
    /// fresh login; `RateLimited` on 429; `Unavailable` on 5xx, timeouts and network errors (the
    /// call may have been carried out); `Rejected` on 400 and 422; `Misconfigured` otherwise.
    async fn call(
        &self,
        calls: &mut Vec<HistoryEvent>,
        call: &str,
        endpoint: &Endpoint,
        context: &Value,
        mode: Mode,
        file: Option<File<'_>>,
    ) -> Result<Option<Answer>, DeliveryError> {
        let prepared =
            endpoint::prepare(&self.calls.templates, call, endpoint, context, &self.calls.base_url, mode, file)?;
        let Some(Prepared { method, url, body }) = prepared else {
            return Ok(None);
        };
        let label = format!("{call} ({method} {})", url.path());
        let mut relogged = false;
        loop {
            let generation = self.session.current(&self.transport, calls).await?;
            let body = match &body {
                Payload::None => Body::None,
                Payload::Json(fields) => Body::Json(fields),
                Payload::Upload(upload) => Body::Multipart(upload),
            };
            let reply = self
                .transport
                .send_with_headers(calls, method.clone(), url.clone(), None, body, || self.session.csrf_header(&url))
                .await?;
            if self.session.is_gone(&reply, &url) {
                if relogged {
                    // A fresh session refused as well: the account lacks the right (403 is also
                    // a plain denial), or the configuration names the wrong statuses. Another
                    // login would only loop, and the session itself may be fine.
                    return Err(DeliveryError::Unauthorized(format!(
                        "{label} answered {} again right after a fresh login",
                        reply.status
                    )));
                }
                self.session.ended(generation).await;
                relogged = true;
                continue;
            }
            return endpoint::interpret(reply, &label, &self.transport.limiter, &|text| self.session.redact(text))
                .map(Some);
        }
    }
}

fn configured<'a>(endpoint: Option<&'a Endpoint>, call: &str) -> Result<&'a Endpoint, DeliveryError> {
    endpoint.ok_or_else(|| DeliveryError::Misconfigured(format!("api.{call} is not configured")))
}
