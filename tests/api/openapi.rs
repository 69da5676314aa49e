//! `GET /api/openapi.json`: the OpenAPI 3.1 document names every endpoint the gateway answers,
//! each documented operation is routed, and docs/http-api.md describes each path.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::spawn_app;

/// Every endpoint of a node that accepts requests, as a reader of docs/http-api.md expects them.
const ENDPOINTS: &[(&str, &str)] = &[
    ("post", "/api/v1/leads"),
    ("get", "/api/v1/leads/{id}"),
    ("post", "/api/v1/leads/{id}/retry"),
    ("post", "/api/v1/erasures"),
    ("post", "/grupozap/lead"),
    ("post", "/grupozap/lead/{advertiser}"),
    ("get", "/api/proxy/1.0/leads/add"),
    ("post", "/api/proxy/1.0/leads/add"),
    ("get", "/api/proxy/1.0/leads/messages/add"),
    ("post", "/api/proxy/1.0/leads/messages/add"),
    ("get", "/forms/{form}"),
    ("post", "/forms/{form}"),
    ("get", "/forms/{form}/embed.js"),
    ("get", "/files/{sha256}/{token}/{name}"),
    ("get", "/telephony/{source}"),
    ("post", "/telephony/{source}"),
    ("get", "/telephony/{source}/{key}"),
    ("post", "/telephony/{source}/{key}"),
    ("post", "/telephony/{source}/events/{kind}"),
    ("get", "/calls/{id}/recording"),
    ("get", "/api/v1/calls"),
    ("post", "/api/v1/calls"),
    ("post", "/api/v1/calls/search"),
    ("get", "/api/v1/calls/live"),
    ("get", "/api/v1/calls/{id}"),
    ("get", "/metrics"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/api/openapi.json"),
];

async fn document(app: &crate::helpers::TestApp) -> Value {
    let response = app.http.get(app.url("/api/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

fn operations(document: &Value) -> BTreeSet<(String, String)> {
    let paths = document["paths"].as_object().expect("the document has paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            let methods = item.as_object().expect("a path item is an object").keys();
            methods.filter(|key| !key.starts_with("parameters")).map(move |method| (method.clone(), path.clone()))
        })
        .collect()
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_names_every_endpoint() {
    let app = spawn_app().await;
    let document = document(&app).await;
    assert_eq!(document["openapi"], "3.1.0");
    let expected: BTreeSet<(String, String)> =
        ENDPOINTS.iter().map(|(method, path)| ((*method).to_owned(), (*path).to_owned())).collect();
    let described = operations(&document);
    let missing: Vec<_> = expected.difference(&described).collect();
    let unknown: Vec<_> = described.difference(&expected).collect();
    assert!(missing.is_empty(), "endpoints the document does not describe: {missing:?}");
    assert!(unknown.is_empty(), "operations this test does not know of: {unknown:?}");
    let schemes = document["components"]["securitySchemes"].as_object().unwrap();
    for scheme in ["source_key", "admin_token", "portal_basic", "metrics_token"] {
        assert!(schemes.contains_key(scheme), "no security scheme {scheme}");
    }
    let partner = &document["paths"]["/api/v1/leads"]["post"];
    let body = &partner["requestBody"]["content"]["application/json"]["schema"]["$ref"];
    assert_eq!(body, "#/components/schemas/PartnerLead");
    let required = &document["components"]["schemas"]["PartnerLead"]["required"];
    assert_eq!(required, &serde_json::json!(["name", "phone"]));
    app.stop().await;
}

/// Each documented operation reaches a handler: whatever it answers a request without
/// credentials or body, it is not the router's "no such address" nor "method not allowed".
#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = spawn_app().await;
    let document = document(&app).await;
    for (method, path) in operations(&document) {
        let concrete = path
            .replace("{id}", "1")
            .replace("{kind}", "call")
            .split('/')
            .map(|segment| if segment.starts_with('{') { "nosuch" } else { segment })
            .collect::<Vec<_>>()
            .join("/");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let mut request = app.http.request(method.clone(), app.url(&concrete));
        if path == "/api/v1/calls/live" {
            // The stream of a watcher would never end; without a token it is refused at once.
            request = request.header("accept", "text/event-stream");
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert_ne!(status, 405, "{method} {concrete}: {text}");
        assert!(
            !(status == 404 && text.contains("Такого адреса нет")),
            "{method} {concrete} is documented but not routed"
        );
    }
    app.stop().await;
}

#[test]
fn the_http_api_guide_describes_every_path_of_the_document() {
    let guide = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/http-api.md")).unwrap();
    let undocumented: Vec<_> = ENDPOINTS.iter().filter(|(_, path)| !guide.contains(path)).collect();
    assert!(undocumented.is_empty(), "docs/http-api.md does not mention {undocumented:?}");
    assert!(guide.contains("/api/openapi.json"), "docs/http-api.md does not link the document");
}
