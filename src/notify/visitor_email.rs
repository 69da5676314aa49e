//! Report to the visitor, the words: the e-mail that gives a website visitor the number of their request.

use serde::Serialize;

use super::templates::{RenderedEmail, TemplateError, TemplateName, environment, render_one, single_line};

const SUBJECT: &str = "Ваша заявка зарегистрирована под номером {{ number }}";

// No link to the CRM card by default: the visitor cannot open it. A source that wants one writes
// its own body with `deal_url`.
const BODY: &str = "\
Здравствуйте!

Ваша заявка зарегистрирована под номером {{ number }}.
Если будете писать или звонить нам по этой заявке, назовите, пожалуйста, этот номер.
{% if comment %}

Ваше сообщение:
{{ comment }}
{% endif %}

Это письмо отправлено автоматически, отвечать на него не нужно.
";

/// The visitor's e-mail (minijinja syntax, rendered as plain text): `visitor_subject` and
/// `visitor_body` of `[sources.<name>.email]`, each defaulting to ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitorEmailTemplates {
    pub subject: String,
    pub body: String,
}

impl Default for VisitorEmailTemplates {
    fn default() -> Self {
        Self { subject: SUBJECT.to_owned(), body: BODY.to_owned() }
    }
}

/// What the visitor's e-mail can show: the number, the lead as the visitor sent it, the card's link.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VisitorEmailContext {
    /// The deal's or ticket's number (`Outcome::deal_number`).
    pub number: String,
    pub lead_id: i64,
    pub source: String,
    pub name: String,
    /// E.164.
    pub phone: String,
    pub email: String,
    pub comment: Option<String>,
    /// The request body as received, extra fields included.
    pub fields: serde_json::Map<String, serde_json::Value>,
    pub deal_url: Option<String>,
}

impl VisitorEmailTemplates {
    /// Parses both templates and renders them against a sample lead.
    ///
    /// # Errors
    /// The first template that does not parse or render, named, with minijinja's reason.
    pub fn check(&self) -> Result<(), TemplateError> {
        self.render(&VisitorEmailContext::sample()).map(|_| ())
    }

    /// # Errors
    /// When the subject or the body does not parse or render.
    pub fn render(&self, context: &VisitorEmailContext) -> Result<RenderedEmail, TemplateError> {
        let environment = environment();
        let subject = render_one(&environment, TemplateName::VisitorSubject, &self.subject, context)?;
        let body = render_one(&environment, TemplateName::VisitorBody, &self.body, context)?;
        Ok(RenderedEmail { subject: single_line(&subject), body })
    }
}

impl VisitorEmailContext {
    /// A lead with every optional value present, so `check` exercises every branch it can.
    fn sample() -> Self {
        let fields = serde_json::json!({ "name": "Иван", "phone": "8 999 123-45-67", "message": "Прошу перезвонить" });
        Self {
            number: "T-000123".to_owned(),
            lead_id: 1,
            source: "check".to_owned(),
            name: "Иван".to_owned(),
            phone: "+79991234567".to_owned(),
            email: "ivan@example.com".to_owned(),
            comment: Some("Прошу перезвонить".to_owned()),
            fields: fields.as_object().cloned().unwrap_or_default(),
            deal_url: Some("https://example.amocrm.ru/leads/detail/1".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(comment: Option<&str>) -> VisitorEmailContext {
        VisitorEmailContext { comment: comment.map(str::to_owned), ..VisitorEmailContext::sample() }
    }

    #[test]
    fn the_default_email_gives_the_number_in_the_subject_and_the_body() {
        let email = VisitorEmailTemplates::default().render(&context(Some("Смета & сроки"))).expect("rendered");

        assert_eq!(email.subject, "Ваша заявка зарегистрирована под номером T-000123");
        assert!(email.body.contains("Ваша заявка зарегистрирована под номером T-000123."), "{}", email.body);
        assert!(email.body.contains("Ваше сообщение:\nСмета & сроки\n"), "{}", email.body);
        assert!(!email.body.contains("amocrm.ru"), "the visitor cannot open the CRM card:\n{}", email.body);
    }

    #[test]
    fn the_default_body_leaves_out_a_message_the_visitor_did_not_write() {
        let email = VisitorEmailTemplates::default().render(&context(None)).expect("rendered");

        assert!(!email.body.contains("Ваше сообщение"), "{}", email.body);
        assert!(!email.body.contains("\n\n\n"), "{}", email.body);
    }

    #[test]
    fn an_override_sees_the_fields_and_the_card_link() {
        let templates = VisitorEmailTemplates {
            subject: "Заявка {{ number }}\n{{ name }}".to_owned(),
            body: "{{ fields.message }} / {{ deal_url }} / {{ lead_id }}".to_owned(),
        };

        let email = templates.render(&context(None)).expect("rendered");

        assert_eq!(email.subject, "Заявка T-000123 Иван");
        assert_eq!(email.body, "Прошу перезвонить / https://example.amocrm.ru/leads/detail/1 / 1");
    }

    #[test]
    fn check_names_the_visitor_template_that_is_broken() {
        let broken = VisitorEmailTemplates { body: "{{ number".to_owned(), ..VisitorEmailTemplates::default() };
        let error = broken.check().expect_err("a broken body");
        assert_eq!(error.template, TemplateName::VisitorBody);
        assert!(error.to_string().contains("visitor_body"), "{error}");

        let unknown = VisitorEmailTemplates { subject: "{{ number | nope }}".to_owned(), ..Default::default() };
        assert_eq!(unknown.check().expect_err("an unknown filter").template, TemplateName::VisitorSubject);
        VisitorEmailTemplates::default().check().expect("the defaults are valid");
    }
}
