//! A partner's callback endpoint for tests: records every request, fails on demand.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct ReceivedCallback {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub answered: u16,
}

#[derive(Default)]
struct Behaviour {
    received: Vec<ReceivedCallback>,
    fail_until: Option<Instant>,
    fail_status: u16,
}

#[derive(Clone)]
pub struct CallbackReceiver {
    pub address: SocketAddr,
    behaviour: Arc<Mutex<Behaviour>>,
}

impl CallbackReceiver {
    pub async fn start() -> Self {
        let behaviour = Arc::new(Mutex::new(Behaviour::default()));
        let app = Router::new().route("/callback", post(receive)).with_state(Arc::clone(&behaviour));
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { address, behaviour }
    }

    pub fn url(&self) -> String {
        format!("http://{}/callback", self.address)
    }

    /// Answers `status` to everything for `period`.
    pub fn fail_for(&self, period: Duration, status: u16) {
        let mut behaviour = self.behaviour.lock().unwrap();
        behaviour.fail_until = Some(Instant::now() + period);
        behaviour.fail_status = status;
    }

    pub fn received(&self) -> Vec<ReceivedCallback> {
        self.behaviour.lock().unwrap().received.clone()
    }

    /// The bodies it answered 2xx to, parsed.
    pub fn accepted(&self) -> Vec<serde_json::Value> {
        self.received()
            .into_iter()
            .filter(|callback| callback.answered < 300)
            .map(|callback| serde_json::from_slice(&callback.body).unwrap())
            .collect()
    }
}

async fn receive(State(behaviour): State<Arc<Mutex<Behaviour>>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut behaviour = behaviour.lock().unwrap();
    let failing = behaviour.fail_until.is_some_and(|until| Instant::now() < until);
    let answered = if failing { behaviour.fail_status } else { 200 };
    behaviour.received.push(ReceivedCallback { headers, body, answered });
    StatusCode::from_u16(answered).unwrap()
}
