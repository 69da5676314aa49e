//! The account's fixed catalog: pipelines with their stages, and the custom fields it knows.

pub const ACCOUNT_ID: u64 = 31_000_001;
pub const ACCOUNT_NAME: &str = "Sandbox CRM";
pub const SUBDOMAIN: &str = "sandbox";
/// The account's first user, its administrator: with the default users, the one who is
/// responsible for whatever a request leaves without a responsible user, and the author of
/// everything the API creates.
pub const USER_ID: u64 = 6_000_001;
pub const WON_STATUS_ID: u64 = 142;
pub const LOST_STATUS_ID: u64 = 143;
pub const UNSORTED_STATUS_NAME: &str = "Неразобранное";
const FIRST_PIPELINE_ID: u64 = 7_000_001;
const STATUS_ID_BASE: u64 = 61_000_000;
const STAGE_COLORS: [&str; 6] = ["#99ccff", "#ffff99", "#ffcc66", "#ccc8f9", "#deff81", "#87f2c0"];

/// A user of the account, as `GET /api/v4/users` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountUser {
    pub id: u64,
    pub name: String,
    pub email: String,
}

impl AccountUser {
    pub fn new(id: u64, name: &str, email: &str) -> Self {
        AccountUser { id, name: name.to_owned(), email: email.to_owned() }
    }
}

/// The sandbox account's users: the administrator (`USER_ID`) first, then three managers.
pub fn default_users() -> Vec<AccountUser> {
    vec![
        AccountUser::new(USER_ID, "Администратор", "admin@sandbox.example"),
        AccountUser::new(6_000_002, "Анна Смирнова", "anna@sandbox.example"),
        AccountUser::new(6_000_003, "Иван Петров", "ivan@sandbox.example"),
        AccountUser::new(6_000_004, "Ольга Кузнецова", "olga@sandbox.example"),
    ]
}

/// A status `type` as the API reports it: 1 for the incoming stage, 0 for the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusKind {
    Ordinary,
    Unsorted,
}

#[derive(Clone, Debug)]
pub struct Status {
    pub id: u64,
    pub name: String,
    pub sort: u32,
    pub is_editable: bool,
    pub color: &'static str,
    pub kind: StatusKind,
}

#[derive(Clone, Debug)]
pub struct Pipeline {
    pub id: u64,
    pub name: String,
    pub sort: u32,
    pub is_main: bool,
    pub statuses: Vec<Status>,
}

impl Pipeline {
    pub fn status(&self, status_id: u64) -> Option<&Status> {
        self.statuses.iter().find(|status| status.id == status_id)
    }

    pub fn status_named(&self, name: &str) -> Option<&Status> {
        self.statuses.iter().find(|status| status.name == name)
    }

    /// Where a lead lands when only the pipeline is known: the first stage a manager works
    /// in, because the incoming stage is fed by the unsorted API, not by `POST /leads`.
    pub fn entry_status(&self) -> Option<&Status> {
        self.statuses.iter().find(|status| {
            status.kind == StatusKind::Ordinary && status.id != WON_STATUS_ID && status.id != LOST_STATUS_ID
        })
    }
}

/// Builds the pipelines from `(name, stages)` pairs; the first pair is the main pipeline.
///
/// Each pipeline gets the incoming stage first (unless the list already starts with it)
/// and the two closing stages 142/143 last, as every real amoCRM pipeline has them.
pub fn build_pipelines(config: &[(String, Vec<String>)]) -> Vec<Pipeline> {
    config
        .iter()
        .enumerate()
        .map(|(index, (name, stages))| {
            let id = FIRST_PIPELINE_ID + index as u64;
            let status_base = STATUS_ID_BASE + (index as u64 + 1) * 1000;
            let mut statuses = vec![Status {
                id: status_base,
                name: UNSORTED_STATUS_NAME.to_owned(),
                sort: 10,
                is_editable: false,
                color: "#c1c1c1",
                kind: StatusKind::Unsorted,
            }];
            let ordinary = stages.iter().filter(|stage| *stage != UNSORTED_STATUS_NAME);
            for (position, stage) in ordinary.enumerate() {
                statuses.push(Status {
                    id: status_base + position as u64 + 1,
                    name: stage.clone(),
                    sort: 20 + 10 * position as u32,
                    is_editable: true,
                    color: STAGE_COLORS[position % STAGE_COLORS.len()],
                    kind: StatusKind::Ordinary,
                });
            }
            statuses.push(closing_status(WON_STATUS_ID, "Успешно реализовано", 10000));
            statuses.push(closing_status(LOST_STATUS_ID, "Закрыто и не реализовано", 11000));
            Pipeline { id, name: name.clone(), sort: 1 + index as u32, is_main: index == 0, statuses }
        })
        .collect()
}

fn closing_status(id: u64, name: &str, sort: u32) -> Status {
    Status {
        id,
        name: name.to_owned(),
        sort,
        is_editable: false,
        color: if id == WON_STATUS_ID { "#CCFF66" } else { "#D5D8DB" },
        kind: StatusKind::Ordinary,
    }
}

/// A custom field of the account. Values of `multitext` fields carry an enum (WORK, MOB…).
#[derive(Debug)]
pub struct FieldDefinition {
    pub id: u64,
    pub name: &'static str,
    pub code: Option<&'static str>,
    pub kind: &'static str,
    pub enums: &'static [(u64, &'static str)],
}

impl FieldDefinition {
    pub fn enum_by_code(&self, code: &str) -> Option<(u64, &'static str)> {
        self.enums.iter().copied().find(|(_, known)| *known == code)
    }

    pub fn enum_by_id(&self, id: u64) -> Option<(u64, &'static str)> {
        self.enums.iter().copied().find(|(known, _)| *known == id)
    }
}

/// The contact text field «Должность», for tests that fill a contact field by id.
pub const POSITION_FIELD_ID: u64 = 264_909;
pub const PHONE_FIELD_ID: u64 = 264_911;
pub const EMAIL_FIELD_ID: u64 = 264_913;

const PHONE_ENUMS: &[(u64, &str)] = &[
    (180_001, "WORK"),
    (180_003, "WORKDD"),
    (180_005, "MOB"),
    (180_007, "FAX"),
    (180_009, "HOME"),
    (180_011, "OTHER"),
];
const EMAIL_ENUMS: &[(u64, &str)] = &[(180_013, "WORK"), (180_015, "PRIV"), (180_017, "OTHER")];

/// Fields of contacts (and of companies, which share the system phone and e-mail fields).
pub const CONTACT_FIELDS: &[FieldDefinition] = &[
    FieldDefinition {
        id: POSITION_FIELD_ID, name: "Должность", code: Some("POSITION"), kind: "text", enums: &[]
    },
    FieldDefinition {
        id: PHONE_FIELD_ID, name: "Телефон", code: Some("PHONE"), kind: "multitext", enums: PHONE_ENUMS
    },
    FieldDefinition { id: EMAIL_FIELD_ID, name: "Email", code: Some("EMAIL"), kind: "multitext", enums: EMAIL_ENUMS },
];

const fn tracking_field(id: u64, code: &'static str) -> FieldDefinition {
    FieldDefinition { id, name: code, code: Some(code), kind: "tracking_data", enums: &[] }
}

/// An account-specific text field of deals, as a company would add one for its listings.
pub const LISTING_FIELD_ID: u64 = 264_941;

/// Fields of leads: the system tracking fields every account has, and one text field of the
/// sandbox account's own (custom fields are per account; integrations address them by id).
pub const LEAD_FIELDS: &[FieldDefinition] = &[
    FieldDefinition { id: LISTING_FIELD_ID, name: "Объявление", code: None, kind: "text", enums: &[] },
    tracking_field(264_921, "UTM_SOURCE"),
    tracking_field(264_923, "UTM_MEDIUM"),
    tracking_field(264_925, "UTM_CAMPAIGN"),
    tracking_field(264_927, "UTM_TERM"),
    tracking_field(264_929, "UTM_CONTENT"),
    tracking_field(264_931, "REFERRER"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn default_like() -> Vec<(String, Vec<String>)> {
        vec![
            ("Воронка".into(), vec!["Первичный контакт".into()]),
            ("TrendAgent".into(), vec![UNSORTED_STATUS_NAME.into(), "Новая заявка".into()]),
        ]
    }

    #[test]
    fn every_pipeline_gets_incoming_and_closing_stages_once() {
        let pipelines = build_pipelines(&default_like());
        for pipeline in &pipelines {
            let names: Vec<_> = pipeline.statuses.iter().map(|s| s.name.as_str()).collect();
            assert_eq!(names.iter().filter(|n| **n == UNSORTED_STATUS_NAME).count(), 1);
            assert!(pipeline.status(WON_STATUS_ID).is_some());
            assert!(pipeline.status(LOST_STATUS_ID).is_some());
        }
        assert!(pipelines[0].is_main && !pipelines[1].is_main);
    }

    #[test]
    fn entry_status_skips_the_incoming_stage() {
        let pipelines = build_pipelines(&default_like());
        assert_eq!(pipelines[1].entry_status().unwrap().name, "Новая заявка");
    }

    #[test]
    fn status_ids_are_distinct_between_pipelines_except_closing_ones() {
        let pipelines = build_pipelines(&default_like());
        let first: Vec<u64> = pipelines[0].statuses.iter().map(|s| s.id).collect();
        let shared: Vec<u64> = pipelines[1].statuses.iter().map(|s| s.id).filter(|id| first.contains(id)).collect();
        assert_eq!(shared, vec![WON_STATUS_ID, LOST_STATUS_ID]);
    }
}
