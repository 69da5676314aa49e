//! Callbacks: delivered from the outbox, signed, retried until the receiver recovers, refused for internal addresses.

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use leadgate::domain::LeadId;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::callback_receiver::CallbackReceiver;
use crate::helpers::{Setup, history_kinds, poll_until, spawn_app, spawn_app_with};

fn lead_with_callback(phone: &str, receiver: &CallbackReceiver) -> Value {
    json!({ "name": "Анна", "phone": phone, "callbackUrl": receiver.url() })
}

/// Each signature of `webhook-signature`, checked the way a receiver would from the headers and
/// the raw body: which of `secrets` signed the callback.
pub fn secrets_that_signed(callback: &crate::callback_receiver::ReceivedCallback, secrets: &[&str]) -> Vec<String> {
    let header = |name: &str| callback.headers[name].to_str().unwrap().to_owned();
    let signed =
        format!("{}.{}.{}", header("webhook-id"), header("webhook-timestamp"), String::from_utf8_lossy(&callback.body));
    let presented = header("webhook-signature");
    let presented: Vec<&str> = presented.split(' ').collect();
    secrets
        .iter()
        .filter(|secret| {
            let key = match secret.strip_prefix("whsec_") {
                Some(encoded) => base64::engine::general_purpose::STANDARD.decode(encoded).unwrap(),
                None => secret.as_bytes().to_vec(),
            };
            let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
            mac.update(signed.as_bytes());
            let expected =
                format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()));
            presented.contains(&expected.as_str())
        })
        .map(|secret| (*secret).to_owned())
        .collect()
}

#[tokio::test]
async fn the_sender_gets_a_signed_callback_with_the_outcome() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let app = spawn_app_with(Setup { callback_secrets: vec![secret.to_owned()], ..Setup::default() }).await;
    let receiver = CallbackReceiver::start().await;
    let id = app.accept(lead_with_callback("+79996000001", &receiver)).await;
    app.wait_for(id, &["approved"]).await;
    assert!(poll_until(Duration::from_secs(10), || async { !receiver.received().is_empty() }).await);

    let callback = &receiver.received()[0];
    let body: Value = serde_json::from_slice(&callback.body).unwrap();
    assert_eq!(body["id"], id);
    assert_eq!(body["status"], "approved");
    assert_eq!(body["unique"], true);
    assert_eq!(body["message"], "Клиент уникальный");
    let deal = &app.crm.emulator.leads()[0];
    assert_eq!(body["deal_id"], deal.id);
    assert_eq!(body["contact_id"], deal.contact_ids[0]);
    assert!(body["occurred_at"].is_string());
    assert_eq!(secrets_that_signed(callback, &[secret, "whsec_c29tZSBvdGhlciBzZWNyZXQ="]), [secret]);

    let recorded = poll_until(Duration::from_secs(5), || async {
        history_kinds(&app.get_lead(id).await).contains(&"callback_delivered".to_owned())
    })
    .await;
    assert!(recorded, "{:#}", app.get_lead(id).await);
    app.stop().await;
}

/// During a change of secret each callback carries a signature by each, so a receiver holding
/// either the old or the new secret accepts it.
#[tokio::test]
async fn with_two_callback_secrets_each_callback_is_signed_by_both() {
    let (new, old) = ("whsec_bmV3IHNlY3JldCBvZiB0aGUgcmVjZWl2ZXI=", "the-old-plain-secret-0123");
    let secrets = vec![new.to_owned(), old.to_owned()];
    let app = spawn_app_with(Setup { callback_secrets: secrets, ..Setup::default() }).await;
    let receiver = CallbackReceiver::start().await;
    let id = app.accept(lead_with_callback("+79996000009", &receiver)).await;
    app.wait_for(id, &["approved"]).await;
    assert!(poll_until(Duration::from_secs(10), || async { !receiver.received().is_empty() }).await);
    let callback = &receiver.received()[0];
    assert_eq!(secrets_that_signed(callback, &[new, old, "some-secret-nobody-has-0"]), [new, old]);
    app.stop().await;
}

#[tokio::test]
async fn a_known_client_gets_the_not_unique_callback_and_no_secret_means_no_signature() {
    let app = spawn_app().await;
    let receiver = CallbackReceiver::start().await;
    let first = app.accept(lead_with_callback("+79996000002", &receiver)).await;
    app.wait_for(first, &["approved"]).await;
    let second = app.accept(lead_with_callback("+79996000002", &receiver)).await;
    app.wait_for(second, &["rejected"]).await;
    assert!(poll_until(Duration::from_secs(10), || async { receiver.accepted().len() == 2 }).await);

    let bodies = receiver.accepted();
    let repeat = bodies.iter().find(|body| body["id"] == second).unwrap();
    assert_eq!(repeat["status"], "rejected");
    assert_eq!(repeat["unique"], false);
    assert_eq!(repeat["message"], "Клиент не уникален");
    assert!(!receiver.received()[0].headers.contains_key("webhook-signature"));
    app.stop().await;
}

#[tokio::test]
async fn a_receiver_that_fails_for_a_while_gets_every_callback_once_it_recovers() {
    let app = spawn_app().await;
    let receiver = CallbackReceiver::start().await;
    receiver.fail_for(Duration::from_secs(2), 503);
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(app.accept(lead_with_callback(&format!("+7999601{n:04}"), &receiver)).await);
    }
    let all_delivered = poll_until(Duration::from_secs(20), || async {
        let mut settled = true;
        for id in &ids {
            let owed = app.store.owed_feedback(LeadId(*id)).await.unwrap();
            settled &= !owed.is_empty() && owed.iter().all(|owed| owed.status == "delivered");
        }
        settled
    })
    .await;
    assert!(all_delivered, "{} of {} callbacks arrived", receiver.accepted().len(), ids.len());

    let received = receiver.received();
    assert!(received.iter().any(|callback| callback.answered == 503), "the receiver was down at first");
    for id in &ids {
        // Every attempt of one outcome carried the same message id and the same body.
        let attempts: Vec<_> = received
            .iter()
            .filter(|callback| serde_json::from_slice::<Value>(&callback.body).unwrap()["id"] == *id)
            .collect();
        assert!(
            attempts
                .windows(2)
                .all(|pair| pair[0].body == pair[1].body
                    && pair[0].headers["webhook-id"] == pair[1].headers["webhook-id"])
        );
        let lead = app.get_lead(*id).await;
        let kinds = history_kinds(&lead);
        assert!(kinds.contains(&"callback_attempt_failed".to_owned()), "{kinds:?}");
        assert!(kinds.contains(&"callback_delivered".to_owned()), "{kinds:?}");
        let failed = lead["history"]
            .as_array()
            .unwrap()
            .iter()
            .find(|event| event["kind"] == "callback_attempt_failed")
            .unwrap();
        assert_eq!(failed["detail"]["status"], 503);
        assert!(failed["detail"]["duration_ms"].is_u64());
        let owed = app.store.owed_feedback(LeadId(*id)).await.unwrap();
        assert_eq!(owed[0].status, "delivered");
    }
    let accepted_ids: std::collections::BTreeSet<i64> =
        receiver.accepted().iter().map(|body| body["id"].as_i64().unwrap()).collect();
    assert_eq!(accepted_ids.len(), ids.len());
    app.stop().await;
}

#[tokio::test]
async fn callbacks_to_internal_addresses_are_refused_at_intake() {
    let app = spawn_app_with(Setup { allow_private_callbacks: false, ..Setup::default() }).await;
    for url in [
        "http://127.0.0.1:9/callback",
        "http://localhost/cb",
        "http://10.0.0.7/cb",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/cb",
    ] {
        let response = app.post_lead(&json!({ "name": "Иван", "phone": "+79996000003", "callbackUrl": url })).await;
        assert_eq!(response.status(), 400, "{url}");
        let message = response.json::<Value>().await.unwrap()["error"].as_str().unwrap().to_owned();
        assert!(message.contains("callbackUrl") && message.contains("public"), "{message}");
    }
    assert!(app.store.count_by_status(None).await.unwrap().is_empty(), "nothing was stored");
    app.stop().await;
}
