//! The control API: scenarios, playing one by name to a URL, the state dump, token expiry, reset.

use pbx_emulator::{PbxConfig, ProviderKind, RunningPbx};
use serde_json::{Value, json};

use crate::harness::{Receiver, Verify, assert_all_signed};

async fn spawn(kind: ProviderKind) -> RunningPbx {
    pbx_emulator::spawn(PbxConfig::sandbox(kind)).await.expect("a loopback port")
}

async fn control(pbx: &RunningPbx, path: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new().post(format!("{}{path}", pbx.base_url())).json(&body).send().await.unwrap()
}

async fn state(pbx: &RunningPbx) -> Value {
    reqwest::get(format!("{}/_control/state", pbx.base_url())).await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn the_scenario_list_starts_with_the_seeds_ten() {
    let pbx = spawn(ProviderKind::Telphin).await;
    let list: Value =
        reqwest::get(format!("{}/_control/scenarios", pbx.base_url())).await.unwrap().json().await.unwrap();
    let list = list.as_array().unwrap();

    let seeds: Vec<u64> = list.iter().filter_map(|scenario| scenario["seed_number"].as_u64()).collect();
    assert_eq!(seeds, (1..=10).collect::<Vec<u64>>());
    assert_eq!(list[0]["name"], "incoming-known-answered");
    assert!(list.iter().all(|scenario| scenario["description"].is_string()));
}

#[tokio::test]
async fn playing_a_scenario_by_name_sends_it_and_answers_the_report() {
    let pbx = spawn(ProviderKind::Zadarma).await;
    let receiver = Receiver::spawn(Verify::Zadarma).await;

    let response = control(
        &pbx,
        "/_control/play",
        json!({"scenario": "incoming-known-answered", "to": receiver.url("/z?token=t").as_str(), "resend_every_event": true}),
    )
    .await;

    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["provider"], "zadarma");
    assert_eq!(report["script"], "incoming-known-answered");
    assert_eq!(report["target"], receiver.url("/z").as_str(), "the query, which may hold a secret, is left out");
    assert_eq!(report["deliveries"].as_array().unwrap().len(), 10);
    assert!(report["deliveries"].as_array().unwrap().iter().all(|delivery| delivery["status"] == 200));
    assert_eq!(receiver.received().len(), 10);
    assert_all_signed(&receiver.received());
    let dump = state(&pbx).await;
    assert_eq!(dump["plays"].as_array().unwrap().len(), 1);
    assert_eq!(dump["recordings"].as_array().unwrap().len(), 1, "the call's recording is now served");
}

#[tokio::test]
async fn play_takes_a_whole_script_and_parallel_ringing() {
    let pbx = spawn(ProviderKind::Telphin).await;
    let receiver = Receiver::spawn(Verify::Nothing).await;
    let script = pbx_emulator::Scenario::find("incoming-direct-answered").unwrap().script();

    let response = control(
        &pbx,
        "/_control/play",
        json!({"script": script, "to": receiver.url("/t").as_str(), "parallel_ringing": ["102"], "reorder": "hangup-before-answer"}),
    )
    .await;

    assert_eq!(response.status(), 200);
    let types: Vec<String> = receiver.received().iter().map(|event| event.get("EventType").to_owned()).collect();
    assert_eq!(types, ["dial-in", "dial-in", "hangup", "answer", "hangup"]);
}

#[tokio::test]
async fn play_refuses_an_unknown_scenario_a_bad_url_and_an_impossible_reorder() {
    let pbx = spawn(ProviderKind::Telphin).await;

    let unknown = control(&pbx, "/_control/play", json!({"scenario": "nope", "to": "http://127.0.0.1:9/"})).await;
    let bad_url = control(&pbx, "/_control/play", json!({"scenario": "internal-call", "to": "not a url"})).await;
    let impossible = control(
        &pbx,
        "/_control/play",
        json!({"scenario": "incoming-busy", "to": "http://127.0.0.1:9/", "reorder": "hangup-before-answer"}),
    )
    .await;

    assert_eq!(unknown.status(), 400);
    assert!(unknown.json::<Value>().await.unwrap()["message"].as_str().unwrap().contains("incoming-known-answered"));
    assert_eq!(bad_url.status(), 400);
    assert_eq!(impossible.status(), 400);
}

#[tokio::test]
async fn the_state_dump_shows_callbacks_and_requests_but_no_token_and_reset_forgets_them() {
    let pbx = spawn(ProviderKind::Telphin).await;
    let http = reqwest::Client::new();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", "sandbox-telphin-app"),
        ("client_secret", "sandbox-telphin-secret"),
    ];
    let token: Value =
        http.post(format!("{}/oauth/token", pbx.base_url())).form(&form).send().await.unwrap().json().await.unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    http.post(format!("{}/api/ver1.0/extension/469101/callback/", pbx.base_url()))
        .bearer_auth(&token)
        .json(&json!({"src_num": ["101"], "dst_num": "79161234567"}))
        .send()
        .await
        .unwrap();

    let dump = state(&pbx).await;
    assert_eq!(dump["provider"], "telphin");
    assert_eq!(dump["callbacks"][0]["destination"], "79161234567");
    assert_eq!(dump["tokens_issued"], 1);
    assert_eq!(dump["live_tokens"], 1);
    assert_eq!(dump["requests"][0], json!({"method": "POST", "path": "/oauth/token", "status": 200}));
    assert!(!dump.to_string().contains(&token));
    assert!(!dump.to_string().contains("sandbox-telphin-secret"));

    assert_eq!(control(&pbx, "/_control/tokens/expire", json!({})).await.status(), 204);
    assert_eq!(state(&pbx).await["live_tokens"], 0);
    assert_eq!(control(&pbx, "/_control/reset", json!({})).await.status(), 204);
    let dump = state(&pbx).await;
    assert_eq!(dump["callbacks"], json!([]));
    assert_eq!(dump["requests"], json!([]));
    assert_eq!(dump["tokens_issued"], 0);
}
