//! Decide and deliver: each flow's decision, written once against the connectors' contract, each create journaled before the next.
//!
//! The journal also names the create that was about to be sent, so a lead resumed after a crash
//! first looks for what that call may have made (where the CRM lets it look) instead of making
//! it twice.

use super::journal::{Found, Journal, Progress, Step};
use crate::config::{Route, SourceKind};
use crate::connectors::{ClientFound, Connector, DeliveryError, FileContent, Operation, Search};
use crate::domain::{CrmRef, Decision, Entity, HistoryEvent, Lead, Outcome};
use crate::store::FileStore;

/// Which decision a lead gets, by the kind of its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// The partner contract: a known client gets no new deal; an existing deal is moved.
    Partner,
    /// The listing portal: the client is found by phone or e-mail; an existing deal gets a note,
    /// a known client without one gets a new deal.
    Portal,
    /// A website lead: the client is found by phone or e-mail and every lead makes a deal (or
    /// ticket) with a note (repeats are caught at intake, by the duplicate check). A new client's
    /// organization comes first where the CRM keeps them, and files are attached where it takes them.
    Website,
    /// A phone call: logged on the client's contact, which an unknown caller may get made for them.
    Telephony,
}

impl Flow {
    pub fn of(kind: &SourceKind) -> Self {
        match kind {
            SourceKind::Partner { .. } => Self::Partner,
            SourceKind::Zap(_) => Self::Portal,
            SourceKind::Proxy(_) | SourceKind::Form(_) => Self::Website,
            SourceKind::Telephony(_) => Self::Telephony,
        }
    }

    /// What a destination must be able to do to take this flow's leads.
    pub fn needs(self) -> &'static [Operation] {
        use Operation::*;
        match self {
            Self::Partner => &[FindClient, FindClientDeal, CreateContact, CreateDeal, MoveDeal, AddNote],
            Self::Portal => &[FindClient, FindClientDeal, CreateContact, CreateDeal, AddNote],
            Self::Website => &[FindClient, CreateContact, CreateDeal],
            Self::Telephony => &[FindClient, CreateContact, CreateDeal, LogCall],
        }
    }

    /// The operations of this flow that `connector` lacks.
    pub fn unsupported_by(self, connector: &Connector) -> Vec<Operation> {
        self.needs().iter().copied().filter(|operation| !connector.supports(*operation)).collect()
    }

    fn search(self) -> Search {
        Search { by_email: self != Self::Partner, with_deal: self != Self::Website }
    }
}

/// One attempt at one lead.
pub struct Delivery<'a, 'j> {
    pub lead: &'a Lead,
    pub route: &'a Route,
    pub flow: Flow,
    pub connector: &'a Connector,
    pub files: &'a FileStore,
    pub journal: &'a mut Journal<'j>,
}

impl Delivery<'_, '_> {
    /// Takes the lead as far as it can from where `earlier` left it.
    ///
    /// # Errors
    /// Why it stopped; finished steps stay journaled either way.
    pub async fn run(mut self, earlier: Option<Progress>) -> Result<Outcome, DeliveryError> {
        let interrupted = earlier.as_ref().and_then(|progress| progress.started);
        let mut progress = earlier.unwrap_or_default();
        let found = match progress.found.clone() {
            Some(Found::New) if interrupted == Some(Step::Contact) => self.decide_again(&mut progress).await?,
            Some(found) => found,
            None => {
                let found = self.look_up().await?;
                self.journal.note(HistoryEvent::now("client_looked_up", found_detail(&found)));
                self.plan(&mut progress, found.clone());
                self.journal.record_step(&progress).await?;
                found
            }
        };
        let decision = match (&found, self.flow) {
            // Calls have a flow of their own (`call_flow`); the deliverer never sends one here.
            (_, Flow::Telephony) => {
                return Err(DeliveryError::Misconfigured("a call is not a lead of a lead flow".to_owned()));
            }
            (Found::New, _) => Decision::NewClient,
            (Found::Known { deal: Some(_), .. }, Flow::Portal) => Decision::KnownClientDealNoted,
            (Found::Known { .. }, Flow::Portal | Flow::Website) => Decision::KnownClientNewDeal,
            (Found::Known { contact, deal: None, .. }, Flow::Partner) => {
                return Ok(self.outcome(Decision::KnownClientWithoutDeal, &found, &used(contact)));
            }
            (Found::Known { contact, deal: Some(deal), .. }, Flow::Partner) => {
                // Moving a deal to a stage is idempotent, so it needs no journal entry of its own.
                self.connector.move_deal(deal, self.route, self.journal.calls()).await?;
                let progress = Progress { contact: Some(contact.clone()), deal: Some(deal.clone()), ..used(contact) };
                return Ok(self.outcome(Decision::KnownClientDealMoved, &found, &progress));
            }
        };
        self.create(&mut progress, interrupted, &found).await?;
        Ok(self.outcome(decision, &found, &progress))
    }

    async fn look_up(&mut self) -> Result<Found, DeliveryError> {
        let found = self.connector.find_client(self.lead, self.route, self.flow.search(), self.journal.calls()).await?;
        Ok(match found {
            None => Found::New,
            Some(ClientFound { contact, organization, deal, responsible }) => {
                Found::Known { contact, organization, deal, responsible }
            }
        })
    }

    /// Records the look-up and what it leaves to create: everything for a new client; for a
    /// known one, what its flow adds to the contact (and deal) it has.
    fn plan(&self, progress: &mut Progress, found: Found) {
        if let Found::Known { contact, organization, deal, .. } = &found {
            progress.contact = Some(contact.clone());
            progress.organization.clone_from(organization);
            if self.flow == Flow::Portal {
                progress.deal.clone_from(deal);
            }
        }
        let creates = !matches!((&found, self.flow), (Found::Known { .. }, Flow::Partner));
        progress.found = Some(found);
        progress.started = if creates { self.next_step(progress) } else { None };
    }

    /// A "new client" lead whose contact create was cut short: the create may have happened,
    /// and while the lead waited for its retry, other leads of the same client may have been
    /// delivered. Acting on the old look-up could make a second deal, so the CRM is asked again:
    /// a contact without a deal in the pipeline is taken as this lead's (it is ours, or creating
    /// our deal for it duplicates nothing); a contact with such a deal makes this a known client.
    async fn decide_again(&mut self, progress: &mut Progress) -> Result<Found, DeliveryError> {
        let now = self.look_up().await?;
        self.journal.note(HistoryEvent::now("client_looked_up_again", found_detail(&now)));
        let found = match now {
            Found::New => return Ok(Found::New),
            Found::Known { contact, organization, deal: None, .. } => {
                progress.contact = Some(contact);
                if progress.organization.is_none() {
                    progress.organization = organization;
                }
                progress.started = self.next_step(progress);
                Found::New
            }
            known @ Found::Known { deal: Some(_), .. } => {
                self.plan(progress, known.clone());
                known
            }
        };
        self.journal.record_step(progress).await?;
        Ok(found)
    }

    /// Makes whatever of organization, contact, deal, note and files the plan still lacks,
    /// each journaled before the next.
    async fn create(
        &mut self,
        progress: &mut Progress,
        interrupted: Option<Step>,
        found: &Found,
    ) -> Result<(), DeliveryError> {
        let (connector, lead, route) = (self.connector, self.lead, self.route);
        if progress.contact.is_none() && self.makes_organization(progress, found) {
            let organization = connector.create_organization(lead, route, self.journal.calls()).await?;
            progress.organization = Some(organization);
            self.step_done(progress).await?;
        }
        let contact = match &progress.contact {
            Some(contact) => contact.clone(),
            None => {
                let organization = progress.organization.as_ref();
                let contact = connector.create_contact(lead, route, organization, self.journal.calls()).await?;
                progress.contact = Some(contact.clone());
                self.step_done(progress).await?;
                contact
            }
        };
        let deal = match &progress.deal {
            Some(deal) => deal.clone(),
            None => {
                let earlier = if interrupted == Some(Step::Deal) && connector.supports(Operation::FindClientDeal) {
                    connector.find_deal_of(&contact, route, self.journal.calls()).await?
                } else {
                    None
                };
                let deal = match earlier {
                    Some(deal) => deal,
                    None => {
                        let organization = progress.organization.as_ref();
                        connector.create_deal(lead, route, &contact, organization, self.journal.calls()).await?
                    }
                };
                progress.deal = Some(deal.clone());
                self.step_done(progress).await?;
                deal
            }
        };
        if self.note_due(progress) {
            let first_line = note_first_line(lead);
            let earlier = if interrupted == Some(Step::Note) && connector.supports(Operation::FindNote) {
                connector.find_note(&deal, &first_line, self.journal.calls()).await?
            } else {
                None
            };
            let note = match earlier {
                Some(note) => Some(note),
                None => {
                    let text = note_text(lead, !connector.supports(Operation::AttachFile));
                    connector.add_note(lead, route, &deal, &text, self.journal.calls()).await?
                }
            };
            if note.is_none() {
                let reason = "the CRM's message template has nothing to write for this lead";
                self.journal.note(HistoryEvent::now("note_skipped", serde_json::json!({ "reason": reason })));
            }
            progress.note_skipped = note.is_none();
            progress.note = note;
            self.step_done(progress).await?;
        }
        if connector.supports(Operation::AttachFile) {
            let attachments = &lead.fields.deal.attachments;
            while let Some(attachment) = attachments.get(progress.files.len()) {
                let content = self.files.content(&attachment.sha256).await.map_err(|error| {
                    DeliveryError::Misconfigured(format!(
                        "the lead's file «{}» cannot be read from the file store: {error}",
                        attachment.name
                    ))
                })?;
                let file = FileContent { attachment, content };
                let attached = connector.attach_file(lead, route, &deal, file, self.journal.calls()).await?;
                progress.files.push(attached);
                self.step_done(progress).await?;
            }
        }
        Ok(())
    }

    /// Journals the step just finished, naming the one about to start.
    async fn step_done(&mut self, progress: &mut Progress) -> Result<(), DeliveryError> {
        progress.started = self.next_step(progress);
        self.journal.record_step(progress).await?;
        Ok(())
    }

    /// The create that comes next, given what is made and what the destination does.
    fn next_step(&self, progress: &Progress) -> Option<Step> {
        let found = progress.found.as_ref()?;
        if progress.contact.is_none() {
            return Some(if self.makes_organization(progress, found) { Step::Organization } else { Step::Contact });
        }
        if progress.deal.is_none() {
            return Some(Step::Deal);
        }
        if self.note_due(progress) {
            return Some(Step::Note);
        }
        let attaches = self.connector.supports(Operation::AttachFile);
        (attaches && progress.files.len() < self.lead.fields.deal.attachments.len()).then_some(Step::File)
    }

    fn note_due(&self, progress: &Progress) -> bool {
        progress.note.is_none() && !progress.note_skipped && self.connector.supports(Operation::AddNote)
    }

    /// A new client's organization comes first, where the CRM keeps them.
    fn makes_organization(&self, progress: &Progress, found: &Found) -> bool {
        *found == Found::New
            && progress.organization.is_none()
            && self.connector.supports(Operation::CreateOrganization)
    }

    /// The outcome: every record the lead made or used, with a link to its card.
    fn outcome(&self, decision: Decision, found: &Found, progress: &Progress) -> Outcome {
        let (known_organization, known_deal) = match found {
            Found::Known { organization, deal, .. } => (organization.as_ref(), deal.as_ref()),
            Found::New => (None, None),
        };
        let entity =
            |record: &CrmRef, made: bool| Entity { record: record.clone(), made, url: self.connector.card_url(record) };
        let mut entities = Vec::new();
        if let Some(organization) = &progress.organization {
            entities.push(entity(organization, Some(organization) != known_organization));
        }
        if let Some(contact) = &progress.contact {
            entities.push(entity(contact, *found == Found::New));
        }
        if let Some(deal) = &progress.deal {
            entities.push(entity(deal, Some(deal) != known_deal));
        }
        entities.extend(progress.note.iter().chain(&progress.files).map(|record| entity(record, true)));
        Outcome { decision, entities }
    }
}

/// The progress of a lead that only uses the contact it found.
fn used(contact: &CrmRef) -> Progress {
    Progress { contact: Some(contact.clone()), ..Progress::default() }
}

fn found_detail(found: &Found) -> serde_json::Value {
    serde_json::to_value(found).unwrap_or_default()
}

/// The note's first line; it lets a resumed lead recognise a note it already wrote.
fn note_first_line(lead: &Lead) -> String {
    format!("Заявка leadgate #{} (источник «{}»)", lead.id, lead.fields.source)
}

/// Every field the sender gave, so nobody has to open the gateway to read the lead; with the
/// files' links when the CRM does not take the files themselves.
fn note_text(lead: &Lead, with_file_links: bool) -> String {
    let fields = &lead.fields;
    let mut lines = vec![
        note_first_line(lead),
        format!("Имя: {}", fields.name),
        format!("Телефон: {} (получен как «{}»)", fields.phone, fields.phone.raw()),
    ];
    if let Some(email) = &fields.email {
        lines.push(format!("E-mail: {email}"));
    }
    if let Some(comment) = &fields.comment {
        lines.push(format!("Комментарий: {comment}"));
    }
    if with_file_links && !fields.deal.attachments.is_empty() {
        lines.push("Файлы:".to_owned());
        for file in &fields.deal.attachments {
            lines.push(format!("  {} ({}, {} байт): {}", file.name, file.content_type, file.size, file.url));
        }
    }
    let consent = fields.payload.get("consent").filter(|consent| consent["given"] == true);
    if let Some(consent) = consent {
        let text = |key: &str| consent[key].as_str().unwrap_or_default().to_owned();
        lines.push(format!(
            "Согласие на обработку персональных данных дано {}: «{}» (политика: {})",
            text("at"),
            text("text"),
            text("policy_url")
        ));
    }
    if let Some(object) = fields.payload.as_object() {
        lines.push("Все поля заявки:".to_owned());
        for (key, value) in object.iter().filter(|(key, _)| consent.is_none() || key.as_str() != "consent") {
            let value = match value {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            lines.push(format!("  {key}: {value}"));
        }
    }
    lines.join("\n")
}
