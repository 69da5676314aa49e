//! The CRM's records (organizations, contacts, tickets with their messages and files) and their id counters.

use std::collections::BTreeMap;

use serde::Serialize;

// Each kind of record counts from its own range, so a client that sends one kind's id where
// another is expected gets a 404 or 422 instead of silently hitting an unrelated record.
const FIRST_ORGANIZATION_ID: u64 = 101;
const FIRST_CONTACT_ID: u64 = 2001;
const FIRST_TICKET_ID: u64 = 30001;
const FIRST_MESSAGE_ID: u64 = 400_001;
const FIRST_FILE_ID: u64 = 500_001;
/// Ticket numbers are what a person is told; they start elsewhere than ids on purpose.
const FIRST_TICKET_NUMBER: u64 = 123;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Organization {
    pub id: u64,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Contact {
    pub id: u64,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub organization_id: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Message {
    pub id: u64,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Attachment {
    pub id: u64,
    pub file_name: String,
    pub content_type: String,
    pub size: usize,
    /// The message the file was attached to, when the upload named one.
    pub message_id: Option<u64>,
    #[serde(skip)]
    pub content: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ticket {
    pub id: u64,
    /// The human ticket number, `T-000123`.
    pub number: String,
    pub service: String,
    pub subject: String,
    pub description: String,
    pub contact_id: u64,
    pub partner_id: Option<u64>,
    pub messages: Vec<Message>,
    pub files: Vec<Attachment>,
}

/// What a new contact is made of, already validated.
#[derive(Debug)]
pub struct NewContact {
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub organization_id: Option<u64>,
}

/// What a new ticket is made of, already validated.
#[derive(Debug)]
pub struct NewTicket {
    pub service: String,
    pub subject: String,
    pub description: String,
    pub contact_id: u64,
    pub partner_id: Option<u64>,
}

/// What an uploaded file is made of, already within the size limit.
#[derive(Debug)]
pub struct NewAttachment {
    pub file_name: String,
    pub content_type: String,
    pub message_id: Option<u64>,
    pub content: Vec<u8>,
}

#[derive(Debug)]
struct Counters {
    organization: u64,
    contact: u64,
    ticket: u64,
    ticket_number: u64,
    message: u64,
    file: u64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            organization: FIRST_ORGANIZATION_ID,
            contact: FIRST_CONTACT_ID,
            ticket: FIRST_TICKET_ID,
            ticket_number: FIRST_TICKET_NUMBER,
            message: FIRST_MESSAGE_ID,
            file: FIRST_FILE_ID,
        }
    }
}

fn take(counter: &mut u64) -> u64 {
    let id = *counter;
    *counter += 1;
    id
}

fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

#[derive(Debug, Default)]
pub struct Records {
    pub organizations: BTreeMap<u64, Organization>,
    pub contacts: BTreeMap<u64, Contact>,
    pub tickets: BTreeMap<u64, Ticket>,
    counters: Counters,
}

impl Records {
    pub fn add_organization(&mut self, name: String) -> Organization {
        let organization = Organization { id: take(&mut self.counters.organization), name };
        self.organizations.insert(organization.id, organization.clone());
        organization
    }

    pub fn add_contact(&mut self, new: NewContact) -> Contact {
        let contact = Contact {
            id: take(&mut self.counters.contact),
            name: new.name,
            email: new.email,
            phone: new.phone,
            organization_id: new.organization_id,
        };
        self.contacts.insert(contact.id, contact.clone());
        contact
    }

    pub fn add_ticket(&mut self, new: NewTicket) -> Ticket {
        let ticket = Ticket {
            id: take(&mut self.counters.ticket),
            number: format!("T-{:06}", take(&mut self.counters.ticket_number)),
            service: new.service,
            subject: new.subject,
            description: new.description,
            contact_id: new.contact_id,
            partner_id: new.partner_id,
            messages: Vec::new(),
            files: Vec::new(),
        };
        self.tickets.insert(ticket.id, ticket.clone());
        ticket
    }

    /// `None` when the ticket does not exist.
    pub fn add_message(&mut self, ticket_id: u64, text: String) -> Option<Message> {
        let ticket = self.tickets.get_mut(&ticket_id)?;
        let message = Message { id: take(&mut self.counters.message), text };
        ticket.messages.push(message.clone());
        Some(message)
    }

    /// `None` when the ticket does not exist.
    pub fn add_attachment(&mut self, ticket_id: u64, new: NewAttachment) -> Option<Attachment> {
        let ticket = self.tickets.get_mut(&ticket_id)?;
        let attachment = Attachment {
            id: take(&mut self.counters.file),
            file_name: new.file_name,
            content_type: new.content_type,
            size: new.content.len(),
            message_id: new.message_id,
            content: new.content,
        };
        ticket.files.push(attachment.clone());
        Some(attachment)
    }

    /// Contacts matching every given filter. E-mails compare without regard to case and
    /// phones by their digits, so `+7 (999) 123-45-67` finds `79991234567`: the CRM is
    /// assumed to normalise what people typed, not to know national trunk prefixes.
    pub fn find_contacts(&self, email: Option<&str>, phone: Option<&str>) -> Vec<Contact> {
        let wanted_digits = phone.map(digits);
        self.contacts
            .values()
            .filter(|contact| {
                email.is_none_or(|email| contact.email.as_deref().is_some_and(|own| own.eq_ignore_ascii_case(email)))
            })
            .filter(|contact| {
                wanted_digits.as_deref().is_none_or(|wanted| {
                    contact.phone.as_deref().is_some_and(|own| !wanted.is_empty() && digits(own) == wanted)
                })
            })
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(email: Option<&str>, phone: Option<&str>) -> NewContact {
        NewContact {
            name: "Анна".to_owned(),
            email: email.map(str::to_owned),
            phone: phone.map(str::to_owned),
            organization_id: None,
        }
    }

    #[test]
    fn ticket_numbers_are_padded_and_independent_of_ids() {
        let mut records = Records::default();
        let new = || NewTicket {
            service: "s".to_owned(),
            subject: "x".to_owned(),
            description: String::new(),
            contact_id: 1,
            partner_id: None,
        };
        let first = records.add_ticket(new());
        let second = records.add_ticket(new());
        assert_eq!((first.number.as_str(), second.number.as_str()), ("T-000123", "T-000124"));
        assert_ne!(first.id.to_string(), first.number.trim_start_matches("T-"));
    }

    #[test]
    fn contacts_are_found_by_email_in_any_case_and_by_phone_digits() {
        let mut records = Records::default();
        let anna = records.add_contact(contact(Some("Anna@Example.com"), Some("+7 (999) 123-45-67")));
        records.add_contact(contact(None, Some("+79990000000")));

        assert_eq!(records.find_contacts(Some("anna@example.com"), None), vec![anna.clone()]);
        assert_eq!(records.find_contacts(None, Some("79991234567")), vec![anna.clone()]);
        assert!(records.find_contacts(None, Some("9991234567")).is_empty());
        assert!(records.find_contacts(Some("anna@example.com"), Some("+79990000000")).is_empty());
    }

    #[test]
    fn messages_and_files_need_an_existing_ticket() {
        let mut records = Records::default();
        assert!(records.add_message(1, "x".to_owned()).is_none());
        let file = NewAttachment {
            file_name: "a.txt".to_owned(),
            content_type: "text/plain".to_owned(),
            message_id: None,
            content: vec![1, 2, 3],
        };
        assert!(records.add_attachment(1, file).is_none());
    }
}
