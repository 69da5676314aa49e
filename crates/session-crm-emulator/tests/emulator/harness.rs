//! Spawning a CRM per test, and a client that keeps cookies and echoes the CSRF cookie like a browser's script.

use std::sync::Arc;

use reqwest::cookie::{CookieStore, Jar};
use reqwest::multipart::{Form, Part};
use reqwest::redirect::Policy;
use reqwest::{Method, Response, Url};
use serde_json::{Value, json};
use session_crm_emulator::{CSRF_COOKIE, CSRF_HEADER, RunningSessionCrm, SessionCrm, SessionCrmConfig};

pub const USERNAME: &str = "sandbox";
pub const PASSWORD: &str = "sandbox-password";

pub struct TestCrm {
    pub running: RunningSessionCrm,
    /// Keeps cookies and never follows redirects, as the facts advise for this client.
    pub http: reqwest::Client,
    jar: Arc<Jar>,
}

pub async fn spawn_crm() -> TestCrm {
    spawn_with(SessionCrmConfig::default()).await
}

pub async fn spawn_with(config: SessionCrmConfig) -> TestCrm {
    let running = session_crm_emulator::spawn(config).await.expect("the emulator binds a loopback port");
    let jar = Arc::new(Jar::default());
    let http = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(Policy::none())
        .build()
        .expect("a client can be built");
    TestCrm { running, http, jar }
}

impl TestCrm {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.base_url())
    }

    pub fn crm(&self) -> &SessionCrm {
        &self.running.crm
    }

    /// The value of a cookie the store would send to `/api/…`; reqwest's jar has no lookup by
    /// name, only the `Cookie` header it would send.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let url = Url::parse(&self.url("/api/tickets")).expect("a valid URL");
        let header = self.jar.cookies(&url)?;
        let header = header.to_str().ok()?.to_owned();
        header
            .split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_owned())
    }

    pub fn csrf_token(&self) -> String {
        self.cookie(CSRF_COOKIE).expect("the store holds a CSRF cookie")
    }

    pub async fn login_with(&self, login: &str, password: &str) -> Response {
        let body = json!({"login": login, "password": password});
        self.http.post(self.url("/api/auth/login")).json(&body).send().await.expect("the emulator answers")
    }

    pub async fn login(&self) {
        let response = self.login_with(USERNAME, PASSWORD).await;
        assert_eq!(response.status(), 200, "the sandbox credentials log in");
    }

    pub async fn get(&self, path: &str) -> Response {
        self.http.get(self.url(path)).send().await.expect("the emulator answers")
    }

    /// An unsafe request carrying `token` in the CSRF header, or no header for `None`.
    pub async fn post_with_token(&self, path: &str, body: Value, token: Option<&str>) -> Response {
        let mut request = self.http.request(Method::POST, self.url(path)).json(&body);
        if let Some(token) = token {
            request = request.header(CSRF_HEADER, token);
        }
        request.send().await.expect("the emulator answers")
    }

    /// An unsafe request with the CSRF token read from the store right before it is sent.
    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.post_with_token(path, body, Some(&self.csrf_token())).await
    }

    pub async fn upload(&self, ticket_id: u64, file_name: &str, content: Vec<u8>) -> Response {
        let part = Part::bytes(content).file_name(file_name.to_owned()).mime_str("application/pdf").unwrap();
        self.http
            .post(self.url(&format!("/api/tickets/{ticket_id}/files")))
            .header(CSRF_HEADER, self.csrf_token())
            .multipart(Form::new().part("file", part))
            .send()
            .await
            .expect("the emulator answers")
    }

    /// A control call; these need no session.
    pub async fn control(&self, path: &str, body: Option<Value>) -> Response {
        let mut request = self.http.post(self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the emulator answers");
        assert!(response.status().is_success(), "control call {path} failed: {}", response.status());
        response
    }

    pub async fn state(&self) -> Value {
        self.http.get(self.url("/_control/state")).send().await.unwrap().json().await.unwrap()
    }

    /// Creates a contact through the API and returns its id.
    pub async fn create_contact(&self, name: &str, email: &str, phone: &str) -> u64 {
        let response = self.post("/api/contacts", json!({"name": name, "email": email, "phone": phone})).await;
        assert_eq!(response.status(), 201);
        id_of(response).await
    }
}

pub async fn id_of(response: Response) -> u64 {
    let body: Value = response.json().await.expect("a JSON answer");
    body["id"].as_u64().unwrap_or_else(|| panic!("an integer id in {body}"))
}

pub async fn message_of(response: Response) -> String {
    let body: Value = response.json().await.expect("a JSON answer");
    body["message"].as_str().unwrap_or_default().to_owned()
}

/// Retries `check` until it holds or `deadline` passes; tests wait with this, not sleeps.
pub async fn poll_until<F, Fut>(deadline: std::time::Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    loop {
        if check().await {
            return true;
        }
        if start.elapsed() > deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
