//! The website form's page, its script, and the result page for browsers without JavaScript.
//!
//! One template (`assets/forms/form.html`) renders both the form and the no-JS result page, so
//! they share their look. The page's script (`assets/forms/form.js`) is inlined, and reads the
//! form's settings from a JSON blob in `<script type="application/json" id="leadgate-form-config">`:
//! the fields (`name`, `input`, `required`, `max_length`, and the `id`/`error_id` of the control
//! and of its error text), `files`, `messages`, `success_message`, `sending_label`, `form_id`.
//!
//! Element ids the script relies on: `leadgate-form` (the form), `lg-input-N`/`lg-error-N` (the
//! N-th field, from 0), `lg-files`/`lg-files-error`, `lg-form-error` (general errors),
//! `lg-consent`/`lg-consent-error` (the consent checkbox, when the form asks for one),
//! `lg-progress`, `lg-submit`, `lg-status` (the live region), `lg-success`, `lg-ok`.

use std::sync::LazyLock;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Serde, Value};
use minijinja::{AutoEscape, Environment, UndefinedBehavior, context};
use serde::Serialize;

const PAGE_TEMPLATE_NAME: &str = "form.html";
const PAGE_TEMPLATE: &str = include_str!("../../assets/forms/form.html");
const FORM_SCRIPT: &str = include_str!("../../assets/forms/form.js");
const EMBED_SCRIPT: &str = include_str!("../../assets/forms/embed.js");

/// The string literals in `embed.js` that `embed_script` replaces, quotes included, so the
/// asset stays valid JavaScript as it is.
const FORM_ID_PLACEHOLDER: &str = "\"__LEADGATE_FORM_ID__\"";
const TITLE_PLACEHOLDER: &str = "\"__LEADGATE_FORM_TITLE__\"";
/// The embedding iframe's accessible name when the caller has no heading to give.
const DEFAULT_EMBED_TITLE: &str = "Форма обратной связи";
/// The submit button's text while sending (and the live region's announcement).
const SENDING_LABEL: &str = "Отправляем…";
const BACK_LABEL: &str = "Вернуться к форме";
/// "МБ" in the messages and the hint is 2^20 bytes.
const BYTES_PER_MB: u64 = 1024 * 1024;

const FILES_ID: &str = "lg-files";
const FILES_ERROR_ID: &str = "lg-files-error";
const FILES_HINT_ID: &str = "lg-files-hint";
const CONSENT_ID: &str = "lg-consent";
const CONSENT_ERROR_ID: &str = "lg-consent-error";
/// The consent's label in the no-JS result page's list of errors.
const CONSENT_LABEL: &str = "Согласие на обработку персональных данных";

#[derive(Debug, Clone, serde::Serialize)]
pub struct FormPage {
    pub form_id: String,
    /// The page's `<h1>` and `<title>`.
    pub heading: String,
    /// The POST URL, e.g. `/forms/feedback`; also where the no-JS result page links back to.
    pub action: String,
    pub fields: Vec<PageField>,
    /// `None`: the form takes no files.
    pub files: Option<PageFiles>,
    /// `None`: the form asks for no consent.
    pub consent: Option<PageConsent>,
    /// The name of a hidden anti-spam input that humans leave empty.
    pub honeypot: String,
    /// «Отправить».
    pub submit_label: String,
    pub success_message: String,
    /// «Хорошо».
    pub ok_label: String,
    pub messages: FormMessages,
    /// Rendered inside the embed iframe (no outer margins, transparent background).
    pub embedded: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PageField {
    pub name: String,
    pub label: String,
    pub input: InputKind,
    pub required: bool,
    /// In characters (Unicode scalar values) of the trimmed value; 0 means no limit.
    pub max_length: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    Text,
    Tel,
    Email,
    Textarea,
}

/// The personal-data consent checkbox: always required when present.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PageConsent {
    pub name: String,
    pub text: String,
    /// The privacy policy, opened in a new tab.
    pub policy_url: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PageFiles {
    pub name: String,
    pub label: String,
    pub required: bool,
    pub max_files: usize,
    /// Per file.
    pub max_bytes: u64,
}

/// The visitor-facing messages, shared by the server's checks and the page's, so both say the same.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FormMessages {
    pub required: String,
    pub file_required: String,
    /// `{max}`: the number of files allowed.
    pub too_many_files: String,
    /// `{file}`: the file's name; `{max}`: the limit in whole MB, rounded up.
    pub file_too_large: String,
    pub phone: String,
    pub email: String,
    /// `{max}`: the number of characters allowed.
    pub too_long: String,
    /// `{code}`: the character, as `U+0000`.
    pub forbidden_char: String,
    pub consent: String,
    pub network: String,
}

impl Default for FormMessages {
    fn default() -> Self {
        Self {
            required: "Заполните поле".to_owned(),
            file_required: "Прикрепите файл".to_owned(),
            too_many_files: "Можно прикрепить файлов: не больше {max}".to_owned(),
            file_too_large: "Файл «{file}» больше {max} МБ".to_owned(),
            phone: "Укажите номер телефона полностью, с кодом города".to_owned(),
            email: "Проверьте адрес e-mail".to_owned(),
            too_long: "Не больше {max} символов".to_owned(),
            forbidden_char: "Уберите управляющий символ {code}".to_owned(),
            consent: "Без согласия на обработку персональных данных мы не можем принять заявку".to_owned(),
            network: "Не удалось отправить заявку. Проверьте подключение и попробуйте ещё раз".to_owned(),
        }
    }
}

impl FormMessages {
    pub fn too_many_files(&self, max: usize) -> String {
        self.too_many_files.replace("{max}", &max.to_string())
    }

    /// `{max}` is filled before `{file}`, so a file's name is never searched for placeholders
    /// (the page's script does the same).
    pub fn file_too_large(&self, file: &str, max_bytes: u64) -> String {
        self.file_too_large.replace("{max}", &megabytes(max_bytes).to_string()).replace("{file}", file)
    }

    pub fn forbidden_char(&self, character: char) -> String {
        self.forbidden_char.replace("{code}", &crate::domain::text::code(character))
    }

    pub fn too_long(&self, max: usize) -> String {
        self.too_long.replace("{max}", &max.to_string())
    }
}

/// Whole MB, rounded up, as the messages and the page show a size limit.
fn megabytes(bytes: u64) -> u64 {
    bytes.div_ceil(BYTES_PER_MB)
}

/// The page: the form, its inlined script and settings.
///
/// # Errors
/// Only if the template fails to render, which the tests below would catch first.
pub fn render_page(page: &FormPage) -> Result<String, minijinja::Error> {
    let fields = field_views(page);
    let files = page.files.as_ref().map(FilesView::new);
    let consent = page.consent.as_ref().map(|consent| ConsentView {
        name: &consent.name,
        text: &consent.text,
        policy_url: &consent.policy_url,
        id: CONSENT_ID,
        error_id: CONSENT_ERROR_ID,
    });
    let config = ScriptConfig {
        form_id: &page.form_id,
        fields: &fields,
        files: files.as_ref(),
        consent: consent.as_ref(),
        messages: &page.messages,
        success_message: &page.success_message,
        sending_label: SENDING_LABEL,
    };
    let has_required = page.fields.iter().any(|field| field.required)
        || page.files.as_ref().is_some_and(|files| files.required)
        || consent.is_some();
    environment().get_template(PAGE_TEMPLATE_NAME)?.render(context! {
        page => Value::from(Serde(page)),
        fields => Value::from(Serde(&fields)),
        files => Value::from(Serde(&files)),
        consent => Value::from(Serde(&consent)),
        has_required,
        sending_label => SENDING_LABEL,
        config_json => Value::from_safe_string(script_json(&config)),
        script => Value::from_safe_string(FORM_SCRIPT.to_owned()),
        result => Value::from(()),
    })
}

/// The answer to a form sent without JavaScript: the heading, `message`, the field errors as
/// a list (each `(field name, message)`, shown with the field's label when the name is known),
/// and a link back to the form, labelled `ok_label` when `ok`, «Вернуться к форме» otherwise.
///
/// # Errors
/// Only if the template fails to render.
pub fn render_result(
    page: &FormPage,
    ok: bool,
    message: &str,
    errors: &[(String, String)],
) -> Result<String, minijinja::Error> {
    let errors: Vec<ResultError<'_>> =
        errors.iter().map(|(name, message)| ResultError { label: label_of(page, name), message }).collect();
    let back_href = if page.embedded {
        let separator = if page.action.contains('?') { '&' } else { '?' };
        format!("{}{separator}embed=1", page.action)
    } else {
        page.action.clone()
    };
    let back_label = if ok { page.ok_label.as_str() } else { BACK_LABEL };
    environment().get_template(PAGE_TEMPLATE_NAME)?.render(context! {
        page => Value::from(Serde(page)),
        result => context! {
            ok,
            message,
            errors => Value::from(Serde(&errors)),
            back_href,
            back_label,
        },
    })
}

/// The `embed.js` a site includes to show the form in an iframe; the iframe's title (its
/// accessible name) is «Форма обратной связи».
pub fn embed_script(form_id: &str) -> String {
    embed_script_titled(form_id, DEFAULT_EMBED_TITLE)
}

/// [`embed_script`] with the iframe titled `title` (the form's heading, say).
pub fn embed_script_titled(form_id: &str, title: &str) -> String {
    EMBED_SCRIPT.replace(FORM_ID_PLACEHOLDER, &script_json(&form_id)).replace(TITLE_PLACEHOLDER, &script_json(&title))
}

fn environment() -> &'static Environment<'static> {
    static ENVIRONMENT: LazyLock<Environment<'static>> = LazyLock::new(build_environment);
    &ENVIRONMENT
}

fn build_environment() -> Environment<'static> {
    let mut environment = Environment::new();
    environment
        .set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
    // A misspelt variable in the template fails the tests instead of rendering as nothing.
    environment.set_undefined_behavior(UndefinedBehavior::Strict);
    let syntax = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
        .expect("the default delimiters always build");
    environment.set_syntax(syntax);
    environment.add_template(PAGE_TEMPLATE_NAME, PAGE_TEMPLATE).expect("the form page template parses");
    environment
}

/// JSON that is safe inside an HTML `<script>` element and in a JavaScript source: `<`, `>`
/// and `&` (so no `</script>` or `<!--`), and the two line separators, are written as
/// `\uXXXX` escapes. They can only occur inside strings, where the escapes mean the same.
fn script_json(value: &impl Serialize) -> String {
    let json = serde_json::to_string(value).expect("plain data always serializes");
    let mut safe = String::with_capacity(json.len());
    for character in json.chars() {
        match character {
            '<' => safe.push_str("\\u003c"),
            '>' => safe.push_str("\\u003e"),
            '&' => safe.push_str("\\u0026"),
            '\u{2028}' => safe.push_str("\\u2028"),
            '\u{2029}' => safe.push_str("\\u2029"),
            other => safe.push(other),
        }
    }
    safe
}

/// A field as the template and the script see it: the configuration plus element ids.
#[derive(Debug, Serialize)]
struct FieldView<'a> {
    name: &'a str,
    label: &'a str,
    input: InputKind,
    required: bool,
    max_length: usize,
    id: String,
    error_id: String,
    autocomplete: Option<&'static str>,
}

fn field_views(page: &FormPage) -> Vec<FieldView<'_>> {
    page.fields
        .iter()
        .enumerate()
        .map(|(index, field)| FieldView {
            name: &field.name,
            label: &field.label,
            input: field.input,
            required: field.required,
            max_length: field.max_length,
            id: format!("lg-input-{index}"),
            error_id: format!("lg-error-{index}"),
            autocomplete: match field.input {
                InputKind::Tel => Some("tel"),
                InputKind::Email => Some("email"),
                InputKind::Text if field.name == "name" => Some("name"),
                InputKind::Text | InputKind::Textarea => None,
            },
        })
        .collect()
}

#[derive(Debug, Serialize)]
struct FilesView<'a> {
    name: &'a str,
    label: &'a str,
    required: bool,
    max_files: usize,
    max_bytes: u64,
    id: &'static str,
    error_id: &'static str,
    hint_id: &'static str,
    hint: String,
}

impl<'a> FilesView<'a> {
    fn new(files: &'a PageFiles) -> Self {
        let size = megabytes(files.max_bytes);
        let hint = if files.max_files <= 1 {
            format!("Один файл до {size} МБ")
        } else {
            let count = files.max_files;
            let noun = if count % 10 == 1 && count % 100 != 11 { "файла" } else { "файлов" };
            format!("До {count} {noun}, каждый до {size} МБ")
        };
        Self {
            name: &files.name,
            label: &files.label,
            required: files.required,
            max_files: files.max_files,
            max_bytes: files.max_bytes,
            id: FILES_ID,
            error_id: FILES_ERROR_ID,
            hint_id: FILES_HINT_ID,
            hint,
        }
    }
}

/// What `form.js` reads from the page.
#[derive(Debug, Serialize)]
struct ScriptConfig<'a> {
    form_id: &'a str,
    fields: &'a [FieldView<'a>],
    files: Option<&'a FilesView<'a>>,
    consent: Option<&'a ConsentView<'a>>,
    messages: &'a FormMessages,
    success_message: &'a str,
    sending_label: &'a str,
}

#[derive(Debug, Serialize)]
struct ConsentView<'a> {
    name: &'a str,
    text: &'a str,
    policy_url: &'a str,
    id: &'static str,
    error_id: &'static str,
}

#[derive(Debug, Serialize)]
struct ResultError<'a> {
    label: Option<&'a str>,
    message: &'a str,
}

fn label_of<'a>(page: &'a FormPage, name: &str) -> Option<&'a str> {
    page.fields
        .iter()
        .find(|field| field.name == name)
        .map(|field| field.label.as_str())
        .or_else(|| page.files.as_ref().filter(|files| files.name == name).map(|files| files.label.as_str()))
        .or_else(|| page.consent.as_ref().filter(|consent| consent.name == name).map(|_| CONSENT_LABEL))
}

#[cfg(test)]
mod tests {
    use serde_json::Value as Json;

    use super::*;

    fn page() -> FormPage {
        FormPage {
            form_id: "feedback".to_owned(),
            heading: "Обратная связь".to_owned(),
            action: "/forms/feedback".to_owned(),
            fields: vec![
                PageField {
                    name: "name".to_owned(),
                    label: "Ваше имя".to_owned(),
                    input: InputKind::Text,
                    required: true,
                    max_length: 100,
                },
                PageField {
                    name: "phone".to_owned(),
                    label: "Телефон".to_owned(),
                    input: InputKind::Tel,
                    required: true,
                    max_length: 40,
                },
                PageField {
                    name: "email".to_owned(),
                    label: "E-mail".to_owned(),
                    input: InputKind::Email,
                    required: false,
                    max_length: 200,
                },
                PageField {
                    name: "comment".to_owned(),
                    label: "Комментарий".to_owned(),
                    input: InputKind::Textarea,
                    required: false,
                    max_length: 2000,
                },
            ],
            files: Some(PageFiles {
                name: "files".to_owned(),
                label: "Файлы".to_owned(),
                required: true,
                max_files: 5,
                max_bytes: 10 * 1024 * 1024,
            }),
            consent: None,
            honeypot: "website".to_owned(),
            submit_label: "Отправить".to_owned(),
            success_message: "Ваша заявка отправлена. Мы свяжемся с вами в рабочее время по мск с 9:00 до 18:00"
                .to_owned(),
            ok_label: "Хорошо".to_owned(),
            messages: FormMessages::default(),
            embedded: false,
        }
    }

    /// The JSON inside `<script type="application/json" id="leadgate-form-config">`, parsed.
    fn config_of(html: &str) -> Json {
        let start_tag = r#"<script type="application/json" id="leadgate-form-config">"#;
        let start = html.find(start_tag).expect("the page carries its configuration") + start_tag.len();
        let end = start + html[start..].find("</script>").expect("the configuration's element is closed");
        serde_json::from_str(&html[start..end]).expect("the configuration is JSON")
    }

    #[test]
    fn the_page_has_labelled_fields_with_required_marks() {
        let html = render_page(&page()).unwrap();
        assert!(html.starts_with("<!doctype html>\n<html lang=\"ru\">"));
        assert!(html.contains("<title>Обратная связь</title>"));
        assert!(html.contains(r#"<h1 id="lg-heading">Обратная связь</h1>"#));
        assert!(html.contains(
            r#"<form id="leadgate-form" class="lg-form" action="&#x2f;forms&#x2f;feedback" method="post" enctype="multipart/form-data""#
        ));
        assert!(html.contains(
            r#"<label class="lg-label" for="lg-input-0">Ваше имя<span class="lg-req" aria-hidden="true"> *</span></label>"#
        ));
        assert!(html.contains(
            r#"<input class="lg-input" id="lg-input-0" name="name" type="text" required maxlength="100" autocomplete="name" aria-describedby="lg-error-0">"#
        ));
        assert!(html.contains(r#"id="lg-input-1" name="phone" type="tel" required"#));
        assert!(html.contains(r#"<label class="lg-label" for="lg-input-2">E-mail</label>"#));
        assert!(html.contains(r#"id="lg-input-2" name="email" type="email" maxlength="200""#));
        assert!(html.contains(
            r#"<textarea class="lg-input" id="lg-input-3" name="comment" rows="5" maxlength="2000" aria-describedby="lg-error-3"></textarea>"#
        ));
        for index in 0..4 {
            assert!(html.contains(&format!(r#"<p class="lg-error" id="lg-error-{index}"></p>"#)));
        }
        assert!(html.contains("обязательны для заполнения"));
        assert!(html.contains(r#"<p class="lg-visually-hidden" id="lg-status" role="status" aria-live="polite"></p>"#));
        assert!(html.contains(r#"<button class="lg-button" id="lg-submit" type="submit">Отправить</button>"#));
        assert!(html.contains(">Хорошо</button>"));
        assert!(html.contains("\n<body>\n"));
    }

    #[test]
    fn the_file_input_takes_several_files_only_when_allowed() {
        let html = render_page(&page()).unwrap();
        assert!(html.contains(
            r#"<input class="lg-file" id="lg-files" name="files" type="file" multiple required aria-describedby="lg-files-hint lg-files-error">"#
        ));
        assert!(html.contains("До 5 файлов, каждый до 10 МБ"));

        let mut single = page();
        single.files = Some(PageFiles {
            name: "file".to_owned(),
            label: "Файл".to_owned(),
            required: false,
            max_files: 1,
            max_bytes: 3_000_000,
        });
        let html = render_page(&single).unwrap();
        assert!(html.contains(r#"name="file" type="file" aria-describedby"#));
        assert!(html.contains("Один файл до 3 МБ"));

        single.files = None;
        let html = render_page(&single).unwrap();
        assert!(!html.contains(r#"type="file""#));
        assert!(config_of(&html)["files"].is_null());
    }

    #[test]
    fn the_honeypot_is_hidden_from_people_and_assistive_tech() {
        let html = render_page(&page()).unwrap();
        assert!(html.contains(
            "<div class=\"lg-hp\" aria-hidden=\"true\">\n<input type=\"text\" name=\"website\" value=\"\" tabindex=\"-1\" autocomplete=\"off\">\n</div>"
        ));
    }

    #[test]
    fn the_configuration_parses_back() {
        let html = render_page(&page()).unwrap();
        let config = config_of(&html);
        assert_eq!(config["form_id"], "feedback");
        assert_eq!(config["sending_label"], "Отправляем…");
        assert_eq!(config["fields"][1]["name"], "phone");
        assert_eq!(config["fields"][1]["input"], "tel");
        assert_eq!(config["fields"][1]["required"], true);
        assert_eq!(config["fields"][1]["max_length"], 40);
        assert_eq!(config["fields"][1]["id"], "lg-input-1");
        assert_eq!(config["fields"][1]["error_id"], "lg-error-1");
        assert_eq!(config["fields"][3]["input"], "textarea");
        assert_eq!(config["files"]["name"], "files");
        assert_eq!(config["files"]["max_files"], 5);
        assert_eq!(config["files"]["max_bytes"], 10 * 1024 * 1024);
        assert_eq!(config["files"]["required"], true);
        assert_eq!(config["files"]["id"], "lg-files");
        assert_eq!(config["files"]["error_id"], "lg-files-error");
        assert_eq!(config["messages"]["file_required"], "Прикрепите файл");
        assert_eq!(config["messages"]["too_long"], "Не больше {max} символов");
        assert_eq!(config["success_message"], page().success_message);
    }

    #[test]
    fn hostile_configuration_is_escaped() {
        let hostile = "<script>alert(1)</script>\"'&";
        let mut page = page();
        page.heading = hostile.to_owned();
        page.fields[0].label = hostile.to_owned();
        page.fields[0].name = hostile.to_owned();
        page.success_message = format!("</script><!--{hostile}");
        page.messages.required = hostile.to_owned();
        page.action = "/forms/x\"><script>alert(1)</script>".to_owned();
        let html = render_page(&page).unwrap();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<!--"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;&quot;&#x27;&amp;"), "{html}");
        // The inlined script and the configuration are the only scripts on the page.
        assert_eq!(html.matches("<script").count(), 2);
        assert_eq!(html.matches("</script>").count(), 2);
        let config = config_of(&html);
        assert_eq!(config["fields"][0]["name"], hostile);
        assert_eq!(config["messages"]["required"], hostile);
        assert_eq!(config["success_message"], format!("</script><!--{hostile}"));

        let result = render_result(&page, false, hostile, &[(hostile.to_owned(), hostile.to_owned())]).unwrap();
        assert!(!result.contains("<script"), "{result}");
    }

    #[test]
    fn the_inlined_script_cannot_end_its_element() {
        let lowered = FORM_SCRIPT.to_lowercase();
        assert!(!lowered.contains("</script") && !lowered.contains("<!--"));
    }

    #[test]
    fn an_embedded_page_says_so() {
        let mut page = page();
        page.embedded = true;
        let html = render_page(&page).unwrap();
        assert!(html.contains(r#"<body class="lg-embedded">"#));
    }

    #[test]
    fn the_result_page_lists_errors_and_links_back() {
        let page = page();
        let errors = [
            ("phone".to_owned(), "Укажите номер телефона полностью, с кодом города".to_owned()),
            ("files".to_owned(), "Прикрепите файл".to_owned()),
            ("unknown".to_owned(), "Что-то не так".to_owned()),
        ];
        let html = render_result(&page, false, "Проверьте заявку", &errors).unwrap();
        assert!(html.contains("<title>Ошибка — Обратная связь</title>"));
        assert!(html.contains(r#"<p class="lg-alert">Проверьте заявку</p>"#));
        assert!(html.contains("<li>Телефон: Укажите номер телефона полностью, с кодом города</li>"));
        assert!(html.contains("<li>Файлы: Прикрепите файл</li>"));
        assert!(html.contains("<li>Что-то не так</li>"));
        assert!(html.contains(r#"<a class="lg-button" href="&#x2f;forms&#x2f;feedback">Вернуться к форме</a>"#));
        assert!(!html.contains("<form"));
        assert!(!html.contains("<script"));

        let html = render_result(&page, true, &page.success_message, &[]).unwrap();
        assert!(html.contains("<title>Обратная связь</title>"));
        assert!(html.contains(&format!(r#"<p class="lg-success-text">{}</p>"#, page.success_message)));
        assert!(html.contains(r#"<a class="lg-button" href="&#x2f;forms&#x2f;feedback">Хорошо</a>"#));
        assert!(!html.contains("<ul"));

        let mut embedded = page.clone();
        embedded.embedded = true;
        let html = render_result(&embedded, true, "ok", &[]).unwrap();
        assert!(html.contains(r#"href="&#x2f;forms&#x2f;feedback?embed=1""#));
    }

    #[test]
    fn the_embed_script_gets_the_form_id_as_a_json_string() {
        let script = embed_script("feedback");
        assert!(script.contains(r#"var formId = "feedback";"#));
        assert!(script.contains(r#"var title = "Форма обратной связи";"#));
        assert!(!script.contains("__LEADGATE_"));

        let script = embed_script_titled("a\"b</script>\u{2028}", "Заявка «на ремонт»");
        assert!(script.contains(r#"var formId = "a\"b\u003c/script\u003e\u2028";"#), "{script}");
        assert!(script.contains(r#"var title = "Заявка «на ремонт»";"#));
    }

    #[test]
    fn message_placeholders_are_filled() {
        let messages = FormMessages::default();
        assert_eq!(messages.too_many_files(3), "Можно прикрепить файлов: не больше 3");
        assert_eq!(messages.too_long(100), "Не больше 100 символов");
        assert_eq!(messages.file_too_large("смета.pdf", 10 * 1024 * 1024), "Файл «смета.pdf» больше 10 МБ");
        assert_eq!(messages.file_too_large("a.pdf", 10 * 1024 * 1024 + 1), "Файл «a.pdf» больше 11 МБ");
        assert_eq!(messages.file_too_large("a.pdf", 1), "Файл «a.pdf» больше 1 МБ");
        // A file named like a placeholder stays as named.
        assert_eq!(messages.file_too_large("{max}.pdf", 2 * 1024 * 1024), "Файл «{max}.pdf» больше 2 МБ");
    }

    #[test]
    fn the_consent_checkbox_is_required_and_links_to_the_policy_in_a_new_tab() {
        let mut page = page();
        assert!(!render_page(&page).unwrap().contains(r#"id="lg-consent""#), "no checkbox unless configured");
        page.consent = Some(PageConsent {
            name: "consent".to_owned(),
            text: "Я согласен на обработку персональных данных".to_owned(),
            policy_url: "https://example.ru/privacy?a=1&b=2".to_owned(),
        });
        let html = render_page(&page).unwrap();
        assert!(html.contains(
            r#"<input class="lg-checkbox" id="lg-consent" name="consent" type="checkbox" value="yes" required aria-describedby="lg-consent-error">"#
        ));
        assert!(html.contains("Я согласен на обработку персональных данных"));
        assert!(html.contains(
            r#"<a href="https:&#x2f;&#x2f;example.ru&#x2f;privacy?a=1&amp;b=2" target="_blank" rel="noopener noreferrer">"#
        ));
        assert_eq!(config_of(&html)["consent"]["id"], "lg-consent");
        let result = render_result(&page, false, "Проверьте поля формы", &[("consent".to_owned(), "нет".to_owned())]);
        assert!(result.unwrap().contains("Согласие на обработку персональных данных: нет"));
    }
}
