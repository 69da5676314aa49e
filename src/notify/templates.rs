//! Report by e-mail, the words: subjects and bodies of the outcome e-mails, overridable per source.

use std::fmt;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Serde, Value};
use minijinja::{AutoEscape, Environment, UndefinedBehavior, escape_formatter};
use serde::{Deserialize, Serialize};

use crate::domain::Decision;

const NEW_CLIENT_SUBJECT: &str = "Успех! Клиент уникальный: {{ name }}";
// One key serves every known client, so the subject says which of the four things happened: the
// partner flow's two need a person to look, while the portal and website flows made or noted a deal.
const KNOWN_CLIENT_SUBJECT: &str = "\
{% if decision == \"known_client_new_deal\" %}Новая сделка! Клиент уже есть в CRM: {{ name }}\
{% elif decision == \"known_client_deal_noted\" %}Повторная заявка! Примечание в сделке клиента: {{ name }}\
{% elif decision == \"call_dropped\" %}Звонок не записан в CRM: {{ phone }}\
{% elif decision in [\"call_logged\", \"call_auto_contact\", \"call_attached\"] %}Звонок записан в CRM: {{ phone }}\
{% else %}Проверка! Требуется уточнение: {{ name }}{% endif %}";

// One body serves every outcome: the decision line and the links already say what happened, and a
// user who wants them to differ overrides either one.
const DEFAULT_BODY: &str = "\
Заявка №{{ lead_id }} из источника «{{ source }}»

{% if decision == \"new_client\" %}
Решение: новый клиент — в CRM созданы контакт и сделка с примечанием о заявке.
{% elif decision == \"known_client_without_deal\" %}
Решение: клиент уже есть в CRM, сделки в воронке источника нет — ничего не создано, требуется уточнение.
{% elif decision == \"known_client_deal_moved\" %}
Решение: клиент уже есть в CRM — его сделка перенесена на этап источника, новая не создана.
{% elif decision == \"known_client_new_deal\" %}
Решение: клиент уже есть в CRM — к его контакту создана новая сделка с примечанием о заявке, контакт не изменён.
{% elif decision == \"known_client_deal_noted\" %}
Решение: клиент уже есть в CRM, у него есть сделка в этой воронке — к ней добавлено примечание о заявке, новая сделка не создана.
{% elif decision == \"call_logged\" %}
Решение: клиент есть в CRM — звонок записан в его карточку.
{% elif decision == \"call_auto_contact\" %}
Решение: номера не было в CRM — создан автоконтакт, звонок записан в его карточку.
{% elif decision == \"call_attached\" %}
Решение: звонок ждал контакта с этим номером, контакт появился вовремя — звонок записан в его карточку.
{% elif decision == \"call_dropped\" %}
Решение: номера нет в CRM, автоконтакт не создаётся, и контакт не появился за отведённое время — звонок не записан.
{% endif %}

Имя: {{ name }}
Телефон: {{ phone }} (как получен: {{ phone_raw }})
E-mail: {{ email or \"—\" }}
Комментарий: {{ comment or \"—\" }}
{% if contact_url %}
Контакт в CRM: {{ contact_url }}
{% endif %}
{% if deal_url %}
Сделка в CRM: {{ deal_url }}
{% endif %}

Все поля заявки, как они пришли:
{% for key, value in fields | items %}
  {{ key }}: {{ value }}
{% endfor %}
";

/// The four templates of the outcome e-mails (minijinja syntax, rendered as plain text).
/// A source overrides any of them; the ones it leaves out keep our defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EmailTemplates {
    pub new_client_subject: String,
    pub new_client_body: String,
    pub known_client_subject: String,
    pub known_client_body: String,
}

impl Default for EmailTemplates {
    fn default() -> Self {
        Self {
            new_client_subject: NEW_CLIENT_SUBJECT.to_owned(),
            new_client_body: DEFAULT_BODY.to_owned(),
            known_client_subject: KNOWN_CLIENT_SUBJECT.to_owned(),
            known_client_body: DEFAULT_BODY.to_owned(),
        }
    }
}

/// What a template can refer to: one finished lead and its outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmailContext {
    pub lead_id: i64,
    pub source: String,
    pub name: String,
    /// E.164.
    pub phone: String,
    /// The number as the sender wrote it.
    pub phone_raw: String,
    pub email: Option<String>,
    pub comment: Option<String>,
    /// The request body as received, extra fields included.
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// True when the CRM did not know the client (a contact and a deal were created).
    pub unique: bool,
    /// `new_client`, `known_client_without_deal`, `known_client_deal_moved` (partner),
    /// `known_client_new_deal` (portal, website) or `known_client_deal_noted` (portal).
    pub decision: String,
    pub contact_url: Option<String>,
    pub deal_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub body: String,
}

/// Which template of `[sources.<name>.email]`; its name is also its configuration key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateName {
    NewClientSubject,
    NewClientBody,
    KnownClientSubject,
    KnownClientBody,
    VisitorSubject,
    VisitorBody,
}

impl TemplateName {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NewClientSubject => "new_client_subject",
            Self::NewClientBody => "new_client_body",
            Self::KnownClientSubject => "known_client_subject",
            Self::KnownClientBody => "known_client_body",
            Self::VisitorSubject => "visitor_subject",
            Self::VisitorBody => "visitor_body",
        }
    }
}

impl fmt::Display for TemplateName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A template that does not parse, or fails while rendering (an unknown filter, a bad call).
/// The message carries minijinja's reason and line, because `config check` shows only this text.
#[derive(Debug, thiserror::Error)]
#[error("the e-mail template {template} is invalid: {source}")]
pub struct TemplateError {
    pub template: TemplateName,
    #[source]
    pub source: minijinja::Error,
}

impl EmailTemplates {
    /// Parses all four templates and renders each against a sample lead of every decision it serves.
    ///
    /// # Errors
    /// The first template that does not parse or render, named, with minijinja's reason.
    pub fn check(&self) -> Result<(), TemplateError> {
        let environment = environment();
        for decision in Decision::ALL {
            let sample = EmailContext::sample(decision);
            for (name, source) in self.pair(sample.unique) {
                render_one(&environment, name, source, &sample)?;
            }
        }
        Ok(())
    }

    /// Renders the new-client pair when `context.unique`, the known-client pair otherwise.
    ///
    /// # Errors
    /// When the chosen subject or body does not parse or render.
    pub fn render(&self, context: &EmailContext) -> Result<RenderedEmail, TemplateError> {
        let environment = environment();
        let [(subject_name, subject), (body_name, body)] = self.pair(context.unique);
        let subject = render_one(&environment, subject_name, subject, context)?;
        Ok(RenderedEmail { subject: single_line(&subject), body: render_one(&environment, body_name, body, context)? })
    }

    fn pair(&self, unique: bool) -> [(TemplateName, &str); 2] {
        if unique {
            [
                (TemplateName::NewClientSubject, &self.new_client_subject),
                (TemplateName::NewClientBody, &self.new_client_body),
            ]
        } else {
            [
                (TemplateName::KnownClientSubject, &self.known_client_subject),
                (TemplateName::KnownClientBody, &self.known_client_body),
            ]
        }
    }
}

impl EmailContext {
    /// A lead with every optional value present, so `check` exercises every branch it can.
    fn sample(decision: Decision) -> Self {
        let fields = serde_json::json!({ "name": "Иван", "phone": "8 999 123-45-67", "utm_source": "check" });
        Self {
            lead_id: 1,
            source: "check".to_owned(),
            name: "Иван".to_owned(),
            phone: "+79991234567".to_owned(),
            phone_raw: "8 999 123-45-67".to_owned(),
            email: Some("ivan@example.com".to_owned()),
            comment: Some("комментарий".to_owned()),
            fields: fields.as_object().cloned().unwrap_or_default(),
            unique: decision.is_unique_client(),
            decision: decision.as_str().to_owned(),
            contact_url: Some("https://example.amocrm.ru/contacts/detail/1".to_owned()),
            deal_url: Some("https://example.amocrm.ru/leads/detail/1".to_owned()),
        }
    }
}

pub(super) fn environment() -> Environment<'static> {
    let mut environment = Environment::new();
    // Plain-text mail: HTML escaping would turn a client's «&» or quotes into entities.
    environment.set_auto_escape_callback(|_| AutoEscape::None);
    // A lead without an e-mail or a comment must still produce a message, not an error, and a
    // missing value prints as nothing rather than as `None`.
    environment.set_undefined_behavior(UndefinedBehavior::Chainable);
    environment.set_formatter(
        |output, state, value| {
            if value.is_none() { Ok(()) } else { escape_formatter(output, state, value) }
        },
    );
    // Block tags on lines of their own leave no blank lines behind, as in Jinja's own advice.
    let syntax = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
        .expect("the default delimiters always build");
    environment.set_syntax(syntax);
    environment
}

pub(super) fn render_one(
    environment: &Environment<'static>,
    name: TemplateName,
    source: &str,
    context: &impl Serialize,
) -> Result<String, TemplateError> {
    environment
        .render_named_str(name.as_str(), source, Value::from(Serde(context)))
        .map_err(|source| TemplateError { template: name, source })
}

/// A subject is one header line: a line break from a template or a client's name is folded
/// into a space rather than sent as a broken header.
pub(super) fn single_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn context(unique: bool) -> EmailContext {
        let contact_url = Some("https://acme.amocrm.ru/contacts/detail/101".to_owned());
        let deal_url = unique.then(|| "https://acme.amocrm.ru/leads/detail/202".to_owned());
        let fields = json!({
            "name": "Анна Петрова",
            "phone": "8 (999) 123-45-67",
            "utm_campaign": "весна",
            "flat_rooms": 2,
        });
        EmailContext {
            lead_id: 42,
            source: "trendagent".to_owned(),
            name: "Анна Петрова".to_owned(),
            phone: "+79991234567".to_owned(),
            phone_raw: "8 (999) 123-45-67".to_owned(),
            email: None,
            comment: Some("Перезвонить после 18:00 & не раньше".to_owned()),
            fields: fields.as_object().cloned().expect("an object"),
            unique,
            decision: if unique { "new_client" } else { "known_client_without_deal" }.to_owned(),
            contact_url,
            deal_url,
        }
    }

    #[test]
    fn default_templates_give_the_seed_subject_for_a_new_client() {
        let email = EmailTemplates::default().render(&context(true)).expect("rendered");

        assert_eq!(email.subject, "Успех! Клиент уникальный: Анна Петрова");
        assert!(email.body.contains("новый клиент"), "{}", email.body);
    }

    #[test]
    fn default_templates_give_the_seed_subject_for_a_known_client() {
        let email = EmailTemplates::default().render(&context(false)).expect("rendered");

        assert_eq!(email.subject, "Проверка! Требуется уточнение: Анна Петрова");
        assert!(email.body.contains("требуется уточнение"), "{}", email.body);
    }

    #[test]
    fn each_decision_gets_a_subject_and_a_decision_line_of_its_own() {
        let expected = [
            (
                Decision::NewClient,
                "Успех! Клиент уникальный: Анна Петрова",
                "Решение: новый клиент — в CRM созданы контакт и сделка с примечанием о заявке.",
            ),
            (
                Decision::KnownClientWithoutDeal,
                "Проверка! Требуется уточнение: Анна Петрова",
                "Решение: клиент уже есть в CRM, сделки в воронке источника нет — ничего не создано, требуется уточнение.",
            ),
            (
                Decision::KnownClientDealMoved,
                "Проверка! Требуется уточнение: Анна Петрова",
                "Решение: клиент уже есть в CRM — его сделка перенесена на этап источника, новая не создана.",
            ),
            (
                Decision::KnownClientNewDeal,
                "Новая сделка! Клиент уже есть в CRM: Анна Петрова",
                "Решение: клиент уже есть в CRM — к его контакту создана новая сделка с примечанием о заявке, контакт не изменён.",
            ),
            (
                Decision::KnownClientDealNoted,
                "Повторная заявка! Примечание в сделке клиента: Анна Петрова",
                "Решение: клиент уже есть в CRM, у него есть сделка в этой воронке — к ней добавлено примечание о заявке, новая сделка не создана.",
            ),
        ];
        let calls = [
            (Decision::CallLogged, "Решение: клиент есть в CRM — звонок записан в его карточку."),
            (
                Decision::CallAutoContact,
                "Решение: номера не было в CRM — создан автоконтакт, звонок записан в его карточку.",
            ),
            (
                Decision::CallAttached,
                "Решение: звонок ждал контакта с этим номером, контакт появился вовремя — звонок записан в его карточку.",
            ),
            (
                Decision::CallDropped,
                "Решение: номера нет в CRM, автоконтакт не создаётся, и контакт не появился за отведённое время — звонок не записан.",
            ),
        ];
        let expected: Vec<(Decision, String, &str)> = expected
            .into_iter()
            .map(|(decision, subject, line)| (decision, subject.to_owned(), line))
            .chain(calls.into_iter().map(|(decision, line)| {
                let subject = if decision == Decision::CallDropped {
                    "Звонок не записан в CRM"
                } else {
                    "Звонок записан в CRM"
                };
                (decision, format!("{subject}: +79991234567"), line)
            }))
            .collect();
        assert_eq!(expected.len(), Decision::ALL.len());

        for (decision, subject, line) in expected {
            let context = EmailContext {
                unique: decision.is_unique_client(),
                decision: decision.as_str().to_owned(),
                ..context(decision.is_unique_client())
            };
            let email = EmailTemplates::default().render(&context).expect("rendered");

            assert_eq!(email.subject, subject, "{decision:?}");
            let lines: Vec<&str> = email.body.lines().filter(|text| text.starts_with("Решение:")).collect();
            assert_eq!(lines, [line], "{decision:?}:\n{}", email.body);
        }
    }

    #[test]
    fn default_body_lists_the_lead_and_links_to_the_crm_cards() {
        let email = EmailTemplates::default().render(&context(true)).expect("rendered");

        for expected in [
            "Заявка №42 из источника «trendagent»",
            "Телефон: +79991234567 (как получен: 8 (999) 123-45-67)",
            "E-mail: —",
            "Комментарий: Перезвонить после 18:00 & не раньше",
            "Контакт в CRM: https://acme.amocrm.ru/contacts/detail/101",
            "Сделка в CRM: https://acme.amocrm.ru/leads/detail/202",
        ] {
            assert!(email.body.contains(expected), "missing {expected:?} in:\n{}", email.body);
        }
    }

    #[test]
    fn default_body_omits_the_deal_link_when_there_is_no_deal() {
        let email = EmailTemplates::default().render(&context(false)).expect("rendered");

        assert!(email.body.contains("/contacts/detail/101"), "{}", email.body);
        assert!(!email.body.contains("Сделка в CRM"), "{}", email.body);
    }

    #[test]
    fn default_body_lists_every_field_received() {
        let email = EmailTemplates::default().render(&context(true)).expect("rendered");

        assert!(email.body.contains("  utm_campaign: весна\n"), "{}", email.body);
        assert!(email.body.contains("  flat_rooms: 2\n"), "{}", email.body);
    }

    #[test]
    fn a_user_override_replaces_the_default() {
        let templates = EmailTemplates {
            known_client_subject: "Дубль {{ lead_id }}{{ comment.missing.deeper }}".to_owned(),
            known_client_body: "{{ name }} / {{ email }}".to_owned(),
            ..EmailTemplates::default()
        };

        let email = templates.render(&context(false)).expect("rendered");

        assert_eq!(email.subject, "Дубль 42");
        assert_eq!(email.body, "Анна Петрова / ");
    }

    #[test]
    fn a_line_break_in_a_subject_becomes_a_space() {
        let templates =
            EmailTemplates { new_client_subject: "Лид\n{{ name }}\r\n".to_owned(), ..EmailTemplates::default() };

        let email = templates.render(&context(true)).expect("rendered");

        assert_eq!(email.subject, "Лид Анна Петрова");
    }

    #[test]
    fn check_names_a_template_that_does_not_parse() {
        let templates = EmailTemplates {
            known_client_body: "Здравствуйте, {{ name".to_owned(),
            ..EmailTemplates::default()
        };

        let error = templates.check().expect_err("a broken template");

        assert_eq!(error.template, TemplateName::KnownClientBody);
        let message = error.to_string();
        assert!(message.contains("known_client_body"), "{message}");
        assert!(message.contains("syntax error"), "{message}");
    }

    #[test]
    fn check_names_a_template_that_fails_to_render() {
        let templates = EmailTemplates {
            new_client_subject: "{{ name | no_such_filter }}".to_owned(),
            ..EmailTemplates::default()
        };

        let error = templates.check().expect_err("an unknown filter");

        assert_eq!(error.template, TemplateName::NewClientSubject);
        assert!(error.to_string().contains("no_such_filter"), "{error}");
    }

    #[test]
    fn default_templates_pass_the_check() {
        EmailTemplates::default().check().expect("the defaults are valid");
    }
}
