//! Whether this node lives (`/healthz`) and whether it can do its work (`/readyz`): the database answers and is migrated, and the worker goes round its loop.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::store::Store;
use crate::worker::Heartbeat;

/// What `/readyz` looks at.
#[derive(Clone)]
pub struct Readiness {
    pub store: Store,
    /// On a node that delivers: the worker's heartbeat, and how old it may get.
    pub worker: Option<(Heartbeat, Duration)>,
}

pub fn routes(readiness: Readiness) -> OpenApiRouter {
    OpenApiRouter::new().routes(routes!(alive)).routes(routes!(ready)).with_state(readiness)
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "monitoring", responses((status = 200, description = "`ok`", content_type = "text/plain")))]
async fn alive() -> &'static str {
    "ok"
}

/// `200 {"status": "ready", …}`, or `503` with each problem named.
#[utoipa::path(get, path = "/readyz", tag = "monitoring",
    responses(
        (status = 200, description = "`{status: \"ready\", database, worker}`"),
        (status = 503, description = "`{status: \"not ready\", …}` naming each problem"),
    ))]
async fn ready(State(readiness): State<Readiness>) -> impl IntoResponse {
    let database = readiness.store.readiness().await;
    let worker = match &readiness.worker {
        None => Ok("not on this node".to_owned()),
        Some((heartbeat, stale_after)) => match heartbeat.age() {
            Some(age) if age <= *stale_after => Ok("ok".to_owned()),
            Some(age) => Err(format!("the worker's last round was {}s ago", age.as_secs())),
            None => Err("the worker has not started".to_owned()),
        },
    };
    let ready = database.is_ok() && worker.is_ok();
    let text = |checked: Result<String, String>| checked.unwrap_or_else(|problem| problem);
    let body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "database": text(database.map(|()| "ok".to_owned())),
        "worker": text(worker),
    });
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body))
}
