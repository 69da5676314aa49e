//! Seeding a contact and its deals by pipeline and stage names, for tests and demos.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::contacts::{ContactDraft, insert_contact};
use crate::api::leads::{LeadDraft, insert_lead};
use crate::catalog::{CONTACT_FIELDS, EMAIL_FIELD_ID, PHONE_FIELD_ID};
use crate::state::{Crm, CustomField, FieldValue, LeadContact};

/// A contact to put into the account directly, bypassing the API and its rate limit.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct SeedContact {
    pub name: String,
    #[serde(default)]
    pub phones: Vec<String>,
    #[serde(default)]
    pub emails: Vec<String>,
    #[serde(default)]
    pub leads: Vec<SeedLead>,
}

/// A deal of a seeded contact, placed by names as a person reads them in the CRM.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct SeedLead {
    pub pipeline: String,
    pub status: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub price: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SeededContact {
    pub contact_id: u64,
    pub lead_ids: Vec<u64>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SeedError {
    #[error("no pipeline is named {0:?}")]
    UnknownPipeline(String),
    #[error("pipeline {pipeline:?} has no stage named {status:?}")]
    UnknownStatus { pipeline: String, status: String },
}

fn work_values(field_id: u64, texts: &[String]) -> Option<CustomField> {
    let definition = CONTACT_FIELDS.iter().find(|field| field.id == field_id)?;
    let (enum_id, enum_code) = *definition.enums.first()?;
    let values: Vec<FieldValue> = texts
        .iter()
        .map(|text| FieldValue {
            value: Value::String(text.clone()),
            enum_id: Some(enum_id),
            enum_code: Some(enum_code),
        })
        .collect();
    (!values.is_empty()).then_some(CustomField { definition, values })
}

/// Checks every deal's placement first, so a bad name leaves the account untouched.
pub fn seed(crm: &mut Crm, seed: &SeedContact) -> Result<SeededContact, SeedError> {
    let mut placements = Vec::new();
    for lead in &seed.leads {
        let pipeline =
            crm.pipeline_named(&lead.pipeline).ok_or_else(|| SeedError::UnknownPipeline(lead.pipeline.clone()))?;
        let status = pipeline
            .status_named(&lead.status)
            .ok_or_else(|| SeedError::UnknownStatus { pipeline: lead.pipeline.clone(), status: lead.status.clone() })?;
        placements.push((pipeline.id, status.id));
    }
    let custom_fields = [work_values(PHONE_FIELD_ID, &seed.phones), work_values(EMAIL_FIELD_ID, &seed.emails)]
        .into_iter()
        .flatten()
        .collect();
    let contact_id =
        insert_contact(crm, ContactDraft { name: Some(seed.name.clone()), custom_fields, ..ContactDraft::default() });
    let lead_ids = seed
        .leads
        .iter()
        .zip(placements)
        .map(|(lead, placement)| {
            let draft = LeadDraft {
                name: lead.name.clone(),
                price: lead.price,
                placement: Some(placement),
                contacts: vec![LeadContact { contact_id, is_main: true }],
                ..LeadDraft::default()
            };
            insert_lead(crm, draft)
        })
        .collect();
    Ok(SeededContact { contact_id, lead_ids })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EmulatorConfig;
    use crate::catalog::build_pipelines;

    fn crm() -> Crm {
        let config = EmulatorConfig::default();
        Crm::new(build_pipelines(&config.pipelines), config.users)
    }

    #[test]
    fn seeded_deals_land_in_the_named_stage_linked_to_the_contact() {
        let mut crm = crm();
        let seeded = seed(
            &mut crm,
            &SeedContact {
                name: "Анна".into(),
                phones: vec!["+79991112233".into()],
                leads: vec![SeedLead {
                    pipeline: "TrendAgent".into(),
                    status: "Объект выбран".into(),
                    ..SeedLead::default()
                }],
                ..SeedContact::default()
            },
        )
        .unwrap();
        let lead = &crm.leads[&seeded.lead_ids[0]];
        let pipeline = crm.pipeline(lead.pipeline_id).unwrap();
        assert_eq!(pipeline.status(lead.status_id).unwrap().name, "Объект выбран");
        assert_eq!(crm.lead_ids_of_contact(seeded.contact_id), seeded.lead_ids);
    }

    #[test]
    fn unknown_stage_name_creates_nothing() {
        let mut crm = crm();
        let error = seed(
            &mut crm,
            &SeedContact {
                name: "X".into(),
                leads: vec![SeedLead {
                    pipeline: "TrendAgent".into(),
                    status: "Переговоры".into(),
                    ..SeedLead::default()
                }],
                ..SeedContact::default()
            },
        )
        .unwrap_err();
        assert!(matches!(error, SeedError::UnknownStatus { .. }));
        assert!(crm.contacts.is_empty());
    }
}
