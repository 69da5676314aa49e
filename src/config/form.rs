//! Checking a website form's settings: which form field fills which CRM field, and its limits.

use super::found::Found;
use super::raw::{RawConsent, RawSource};
use super::{Consent, FormSource, WaitForCrm};
use crate::domain::{CrmField, DealSpec};

/// The seed's text after a successful submission.
pub const DEFAULT_SUCCESS_MESSAGE: &str =
    "Ваша заявка отправлена. Мы свяжемся с вами в рабочее время по мск с 9:00 до 18:00";

pub(super) fn check_form(
    raw: &mut RawSource,
    wait_for_crm: Option<WaitForCrm>,
    key: &dyn Fn(&str) -> String,
    found: &mut Found<'_>,
) -> Option<FormSource> {
    let before = found.0.len();
    let mut fields = Vec::new();
    for (crm_field, form_field) in std::mem::take(&mut raw.fields) {
        match crm_field.parse::<CrmField>() {
            Ok(_) if !is_form_field_name(&form_field) => found.problem(
                key(&format!("fields.{crm_field}")),
                format!("«{form_field}» is not a form field name (letters, digits, _ and - only)"),
            ),
            Ok(target) => fields.push((target, form_field)),
            Err(message) => found.problem(key(&format!("fields.{crm_field}")), message),
        }
    }
    let mut statics = Vec::new();
    for (crm_field, value) in std::mem::take(&mut raw.statics) {
        match crm_field.parse::<CrmField>() {
            Ok(CrmField::Phone | CrmField::Email) => found.problem(
                key(&format!("static.{crm_field}")),
                "the client's phone and e-mail come from the form, not from a fixed value",
            ),
            Ok(target) => {
                // A value without variables is what every lead gets, so a bad one is caught now.
                let fixed = !value.contains('{') && !matches!(target, CrmField::Name | CrmField::Comment);
                if let Err(message) =
                    DealSpec::default().set(target, &value).or_else(|error| if fixed { Err(error) } else { Ok(()) })
                {
                    found.problem(key(&format!("static.{crm_field}")), message);
                }
                statics.push((target, value));
            }
            Err(message) => found.problem(key(&format!("static.{crm_field}")), message),
        }
    }
    let form_field_of = |target: CrmField| {
        fields.iter().find(|(crm_field, _)| *crm_field == target).map(|(_, form_field)| form_field.clone())
    };
    // A lead is a client to call back: without a phone field there is nobody to find in the CRM.
    let phone_field = form_field_of(CrmField::Phone);
    if phone_field.is_none() {
        found.problem(key("fields.phone"), "missing: the form field that holds the client's phone");
    }
    let required = match raw.required.take() {
        Some(required) => {
            for name in &required {
                if !fields.iter().any(|(_, form_field)| form_field == name) {
                    found.problem(key("required"), format!("«{name}» is not one of the form's fields"));
                }
            }
            required
        }
        None => [form_field_of(CrmField::Name), phone_field].into_iter().flatten().collect(),
    };
    let require_file = raw.require_file.unwrap_or(false);
    let max_files = raw.max_files.unwrap_or(if require_file { 5 } else { 0 }) as usize;
    if require_file && max_files == 0 {
        found.problem(key("max_files"), "is 0, but require_file asks for a file");
    }
    let max_file_mb = raw.max_file_mb.unwrap_or(10);
    if max_file_mb == 0 || max_file_mb > 100 {
        found.problem(key("max_file_mb"), "must be between 1 and 100");
    }
    let allowed_sites = raw
        .allowed_sites
        .iter()
        .map(|site| {
            // A site may be written as a host or as an address; only the host is compared.
            let host = url::Url::parse(site).ok().and_then(|url| url.host_str().map(str::to_owned));
            host.unwrap_or_else(|| site.trim().trim_end_matches('/').to_owned()).to_ascii_lowercase()
        })
        .collect();
    let honeypot = raw.honeypot.take().unwrap_or_else(|| "website".to_owned());
    if !is_form_field_name(&honeypot) || fields.iter().any(|(_, form_field)| *form_field == honeypot) {
        found.problem(key("honeypot"), format!("«{honeypot}» must be a field name the form does not otherwise use"));
    }
    let consent = raw.consent.take().and_then(|raw| check_consent(raw, key, found));
    if fields.iter().any(|(_, form_field)| form_field == CONSENT_FIELD) || honeypot == CONSENT_FIELD {
        found.problem(
            key("fields"),
            format!("«{CONSENT_FIELD}» is the consent checkbox's name; give the field another"),
        );
    }
    if found.0.len() > before {
        return None;
    }
    Some(FormSource {
        heading: raw.heading.take().unwrap_or_else(|| "Обратная связь".to_owned()),
        fields,
        statics,
        required,
        labels: std::mem::take(&mut raw.labels),
        require_file,
        max_files,
        max_file_bytes: u64::from(max_file_mb) * 1024 * 1024,
        send_to_crm: raw.send_to_crm.unwrap_or(true),
        allowed_sites,
        honeypot,
        per_ip_per_minute: raw.per_ip_per_minute.unwrap_or(10),
        success_message: raw.success_message.take().unwrap_or_else(|| DEFAULT_SUCCESS_MESSAGE.to_owned()),
        wait_for_crm,
        consent,
    })
}

/// The name the consent checkbox is submitted under.
pub const CONSENT_FIELD: &str = "consent";

fn check_consent(raw: RawConsent, key: &dyn Fn(&str) -> String, found: &mut Found<'_>) -> Option<Box<Consent>> {
    let text = raw.text.map(|text| text.trim().to_owned()).filter(|text| !text.is_empty());
    if text.is_none() {
        found.problem(key("consent.text"), "missing: what the visitor agrees to, shown next to the checkbox");
    }
    let policy_url = match raw.policy_url.as_deref().map(url::Url::parse) {
        Some(Ok(url)) if matches!(url.scheme(), "http" | "https") => Some(url),
        Some(_) => {
            found.problem(key("consent.policy_url"), "not an http(s) address of the privacy policy");
            None
        }
        None => {
            found.problem(key("consent.policy_url"), "missing: the address of the site's privacy policy");
            None
        }
    };
    Some(Box::new(Consent { text: text?, policy_url: policy_url? }))
}

fn is_form_field_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}
