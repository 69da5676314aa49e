//! Checking a session CRM destination: its login, cookies and CSRF header, and its calls as templates.

use std::time::Duration;

use super::found::{Found, check_base_url};
use super::raw::{OneOrMany, RawApi, RawDestination, RawEndpoint, RawSession};
use super::{Endpoint, HttpMethod, LoginFormat, SessionCrmApi, SessionCrmConfig, SessionSettings, Template};

/// What `lead.*` offers to the templates of every call; the connector's context must match.
pub const LEAD_VARIABLES: [&str; 9] =
    ["id", "source", "name", "phone", "phone_raw", "email", "comment", "fields", "description"];
/// What `route.*` offers: the source's ticket settings.
pub const ROUTE_VARIABLES: [&str; 2] = ["service", "subject"];
/// minijinja's global functions, which its static analysis reports like variables.
const GLOBAL_FUNCTIONS: [&str; 4] = ["range", "dict", "namespace", "debug"];

/// One of the calls under `api`: the variables its templates see besides `lead` and `route`,
/// and the values its answer can give.
struct Call {
    name: &'static str,
    variables: &'static [&'static str],
    reads: &'static [&'static str],
}

const FIND_CONTACT: Call = Call { name: "find_contact", variables: &[], reads: &["id", "organization_id"] };
const CREATE_ORGANIZATION: Call = Call { name: "create_organization", variables: &[], reads: &["id"] };
const CREATE_CONTACT: Call = Call { name: "create_contact", variables: &["organization_id"], reads: &["id"] };
const CREATE_TICKET: Call =
    Call { name: "create_ticket", variables: &["contact_id", "organization_id"], reads: &["id", "number"] };
const ADD_MESSAGE: Call = Call { name: "add_message", variables: &["ticket_id", "message"], reads: &["id"] };
const ATTACH_FILE: Call = Call { name: "attach_file", variables: &["ticket_id", "file_name"], reads: &["id"] };

/// The names a template may use.
enum Vocabulary {
    /// `lead.*`, `route.*` and the call's own variables.
    Call(&'static [&'static str]),
    /// Only these (the login body, the card link).
    Only(&'static [&'static str]),
}

impl Vocabulary {
    fn knows(&self, path: &str) -> bool {
        let mut parts = path.split('.');
        let root = parts.next().unwrap_or_default();
        if GLOBAL_FUNCTIONS.contains(&root) {
            return true;
        }
        match self {
            Self::Only(names) => names.contains(&root),
            Self::Call(names) => match root {
                "lead" => parts.next().is_none_or(|field| LEAD_VARIABLES.contains(&field)),
                "route" => parts.next().is_none_or(|field| ROUTE_VARIABLES.contains(&field)),
                _ => names.contains(&root),
            },
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Only(names) => names.join(", "),
            Self::Call(names) => {
                let mut known = vec![
                    format!("lead.{{{}}}", LEAD_VARIABLES.join(", ")),
                    format!("route.{{{}}}", ROUTE_VARIABLES.join(", ")),
                ];
                known.extend(names.iter().map(|name| (*name).to_owned()));
                known.join(", ")
            }
        }
    }
}

pub(super) fn check_session_crm(name: &str, raw: RawDestination, found: &mut Found<'_>) -> Option<SessionCrmConfig> {
    let key = |field: &str| format!("destinations.{name}.{field}");
    let before = found.0.len();
    let base_url = check_base_url(raw.base_url.as_deref(), &key("base_url"), "https://crm.example.ru", found);
    let username = raw.username.filter(|username| !username.is_empty());
    if username.is_none() {
        found.problem(key("username"), "missing: the CRM user the gateway logs in as");
    }
    let password = raw.password;
    if password.as_ref().is_none_or(|password| secrecy::ExposeSecret::expose_secret(password).is_empty()) {
        found.problem(key("password"), "missing (it may come from LEADGATE_DESTINATIONS__<NAME>__PASSWORD)");
    }
    let requests_per_second = raw.requests_per_second.unwrap_or(5);
    if requests_per_second == 0 {
        found.problem(key("requests_per_second"), "must be at least 1");
    }
    let timeout = raw.timeout.unwrap_or(Duration::from_secs(30));
    if timeout.is_zero() {
        found.problem(key("timeout"), "must be longer than zero");
    }
    let card_url = raw.card_url.and_then(|source| check_card_url(&source, &key("card_url"), found));
    let session = check_session(raw.session, &|field| key(&format!("session.{field}")), found);
    let api = match raw.api {
        Some(api) => check_api(api, &|field| key(&format!("api.{field}")), found),
        None => {
            found.problem(key("api"), "missing: at least find_contact, create_contact and create_ticket");
            None
        }
    };
    if found.0.len() > before {
        return None;
    }
    Some(SessionCrmConfig {
        name: name.to_owned(),
        base_url: base_url?,
        username: username?,
        password: password?,
        requests_per_second,
        timeout,
        card_url,
        session,
        api: Box::new(api?),
    })
}

/// A link template must give an address for a sample ticket, so a typo shows now rather than in
/// a notification.
fn check_card_url(source: &str, key: &str, found: &mut Found<'_>) -> Option<Template> {
    let template = check_template(source, key, &Vocabulary::Only(&["id", "number"]), found)?;
    let sample = minijinja::context! { id => "1", number => "T-000001" };
    let rendered = minijinja::Environment::new().render_str(template.as_str(), sample).unwrap_or_default();
    match url::Url::parse(&rendered) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Some(template),
        _ => {
            found.problem(
                key,
                format!(
                    "«{source}» does not give an http(s) address, such as https://crm.example.ru/tickets/{{{{ id }}}}"
                ),
            );
            None
        }
    }
}

fn check_session(raw: Option<RawSession>, key: &dyn Fn(&str) -> String, found: &mut Found<'_>) -> SessionSettings {
    let defaults = SessionSettings::default();
    let Some(raw) = raw else {
        return defaults;
    };
    let login_path = raw.login_path.unwrap_or(defaults.login_path);
    if !login_path.starts_with('/') {
        found.problem(key("login_path"), format!("«{login_path}» must start with /"));
    }
    let login_format = match raw.login_format.as_deref() {
        None | Some("json") => LoginFormat::Json,
        Some("form") => LoginFormat::Form,
        Some(other) => {
            found.problem(key("login_format"), format!("«{other}» must be \"json\" or \"form\""));
            LoginFormat::Json
        }
    };
    let login_body = match raw.login_body {
        None => defaults.login_body,
        Some(fields) if fields.is_empty() => {
            found.problem(key("login_body"), "empty: the login needs at least the user name and password");
            Vec::new()
        }
        Some(fields) => {
            let vocabulary = Vocabulary::Only(&["username", "password"]);
            fields
                .into_iter()
                .filter_map(|(field, source)| {
                    let template = check_template(&source, &key(&format!("login_body.{field}")), &vocabulary, found);
                    template.map(|template| (field, template))
                })
                .collect()
        }
    };
    let mut cookie = |field: &str, value: Option<String>, default: String| {
        let value = value.unwrap_or(default);
        if !is_token(&value) {
            found.problem(key(field), format!("«{value}» is not a cookie name"));
        }
        value
    };
    let session_cookie = cookie("session_cookie", raw.session_cookie, defaults.session_cookie);
    let csrf_cookie = cookie("csrf_cookie", raw.csrf_cookie, defaults.csrf_cookie);
    let csrf_header = raw.csrf_header.unwrap_or(defaults.csrf_header);
    if !is_token(&csrf_header) {
        found.problem(key("csrf_header"), format!("«{csrf_header}» is not a header name"));
    }
    let lifetime = raw.lifetime.unwrap_or(defaults.lifetime);
    if lifetime < Duration::from_secs(1) {
        found.problem(key("lifetime"), "must be at least 1s");
    }
    let relogin_statuses = raw.relogin_statuses.unwrap_or(defaults.relogin_statuses);
    // Only a refusal says the request was not carried out, so only a refusal may be repeated;
    // 429 has its own meaning (slow down).
    for status in &relogin_statuses {
        if !(400..=499).contains(status) || *status == 429 {
            found.problem(key("relogin_statuses"), format!("{status} is not a 4xx status other than 429"));
        }
    }
    SessionSettings {
        login_path,
        login_format,
        login_body,
        session_cookie,
        csrf_cookie,
        csrf_header,
        csrf_decode: raw.csrf_decode.unwrap_or(defaults.csrf_decode),
        lifetime,
        relogin_statuses,
    }
}

fn check_api(raw: RawApi, key: &dyn Fn(&str) -> String, found: &mut Found<'_>) -> Option<SessionCrmApi> {
    let find_contact = match raw.find_contact {
        Some(OneOrMany::One(endpoint)) => vec![check_endpoint(endpoint, &FIND_CONTACT, &key(FIND_CONTACT.name), found)],
        Some(OneOrMany::Many(endpoints)) if !endpoints.is_empty() => endpoints
            .into_iter()
            .enumerate()
            .map(|(index, endpoint)| {
                check_endpoint(endpoint, &FIND_CONTACT, &key(&format!("{}.{index}", FIND_CONTACT.name)), found)
            })
            .collect(),
        Some(OneOrMany::Many(_)) | None => {
            found.problem(key(FIND_CONTACT.name), "missing: at least one lookup of a contact");
            vec![None]
        }
    };
    let mut optional = |raw: Option<RawEndpoint>, call: &Call| {
        raw.map(|endpoint| check_endpoint(endpoint, call, &key(call.name), found))
    };
    let create_organization = optional(raw.create_organization, &CREATE_ORGANIZATION);
    let add_message = optional(raw.add_message, &ADD_MESSAGE);
    let attach_file = optional(raw.attach_file, &ATTACH_FILE);
    let create_contact = optional(raw.create_contact, &CREATE_CONTACT);
    let create_ticket = optional(raw.create_ticket, &CREATE_TICKET);
    for (call, given) in [(&CREATE_CONTACT, create_contact.is_some()), (&CREATE_TICKET, create_ticket.is_some())] {
        if !given {
            found.problem(key(call.name), "missing");
        }
    }
    // Given and broken is a failure; not given is simply none.
    let checked = |endpoint: Option<Option<Endpoint>>| endpoint.map_or(Some(None), |checked| checked.map(Some));
    Some(SessionCrmApi {
        find_contact: find_contact.into_iter().collect::<Option<Vec<_>>>()?,
        create_organization: checked(create_organization)?,
        create_contact: create_contact??,
        create_ticket: create_ticket??,
        add_message: checked(add_message)?,
        attach_file: checked(attach_file)?,
    })
}

fn check_endpoint(raw: RawEndpoint, call: &Call, prefix: &str, found: &mut Found<'_>) -> Option<Endpoint> {
    let before = found.0.len();
    let key = |field: &str| format!("{prefix}.{field}");
    let vocabulary = Vocabulary::Call(call.variables);
    let method = match raw.method.as_deref().map(str::to_ascii_uppercase).as_deref() {
        Some("GET") => Some(HttpMethod::Get),
        Some("POST") => Some(HttpMethod::Post),
        Some("PUT") => Some(HttpMethod::Put),
        Some("PATCH") => Some(HttpMethod::Patch),
        Some(other) => {
            found.problem(key("method"), format!("«{other}» is not GET, POST, PUT or PATCH"));
            None
        }
        None => {
            found.problem(key("method"), "missing (GET, POST, PUT or PATCH)");
            None
        }
    };
    let path = match raw.path {
        Some(path) if path.starts_with('/') => check_template(&path, &key("path"), &vocabulary, found),
        Some(path) => {
            found.problem(key("path"), format!("«{path}» must start with / (it is relative to base_url)"));
            None
        }
        None => {
            found.problem(key("path"), "missing");
            None
        }
    };
    let mut templates = |part: &str, fields: std::collections::BTreeMap<String, String>| -> Vec<(String, Template)> {
        fields
            .into_iter()
            .filter_map(|(field, source)| {
                let template = check_template(&source, &key(&format!("{part}.{field}")), &vocabulary, found)?;
                Some((field, template))
            })
            .collect()
    };
    let query = templates("query", raw.query);
    let body = templates("body", raw.body);
    let uploads = call.name == ATTACH_FILE.name;
    if method == Some(HttpMethod::Get) && (!body.is_empty() || uploads) {
        found.problem(key("method"), "a GET sends no body: use POST, PUT or PATCH");
    }
    let multipart_field = match (uploads, raw.multipart_field) {
        (true, field) => Some(field.unwrap_or_else(|| "file".to_owned())),
        (false, Some(_)) => {
            found.problem(key("multipart_field"), "only for attach_file");
            None
        }
        (false, None) => None,
    };
    let id_given = raw.reads.contains_key("id");
    let mut reads = std::collections::BTreeMap::new();
    for (name, pointer) in raw.reads {
        if !call.reads.contains(&name.as_str()) {
            found.problem(
                key(&name),
                format!(
                    "unknown key: not one of method, path, query, body{}, nor a value read from this answer ({})",
                    if uploads { ", multipart_field" } else { "" },
                    call.reads.join(", ")
                ),
            );
        } else if !pointer.starts_with('/') {
            found.problem(key(&name), format!("«{pointer}» is not a JSON pointer such as \"/id\" or \"/items/0/id\""));
        } else {
            reads.insert(name, pointer);
        }
    }
    let id = reads.remove("id");
    if !id_given {
        found.problem(key("id"), "missing: the JSON pointer to the id in the answer, such as \"/id\"");
    }
    if found.0.len() > before {
        return None;
    }
    Some(Endpoint {
        method: method?,
        path: path?,
        query,
        body,
        multipart_field,
        id: id?,
        organization_id: reads.remove("organization_id"),
        number: reads.remove("number"),
    })
}

/// Parses `source` and names every variable it uses that the call does not offer: a misspelt
/// name would otherwise silently send an empty field or skip a lookup.
fn check_template(source: &str, key: &str, vocabulary: &Vocabulary, found: &mut Found<'_>) -> Option<Template> {
    let environment = minijinja::Environment::new();
    let parsed = match environment.template_from_named_str(key, source) {
        Ok(parsed) => parsed,
        Err(error) => {
            found.problem(key, format!("the template does not parse: {error}"));
            return None;
        }
    };
    let mut unknown: Vec<String> =
        parsed.undeclared_variables(true).into_iter().filter(|path| !vocabulary.knows(path)).collect();
    if !unknown.is_empty() {
        unknown.sort();
        found.problem(key, format!("{} is not a variable here (known: {})", unknown.join(", "), vocabulary.describe()));
        return None;
    }
    Template::parse(source).ok()
}

/// An HTTP token (RFC 9110): what cookie and header names are made of.
fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte))
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use secrecy::ExposeSecret;

    use super::super::{
        Config, ConfigError, DestinationConfig, HttpMethod, LoginFormat, SessionCrmConfig, SessionSettings,
    };
    use crate::domain::SourceId;

    /// The issue's example, with its source.
    const EXAMPLE: &str = r#"
        [destinations.own]
        kind = "session_crm"
        base_url = "https://crm.example.ru"
        username = "site-robot"
        password = "s3cret-pass"
        requests_per_second = 5
        card_url = "https://crm.example.ru/tickets/{{ id }}"

        [destinations.own.session]
        login_path = "/api/auth/login"
        login_format = "json"
        login_body = { login = "{{ username }}", password = "{{ password }}" }
        session_cookie = "sessionid"
        csrf_cookie = "csrftoken"
        csrf_header = "X-CSRFToken"
        csrf_decode = false
        lifetime = "25m"
        relogin_statuses = [401, 403, 419]

        [destinations.own.api]
        find_contact        = { method = "GET",  path = "/api/contacts", query = { email = "{{ lead.email }}" }, id = "/items/0/id", organization_id = "/items/0/organization_id" }
        create_organization = { method = "POST", path = "/api/organizations", body = { name = "{{ lead.fields.company | default(lead.name) }}" }, id = "/id" }
        create_contact      = { method = "POST", path = "/api/contacts", body = { name = "{{ lead.name }}", email = "{{ lead.email }}", phone = "{{ lead.phone }}", organization_id = "{{ organization_id }}" }, id = "/id" }
        create_ticket       = { method = "POST", path = "/api/tickets", body = { service = "{{ route.service }}", subject = "{{ route.subject }}", description = "{{ lead.description }}", contact_id = "{{ contact_id }}", partner_id = "{{ organization_id }}" }, id = "/id", number = "/number" }
        add_message         = { method = "POST", path = "/api/tickets/{{ ticket_id }}/messages", body = { text = "{{ lead.comment }}" }, id = "/id" }
        attach_file         = { method = "POST", path = "/api/tickets/{{ ticket_id }}/files", multipart_field = "file", id = "/id" }

        [sources.site]
        kind = "partner"
        key = "0123456789abcdef"
        destination = "own"
        service = "Поддержка"
        subject = "Заявка с сайта"
    "#;

    /// The smallest session CRM: everything else has a default.
    const MINIMAL: &str = r#"
        [destinations.own]
        kind = "session_crm"
        base_url = "https://crm.example.ru"
        username = "site-robot"
        password = "s3cret-pass"
        [destinations.own.api]
        find_contact = { method = "GET", path = "/api/contacts", query = { phone = "{{ lead.phone }}" }, id = "/items/0/id" }
        create_contact = { method = "POST", path = "/api/contacts", body = { name = "{{ lead.name }}" }, id = "/id" }
        create_ticket = { method = "POST", path = "/api/tickets", body = { contact_id = "{{ contact_id }}" }, id = "/id" }
    "#;

    fn session_crm(config: &Config) -> &SessionCrmConfig {
        match &config.destinations["own"] {
            DestinationConfig::SessionCrm(session_crm) => session_crm,
            DestinationConfig::AmoCrm(_) => panic!("not a session CRM"),
        }
    }

    fn keys(text: &str) -> Vec<String> {
        let error: ConfigError = Config::from_toml_str(text).expect_err("a configuration with problems");
        error.problems.into_iter().map(|problem| problem.key).collect()
    }

    fn assert_named(text: &str, expected: &[&str]) {
        let keys = keys(text);
        for key in expected {
            assert!(keys.iter().any(|found| found == key), "{key} missing from {keys:?}");
        }
    }

    #[test]
    fn the_issues_example_is_read_key_by_key() {
        let config = Config::from_toml_str(EXAMPLE).unwrap();
        let own = session_crm(&config);

        assert_eq!(own.base_url.as_str(), "https://crm.example.ru/");
        assert_eq!((own.username.as_str(), own.password.expose_secret()), ("site-robot", "s3cret-pass"));
        assert_eq!((own.requests_per_second, own.timeout), (5, Duration::from_secs(30)));
        assert_eq!(own.card_url.as_ref().map(|url| url.as_str()), Some("https://crm.example.ru/tickets/{{ id }}"));
        let session = &own.session;
        assert_eq!(session.login_format, LoginFormat::Json);
        assert_eq!((session.csrf_header.as_str(), session.csrf_decode), ("X-CSRFToken", false));
        assert_eq!(session.lifetime, Duration::from_secs(25 * 60));
        assert_eq!(session.relogin_statuses, [401, 403, 419]);
        let api = &own.api;
        assert_eq!(api.find_contact.len(), 1);
        let lookup = &api.find_contact[0];
        assert_eq!((lookup.method, lookup.path.as_str()), (HttpMethod::Get, "/api/contacts"));
        assert_eq!(lookup.query[0].0, "email");
        assert_eq!(
            (lookup.id.as_str(), lookup.organization_id.as_deref()),
            ("/items/0/id", Some("/items/0/organization_id"))
        );
        assert_eq!(api.create_ticket.number.as_deref(), Some("/number"));
        assert_eq!(api.create_ticket.body.len(), 5);
        assert!(api.create_organization.is_some() && api.add_message.is_some());
        assert_eq!(api.attach_file.as_ref().and_then(|upload| upload.multipart_field.as_deref()), Some("file"));
        let route = &config.sources[&SourceId("site".into())].route;
        assert_eq!((route.service.as_deref(), route.subject.as_deref()), (Some("Поддержка"), Some("Заявка с сайта")));
    }

    #[test]
    fn an_absent_session_table_and_unset_keys_take_the_documented_defaults() {
        let config = Config::from_toml_str(MINIMAL).unwrap();
        let own = session_crm(&config);
        let defaults = SessionSettings::default();

        assert_eq!((own.requests_per_second, own.timeout, own.card_url.is_none()), (5, Duration::from_secs(30), true));
        assert_eq!(own.session.login_path, "/api/auth/login");
        assert_eq!(own.session.login_body, defaults.login_body);
        assert_eq!((own.session.session_cookie.as_str(), own.session.csrf_cookie.as_str()), ("sessionid", "csrftoken"));
        assert_eq!(own.session.lifetime, Duration::from_secs(25 * 60));
        assert!(
            own.api.create_organization.is_none() && own.api.add_message.is_none() && own.api.attach_file.is_none()
        );

        let partly = format!("{MINIMAL}\n[destinations.own.session]\nlogin_format = \"form\"\ncsrf_decode = true\n");
        let config = Config::from_toml_str(&partly).unwrap();
        let session = &session_crm(&config).session;
        assert_eq!((session.login_format, session.csrf_decode), (LoginFormat::Form, true));
        assert_eq!(session.relogin_statuses, defaults.relogin_statuses);
    }

    #[test]
    fn find_contact_may_be_a_list_of_lookups_tried_in_order() {
        let text = MINIMAL.replace(
            r#"find_contact = { method = "GET", path = "/api/contacts", query = { phone = "{{ lead.phone }}" }, id = "/items/0/id" }"#,
            r#"find_contact = [
                { method = "GET", path = "/api/contacts", query = { email = "{{ lead.email }}" }, id = "/items/0/id" },
                { method = "GET", path = "/api/contacts", query = { phone = "{{ lead.phone }}" }, id = "/items/0/id" },
            ]"#,
        );
        let config = Config::from_toml_str(&text).unwrap();
        let lookups = &session_crm(&config).api.find_contact;
        assert_eq!(lookups.iter().map(|lookup| lookup.query[0].0.as_str()).collect::<Vec<_>>(), ["email", "phone"]);
        assert_named(
            &text.replace("{{ lead.phone }}\" }, id", "{{ lead.phone }}\" }, idd"),
            &["destinations.own.api.find_contact.1.idd", "destinations.own.api.find_contact.1.id"],
        );
        assert_named(
            &text.replace("find_contact = [", "find_contact = []\nx = ["),
            &["destinations.own.api.find_contact"],
        );
    }

    #[test]
    fn misspelt_keys_are_named_in_every_table() {
        let text = format!(
            "{}\n[destinations.own.session]\ncsrf_heder = \"X-Token\"\n",
            MINIMAL
                .replace("password = \"s3cret-pass\"", "password = \"s3cret-pass\"\nusername_ = \"x\"")
                .replace(
                    "create_ticket = {",
                    "create_tiket = { method = \"POST\", path = \"/x\", id = \"/id\" }\ncreate_ticket = {"
                )
                .replace(
                    "body = { contact_id = \"{{ contact_id }}\" }, id = \"/id\" }",
                    "body = { contact_id = \"{{ contact_id }}\" }, id = \"/id\", nubmer = \"/number\" }"
                )
        );
        assert_named(
            &text,
            &[
                "destinations.own.session.csrf_heder",
                "destinations.own.username_",
                "destinations.own.api.create_tiket",
                "destinations.own.api.create_ticket.nubmer",
            ],
        );
    }

    #[test]
    fn each_broken_value_is_named_by_its_key() {
        let text = format!(
            "{}\n[destinations.own.session]\nlogin_format = \"xml\"\nrelogin_statuses = [302, 429, 419]\nlifetime = \"0s\"\ncsrf_header = \"X CSRF\"\nlogin_body = {{ user = \"{{{{ login }}}}\" }}\n",
            MINIMAL
                .replace(
                    "base_url = \"https://crm.example.ru\"",
                    "base_url = \"ftp://crm.example.ru\"\ncard_url = \"{{ id\""
                )
                .replace("method = \"GET\"", "method = \"FETCH\"")
                .replace(
                    "body = { name = \"{{ lead.name }}\" }, id = \"/id\"",
                    "body = { name = \"{{ lead.nmae }}\" }, id = \"id\""
                )
                .replace(
                    "body = { contact_id = \"{{ contact_id }}\" }, id = \"/id\"",
                    "path2 = \"x\", body = { contact_id = \"{{ ticket_id }}\" }"
                )
        );
        assert_named(
            &text,
            &[
                "destinations.own.base_url",
                "destinations.own.card_url",
                "destinations.own.session.login_format",
                "destinations.own.session.relogin_statuses",
                "destinations.own.session.lifetime",
                "destinations.own.session.csrf_header",
                "destinations.own.session.login_body.user",
                "destinations.own.api.find_contact.method",
                "destinations.own.api.create_contact.body.name",
                "destinations.own.api.create_contact.id",
                "destinations.own.api.create_ticket.path2",
                "destinations.own.api.create_ticket.body.contact_id",
                "destinations.own.api.create_ticket.id",
            ],
        );
    }

    #[test]
    fn credentials_and_the_required_calls_are_required() {
        let text = MINIMAL
            .replace("username = \"site-robot\"\n", "")
            .replace("password = \"s3cret-pass\"\n", "")
            .replace("create_ticket = {", "create_ticket_later = {");
        let keys = keys(&text);
        for key in ["destinations.own.username", "destinations.own.password", "destinations.own.api.create_ticket"] {
            assert!(keys.iter().any(|found| found == key), "{key} missing from {keys:?}");
        }
        assert_named(
            "[destinations.own]\nkind = \"session_crm\"\nbase_url = \"https://crm.example.ru\"\nusername = \"u\"\npassword = \"p\"\n",
            &["destinations.own.api"],
        );
    }

    #[test]
    fn a_get_sends_no_body_and_only_attach_file_uploads() {
        let text = MINIMAL
            .replace("query = { phone = \"{{ lead.phone }}\" }", "body = { phone = \"{{ lead.phone }}\" }")
            .replace(
                "path = \"/api/contacts\", body = { name",
                "path = \"/api/contacts\", multipart_field = \"f\", body = { name",
            );
        assert_named(
            &text,
            &["destinations.own.api.find_contact.method", "destinations.own.api.create_contact.multipart_field"],
        );
    }

    #[test]
    fn keys_of_the_other_kind_of_destination_are_named() {
        let text = MINIMAL.replace("username = \"site-robot\"", "username = \"site-robot\"\naccess_token = \"t\"");
        assert_named(&text, &["destinations.own.access_token"]);
        let amocrm = "[destinations.main]\nkind = \"amocrm\"\nbase_url = \"https://a.amocrm.ru\"\naccess_token = \"t\"\nusername = \"u\"\n";
        assert_named(amocrm, &["destinations.main.username"]);
    }

    #[test]
    fn a_session_crm_route_has_a_service_and_a_subject_instead_of_a_pipeline_and_a_stage() {
        let source = "[sources.site]\nkind = \"partner\"\nkey = \"0123456789abcdef\"\ndestination = \"own\"\n";
        assert_named(
            &format!("{MINIMAL}{source}pipeline = \"P\"\nstatus = \"S\"\n"),
            &["sources.site.service", "sources.site.subject", "sources.site.pipeline", "sources.site.status"],
        );
        let amocrm =
            "[destinations.main]\nkind = \"amocrm\"\nbase_url = \"https://a.amocrm.ru\"\naccess_token = \"t\"\n";
        let to_amocrm = source.replace("\"own\"", "\"main\"");
        let keys = keys(&format!("{amocrm}{to_amocrm}pipeline = \"P\"\nstatus = \"S\"\nservice = \"x\"\n"));
        assert_eq!(keys, ["sources.site.service"]);
        let config = Config::from_toml_str(&format!("{amocrm}{to_amocrm}pipeline = \"P\"\nstatus = \"S\"\n")).unwrap();
        let route = &config.sources[&SourceId("site".into())].route;
        assert_eq!((route.pipeline.as_str(), route.service.as_deref()), ("P", None));
    }

    #[test]
    // Jail's closure must return figment's own (large) error type.
    #[allow(clippy::result_large_err)]
    fn the_password_may_come_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("leadgate.toml", &MINIMAL.replace("password = \"s3cret-pass\"\n", ""))?;
            jail.set_env("LEADGATE_DESTINATIONS__OWN__PASSWORD", "from-the-environment");
            let config = Config::load(Some(Path::new("leadgate.toml"))).map_err(|error| error.to_string())?;
            assert_eq!(session_crm(&config).password.expose_secret(), "from-the-environment");
            jail.set_env("LEADGATE_DESTINATIONS__OWN__PASSWORD", "123456");
            let config = Config::load(Some(Path::new("leadgate.toml"))).map_err(|error| error.to_string())?;
            assert_eq!(session_crm(&config).password.expose_secret(), "123456");
            Ok(())
        });
    }
}
