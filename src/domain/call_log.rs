//! What a call leaves in the CRM: its note on the client's contact and, for a number the CRM does not know, the contact and deal made for it.
//!
//! The names below are the product's spellings (Telphin's amoCRM widget made them familiar);
//! reports and people search the CRM by them, so they live here once.

use url::Url;

use super::call::{CallResult, Direction};
use super::{CrmRef, Phone};

impl Direction {
    /// The name of the deal made for an unknown number: «Входящий +79161234567».
    pub fn deal_name(self, client: &Phone) -> String {
        let word = match self {
            Self::Incoming => "Входящий",
            Self::Outgoing => "Исходящий",
        };
        format!("{word} {}", client.e164())
    }
}

/// What became of a call, as amoCRM's `call_status` codes say it (1–8, the codes of its PHP
/// client's `CallInterface`). The gateway writes 4 to 8, as `CallStatus::of` maps a
/// call's result; 1 to 3 complete amoCRM's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CallStatus {
    VoiceMessage = 1,
    CallBackLater = 2,
    NotAvailable = 3,
    /// The conversation took place.
    Answered = 4,
    WrongNumber = 5,
    /// Nobody answered: a missed incoming call, or an outgoing one not picked up.
    NotReached = 6,
    Busy = 7,
    Undefined = 8,
}

impl CallStatus {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// A call's result as amoCRM's `call_status` of its note: conversation, wrong number, not
    /// reached, busy, undefined.
    pub fn of(result: CallResult) -> Self {
        match result {
            CallResult::Answered => Self::Answered,
            CallResult::WrongNumber => Self::WrongNumber,
            CallResult::NoAnswer | CallResult::Cancelled => Self::NotReached,
            CallResult::Busy => Self::Busy,
            CallResult::Failed => Self::Undefined,
        }
    }
}

/// A call to log on the client's contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallNote {
    pub direction: Direction,
    /// The provider's id of the call (`uniq`): how a logged call is recognised again.
    pub uniq: String,
    /// The client's number.
    pub phone: Phone,
    /// Talk seconds for an answered call, waiting seconds for a missed one.
    pub duration_seconds: u32,
    pub call_status: CallStatus,
    /// Who answered or called (a `User`); for a missed incoming call, the contact's responsible user.
    pub responsible: Option<CrmRef>,
    /// The recording, when there is one.
    pub link: Option<Url>,
}

/// Which auto-contact a call makes for a number the CRM does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AutoContactKind {
    /// An answered incoming call; responsible: who answered.
    Incoming,
    /// A missed incoming call; responsible: the user configured for missed calls.
    IncomingMissed,
    /// An outgoing call; responsible: the caller.
    Outgoing,
}

impl AutoContactKind {
    pub fn contact_name(self) -> &'static str {
        match self {
            Self::Incoming => "Автоконтакт: Входящий",
            Self::IncomingMissed => "Автоконтакт: Входящий-пропущенный",
            Self::Outgoing => "Автоконтакт: Исходящий",
        }
    }
}

/// A contact made for a number the CRM does not know: the number goes to the work-phone field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoContact {
    pub name: String,
    pub phone: Phone,
    pub responsible: Option<CrmRef>,
    pub tags: Vec<String>,
}

impl AutoContact {
    /// The product's auto-contact: named by its kind and tagged with the number the client
    /// called (`dialled`, ours, in E.164) when there is one.
    pub fn new(kind: AutoContactKind, client: Phone, responsible: Option<CrmRef>, dialled: Option<&Phone>) -> Self {
        Self {
            name: kind.contact_name().to_owned(),
            phone: client,
            responsible,
            tags: dialled.map(|number| number.e164().to_owned()).into_iter().collect(),
        }
    }
}

/// A deal made with an auto-contact, in the route's pipeline and stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoDeal {
    pub name: String,
    pub contact: CrmRef,
    pub responsible: Option<CrmRef>,
}

impl AutoDeal {
    /// «Входящий +79161234567» or «Исходящий +79161234567», named by the client's number.
    pub fn new(direction: Direction, client: &Phone, contact: CrmRef, responsible: Option<CrmRef>) -> Self {
        Self { name: direction.deal_name(client), contact, responsible }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EntityKind, PhoneRegion};

    fn phone(text: &str) -> Phone {
        Phone::parse(text, PhoneRegion::RUSSIA).expect("a valid phone")
    }

    #[test]
    fn call_results_map_to_the_amocrm_call_statuses_of_the_facts_table() {
        let table = [
            (CallResult::Answered, 4),
            (CallResult::WrongNumber, 5),
            (CallResult::NoAnswer, 6),
            (CallResult::Cancelled, 6),
            (CallResult::Busy, 7),
            (CallResult::Failed, 8),
        ];
        for (result, status) in table {
            assert_eq!(CallStatus::of(result).code(), status, "{result:?}");
        }
    }

    #[test]
    fn auto_deals_are_named_by_direction_and_the_client_number_in_e164() {
        let contact = CrmRef::new(EntityKind::Contact, "1001");
        let incoming = AutoDeal::new(Direction::Incoming, &phone("8 (916) 123-45-67"), contact.clone(), None);
        let outgoing = AutoDeal::new(Direction::Outgoing, &phone("+7 916 123 45 67"), contact, None);
        assert_eq!(incoming.name, "Входящий +79161234567");
        assert_eq!(outgoing.name, "Исходящий +79161234567");
    }

    #[test]
    fn auto_contacts_carry_the_product_names_and_our_dialled_number_as_tag() {
        let anna = Some(CrmRef::new(EntityKind::User, "6000002"));
        let missed = AutoContact::new(
            AutoContactKind::IncomingMissed,
            phone("89161234567"),
            anna,
            Some(&phone("8 495 123-45-67")),
        );
        let outgoing = AutoContact::new(AutoContactKind::Outgoing, phone("89161234567"), None, None);
        assert_eq!(missed.name, "Автоконтакт: Входящий-пропущенный");
        assert_eq!(missed.phone.e164(), "+79161234567");
        assert_eq!(missed.tags, ["+74951234567"]);
        assert_eq!(AutoContactKind::Incoming.contact_name(), "Автоконтакт: Входящий");
        assert_eq!((outgoing.name.as_str(), outgoing.tags.len()), ("Автоконтакт: Исходящий", 0));
    }

    #[test]
    fn call_statuses_are_amocrm_codes_one_to_eight() {
        assert_eq!(CallStatus::Answered.code(), 4);
        assert_eq!(CallStatus::NotReached.code(), 6);
        assert_eq!(CallStatus::Busy.code(), 7);
        assert_eq!((CallStatus::VoiceMessage.code(), CallStatus::Undefined.code()), (1, 8));
    }
}
