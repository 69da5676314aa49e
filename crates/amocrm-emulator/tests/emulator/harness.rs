//! Spawning an emulator per test and the calls tests make against it.

use std::future::Future;
use std::time::{Duration, Instant};

use amocrm_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use reqwest::{Method, Response};
use serde_json::Value;

pub const LONG_LIVED_TOKEN: &str = "sandbox-long-lived-token";

/// A running emulator plus a client that authenticates with the long-lived token.
pub struct TestEmulator {
    pub running: RunningEmulator,
    pub http: reqwest::Client,
}

/// An emulator whose rate limit is out of the way, for tests not about the limit.
pub async fn spawn_emulator() -> TestEmulator {
    spawn_with(EmulatorConfig { requests_per_second: 10_000, ..EmulatorConfig::default() }).await
}

pub async fn spawn_with(config: EmulatorConfig) -> TestEmulator {
    let running =
        amocrm_emulator::spawn(config, "127.0.0.1:0".parse().unwrap()).await.expect("emulator binds a free port");
    TestEmulator { running, http: reqwest::Client::new() }
}

impl TestEmulator {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.base_url())
    }

    pub fn emulator(&self) -> &Emulator {
        &self.running.emulator
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(LONG_LIVED_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("emulator answers")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Response {
        self.call(Method::PATCH, path, Some(body)).await
    }

    /// A control call; these need no token.
    pub async fn control(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        let mut request = self.http.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("emulator answers");
        assert!(response.status().is_success(), "control call {path} failed");
        response
    }

    /// Creates one contact through the API and returns its id.
    pub async fn create_contact(&self, name: &str, phone: &str) -> u64 {
        let body = serde_json::json!([{
            "name": name,
            "custom_fields_values": [
                {"field_code": "PHONE", "values": [{"value": phone, "enum_code": "WORK"}]}
            ]
        }]);
        let response = self.post("/api/v4/contacts", body).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["_embedded"]["contacts"][0]["id"].as_u64().unwrap()
    }

    /// Creates one lead through the API from the given JSON object and returns its id.
    pub async fn create_lead(&self, lead: Value) -> u64 {
        let response = self.post("/api/v4/leads", Value::Array(vec![lead])).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["_embedded"]["leads"][0]["id"].as_u64().unwrap()
    }
}

pub fn content_type(response: &Response) -> String {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Pipeline id and the id of the named stage, read from the pipelines endpoint.
pub async fn stage(app: &TestEmulator, pipeline: &str, status: &str) -> (u64, u64) {
    let body: Value = app.get("/api/v4/leads/pipelines").await.json().await.unwrap();
    let pipelines = body["_embedded"]["pipelines"].as_array().unwrap();
    let found = pipelines.iter().find(|p| p["name"] == pipeline).unwrap();
    let statuses = found["_embedded"]["statuses"].as_array().unwrap();
    let status = statuses.iter().find(|s| s["name"] == status).unwrap();
    (found["id"].as_u64().unwrap(), status["id"].as_u64().unwrap())
}

/// Retries `check` until it holds or `deadline` passes; tests wait with this, not sleeps.
pub async fn poll_until<F, Fut>(deadline: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return true;
        }
        if start.elapsed() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
