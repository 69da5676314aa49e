//! Zadarma's signed recording-link request and Mango's signed API, with their (UNCONFIRMED) call-back commands.

use pbx_emulator::{PbxConfig, PlayOptions, ProviderKind, RunningPbx};
use serde_json::{Value, json};

use crate::harness::{MANGO_KEY, MANGO_SALT, Receiver, Verify, mango_sign, scenario, zadarma_authorization};

const RECORD_PATH: &str = "/v1/pbx/record/request/";

async fn spawn(kind: ProviderKind) -> RunningPbx {
    pbx_emulator::spawn(PbxConfig::sandbox(kind)).await.expect("a loopback port")
}

async fn zadarma_get(pbx: &RunningPbx, path: &str, params: &[(&str, &str)], authorization: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}{path}", pbx.base_url()))
        .query(params)
        .header("Authorization", authorization)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn zadarma_answers_a_signed_record_request_with_an_expiring_link_to_the_mp3() {
    let pbx = spawn(ProviderKind::Zadarma).await;
    let receiver = Receiver::spawn(Verify::Zadarma).await;
    pbx.pbx.play(&scenario("outgoing-known-answered"), &receiver.url("/z"), &PlayOptions::default()).await.unwrap();
    let record = receiver.received().into_iter().find(|event| event.field("event") == Some("NOTIFY_RECORD")).unwrap();
    let call_id = record.get("call_id_with_rec").to_owned();
    let params = [("call_id", call_id.as_str()), ("lifetime", "180")];

    let response = zadarma_get(&pbx, RECORD_PATH, &params, &zadarma_authorization(RECORD_PATH, &params)).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "success");
    assert!(body["lifetime_till"].is_string());
    let file = reqwest::get(body["link"].as_str().unwrap()).await.unwrap();
    assert_eq!(file.status(), 200);
    assert_eq!(&file.bytes().await.unwrap()[..2], &[0xFF, 0xFB]);

    let by_call = [("pbx_call_id", record.get("pbx_call_id"))];
    let response = zadarma_get(&pbx, RECORD_PATH, &by_call, &zadarma_authorization(RECORD_PATH, &by_call)).await;
    assert_eq!(response.status(), 200, "the recording is also found by pbx_call_id");
}

#[tokio::test]
async fn zadarma_refuses_a_bad_signature_and_answers_404_for_an_unknown_recording() {
    let pbx = spawn(ProviderKind::Zadarma).await;
    pbx.pbx.add_recording("1715944401.4242", "in_x", 10);
    let params = [("call_id", "1715944401.4242")];
    let signed_for_other = zadarma_authorization(RECORD_PATH, &[("call_id", "1715944401.4243")]);

    let forged = zadarma_get(&pbx, RECORD_PATH, &params, &signed_for_other).await;
    let unsigned = zadarma_get(&pbx, RECORD_PATH, &params, "").await;
    let unknown_params = [("call_id", "9.9")];
    let unknown =
        zadarma_get(&pbx, RECORD_PATH, &unknown_params, &zadarma_authorization(RECORD_PATH, &unknown_params)).await;
    let short_params = [("call_id", "1715944401.4242"), ("lifetime", "10")];
    let too_short =
        zadarma_get(&pbx, RECORD_PATH, &short_params, &zadarma_authorization(RECORD_PATH, &short_params)).await;

    assert_eq!(forged.status(), 401);
    assert_eq!(forged.json::<Value>().await.unwrap()["status"], "error");
    assert_eq!(unsigned.status(), 401);
    assert_eq!(unknown.status(), 404);
    assert_eq!(too_short.status(), 400, "lifetime is 180 s at least");
}

#[tokio::test]
async fn zadarma_records_a_signed_callback() {
    let pbx = spawn(ProviderKind::Zadarma).await;
    let path = "/v1/request/callback/";
    let params = [("from", "101"), ("to", "79161234567")];

    let response = zadarma_get(&pbx, path, &params, &zadarma_authorization(path, &params)).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["status"].as_str(), body["from"].as_str(), body["to"].as_str()),
        (Some("success"), Some("101"), Some("79161234567"))
    );
    assert_eq!(pbx.pbx.callbacks()[0].destination, "79161234567");
}

async fn mango_post(pbx: &RunningPbx, path: &str, json: &str, sign: &str) -> reqwest::Response {
    let form = [("vpbx_api_key", MANGO_KEY), ("sign", sign), ("json", json)];
    reqwest::Client::new().post(format!("{}{path}", pbx.base_url())).form(&form).send().await.unwrap()
}

#[tokio::test]
async fn mango_serves_a_recording_to_a_signed_request_and_refuses_a_bad_sign() {
    let pbx = spawn(ProviderKind::Mango).await;
    let receiver = Receiver::spawn(Verify::Mango).await;
    pbx.pbx.play(&scenario("incoming-known-answered"), &receiver.url("/m"), &PlayOptions::default()).await.unwrap();
    let added = receiver.received().into_iter().find(|event| event.path == "/m/events/record/added").unwrap();
    let recording_id = added.json()["recording_id"].as_str().unwrap().to_owned();
    let path = "/vpbx/queries/recording/post";
    let json = json!({"recording_id": recording_id, "action": "download"}).to_string();

    let download = mango_post(&pbx, path, &json, &mango_sign(MANGO_KEY, &json, MANGO_SALT)).await;
    let forged = mango_post(&pbx, path, &json, &mango_sign(MANGO_KEY, &json, "other-salt")).await;
    let missing = json!({"recording_id": "nope", "action": "download"}).to_string();
    let unknown = mango_post(&pbx, path, &missing, &mango_sign(MANGO_KEY, &missing, MANGO_SALT)).await;

    assert_eq!(download.status(), 200);
    assert_eq!(download.headers()["content-type"], "audio/mpeg");
    assert_eq!(forged.status(), 401);
    assert_eq!(forged.json::<Value>().await.unwrap()["result"], 3102);
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn mango_records_a_signed_callback_command() {
    let pbx = spawn(ProviderKind::Mango).await;
    let json = json!({"command_id": "lead-7", "from": {"extension": "101"}, "to_number": "79161234567"}).to_string();

    let response = mango_post(&pbx, "/vpbx/commands/callback", &json, &mango_sign(MANGO_KEY, &json, MANGO_SALT)).await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["result"], 1000);
    let callbacks = pbx.pbx.callbacks();
    assert_eq!((callbacks[0].extension.as_str(), callbacks[0].call_id.as_str()), ("101", "lead-7"));
}

#[tokio::test]
async fn each_pbx_serves_only_its_own_providers_api() {
    let pbx = spawn(ProviderKind::Mango).await;
    let response = reqwest::Client::new().post(format!("{}/oauth/token", pbx.base_url())).send().await.unwrap();
    assert_eq!(response.status(), 404);
}
