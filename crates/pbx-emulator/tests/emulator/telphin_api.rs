//! Telphin's API as leadgate calls it: client-credentials token, call-back (401 without a token), recordings.

use pbx_emulator::{PbxConfig, PlayOptions, ProviderKind, RunningPbx};
use serde_json::{Value, json};

use crate::harness::{Receiver, Verify, scenario};

const CLIENT_ID: &str = "sandbox-telphin-app";
const CLIENT_SECRET: &str = "sandbox-telphin-secret";

async fn spawn_telphin() -> RunningPbx {
    pbx_emulator::spawn(PbxConfig::sandbox(ProviderKind::Telphin)).await.expect("a loopback port")
}

async fn token(http: &reqwest::Client, pbx: &RunningPbx) -> String {
    let form = [("grant_type", "client_credentials"), ("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET)];
    let response = http.post(format!("{}/oauth/token", pbx.base_url())).form(&form).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

fn callback_url(pbx: &RunningPbx) -> String {
    format!("{}/api/ver1.0/extension/469101/callback/", pbx.base_url())
}

#[tokio::test]
async fn the_token_endpoint_answers_client_credentials_with_a_bearer_token() {
    let pbx = spawn_telphin().await;
    let http = reqwest::Client::new();
    let form = [("grant_type", "client_credentials"), ("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET)];

    let response = http.post(format!("{}/oauth/token", pbx.base_url())).form(&form).send().await.unwrap();

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["access_token"].as_str().is_some_and(|token| !token.is_empty()));
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert!(body.get("refresh_token").is_none());
    assert_eq!(pbx.pbx.tokens_issued(), 1);
}

#[tokio::test]
async fn the_token_endpoint_refuses_a_wrong_secret_and_other_grants() {
    let pbx = spawn_telphin().await;
    let http = reqwest::Client::new();
    let url = format!("{}/oauth/token", pbx.base_url());

    let wrong = [("grant_type", "client_credentials"), ("client_id", CLIENT_ID), ("client_secret", "guess")];
    let response = http.post(&url).form(&wrong).send().await.unwrap();
    assert_eq!(response.status(), 401);

    let password = [("grant_type", "password"), ("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET)];
    let response = http.post(&url).form(&password).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(pbx.pbx.tokens_issued(), 0);
}

#[tokio::test]
async fn a_callback_without_a_valid_bearer_token_gets_401_and_places_no_call() {
    let pbx = spawn_telphin().await;
    let http = reqwest::Client::new();
    let body = json!({"src_num": ["101"], "dst_num": "79161234567"});

    let anonymous = http.post(callback_url(&pbx)).json(&body).send().await.unwrap();
    let forged = http.post(callback_url(&pbx)).bearer_auth("forged").json(&body).send().await.unwrap();
    let token = token(&http, &pbx).await;
    pbx.pbx.expire_tokens();
    let expired = http.post(callback_url(&pbx)).bearer_auth(&token).json(&body).send().await.unwrap();

    assert_eq!([anonymous.status(), forged.status(), expired.status()].map(|status| status.as_u16()), [401, 401, 401]);
    assert!(pbx.pbx.callbacks().is_empty());
}

#[tokio::test]
async fn a_callback_with_a_token_answers_call_api_id_and_call_id_and_is_recorded() {
    let pbx = spawn_telphin().await;
    let http = reqwest::Client::new();
    let token = token(&http, &pbx).await;
    let body =
        json!({"src_num": ["101"], "dst_num": "79161234567", "caller_id_name": "leadgate", "wait_for_pickup": 20});

    let response = http.post(callback_url(&pbx)).bearer_auth(&token).json(&body).send().await.unwrap();

    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    let call_api_id = answer["call_api_id"].as_str().unwrap();
    assert!(answer["call_id"].as_str().is_some_and(|id| !id.is_empty()));
    let callbacks = pbx.pbx.callbacks();
    assert_eq!(callbacks.len(), 1);
    assert_eq!(callbacks[0].extension, "469101");
    assert_eq!(callbacks[0].sources, ["101"]);
    assert_eq!(callbacks[0].destination, "79161234567");
    assert_eq!(callbacks[0].request, body);
    assert_eq!(callbacks[0].call_id, call_api_id);
}

#[tokio::test]
async fn a_callback_without_sources_or_destination_is_refused() {
    let pbx = spawn_telphin().await;
    let http = reqwest::Client::new();
    let token = token(&http, &pbx).await;

    for body in [json!({"dst_num": "79161234567"}), json!({"src_num": [], "dst_num": "7"}), json!({"src_num": ["101"]})]
    {
        let response = http.post(callback_url(&pbx)).bearer_auth(&token).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 400, "{body}");
    }
    assert!(pbx.pbx.callbacks().is_empty());
}

#[tokio::test]
async fn a_played_recording_is_served_by_storage_url_and_as_the_mp3_itself() {
    let pbx = spawn_telphin().await;
    let receiver = Receiver::spawn(Verify::Nothing).await;
    pbx.pbx.play(&scenario("incoming-known-answered"), &receiver.url("/t"), &PlayOptions::default()).await.unwrap();
    let rec_id = receiver.received().iter().find_map(|event| event.field("RecID").map(str::to_owned)).unwrap();
    let http = reqwest::Client::new();
    let token = token(&http, &pbx).await;
    let record = format!("{}/api/ver1.0/client/37649/record/{rec_id}", pbx.base_url());

    let storage: Value =
        http.get(format!("{record}/storage_url/")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    let link = storage["record_url"].as_str().unwrap();
    let linked = http.get(link).send().await.unwrap();
    let direct = http.get(&record).bearer_auth(&token).send().await.unwrap();
    let via_me = http.get(record.replace("/37649/", "/@me/")).bearer_auth(&token).send().await.unwrap();

    assert_eq!(linked.status(), 200, "the storage link needs no token");
    assert_eq!(direct.headers()["content-type"], "audio/mpeg");
    assert_eq!(via_me.status(), 200);
    let bytes = direct.bytes().await.unwrap();
    assert_eq!(&bytes[..2], &[0xFF, 0xFB], "an MPEG audio frame");
    assert_eq!(linked.bytes().await.unwrap(), bytes);
    let served: Vec<String> = pbx.pbx.served_recordings().into_iter().map(|served| served.served_as).collect();
    assert_eq!(served, ["storage_url", "link", "file", "file"]);
}

#[tokio::test]
async fn recordings_need_a_token_and_unknown_ones_are_404() {
    let pbx = spawn_telphin().await;
    pbx.pbx.add_recording("469101-AAAA", "CALL", 30);
    let http = reqwest::Client::new();
    let token = token(&http, &pbx).await;
    let base = format!("{}/api/ver1.0/client/37649/record", pbx.base_url());

    let anonymous = http.get(format!("{base}/469101-AAAA")).send().await.unwrap();
    let unknown = http.get(format!("{base}/469101-BBBB")).bearer_auth(&token).send().await.unwrap();
    let unknown_url = http.get(format!("{base}/469101-BBBB/storage_url/")).bearer_auth(&token).send().await.unwrap();
    let other_client = http
        .get(format!("{}/api/ver1.0/client/1/record/469101-AAAA", pbx.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let stale_link = http.get(format!("{}/storage/nothing", pbx.base_url())).send().await.unwrap();

    assert_eq!(anonymous.status(), 401);
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown_url.status(), 404);
    assert_eq!(other_client.status(), 404);
    assert_eq!(stale_link.status(), 404);
    assert!(pbx.pbx.served_recordings().is_empty());
}

#[tokio::test]
async fn the_extension_list_names_each_extension_with_its_id_and_the_callback_takes_only_those() {
    let pbx = spawn_telphin().await;
    let http = reqwest::Client::new();
    let token = token(&http, &pbx).await;
    let url = format!("{}/api/ver1.0/client/@me/extension/", pbx.base_url());
    let listed: Value = http.get(&url).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    let manager = listed.as_array().unwrap().iter().find(|extension| extension["name"] == "100*101").unwrap();
    assert_eq!((manager["id"].as_u64(), manager["type"].as_str()), (Some(469_101), Some("phone")));
    let ivr = listed.as_array().unwrap().iter().find(|extension| extension["name"] == "100*099").unwrap();
    assert_eq!(ivr["type"], "ivr");
    assert_eq!(http.get(&url).send().await.unwrap().status(), 401, "the list needs a token");

    let body = json!({"src_num": ["100*101"], "dst_num": "79161234567"});
    let unknown = format!("{}/api/ver1.0/extension/469999/callback/", pbx.base_url());
    let response = http.post(unknown).bearer_auth(&token).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 404, "an id that is not the account's");
    assert!(pbx.pbx.callbacks().is_empty());
}
