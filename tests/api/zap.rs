//! The Grupo ZAP lead contract: Basic auth, advertisers and listings, 404 semantics, re-sends, the portal flow.

use amocrm_emulator::{SeedContact, SeedLead};
use base64::Engine;
use leadgate::domain::advertiser::{Advertiser, AdvertiserId, AdvertiserRoute};
use leadgate::domain::document::Document;
use leadgate::domain::{Email, SourceId};
use serde_json::{Value, json};

use crate::helpers::{Setup, TestApp, TestProcess, ZAP_PIPELINE, ZAP_SECRET, ZAP_STAGE, spawn_app_with};

/// The contract's own example, with this test's phone and ids.
pub(crate) fn sample(origin_lead_id: &str, listing: &str, phone: &str) -> Value {
    json!({
        "leadOrigin": "VivaReal",
        "timestamp": "2017-10-23T15:50:30.619",
        "originLeadId": origin_lead_id,
        "originListingId": "87027856",
        "clientListingId": listing,
        "name": "Nome Consumidor",
        "email": "consumidor@example.com.br",
        "ddd": "11",
        "phone": phone,
        "phoneNumber": format!("11{phone}"),
        "message": "Olá, tenho interesse neste imóvel. Aguardo o contato. Obrigado.",
        "temperature": "hot",
    })
}

async fn portal_app() -> TestApp {
    let app = spawn_app_with(Setup { zap: true, ..Setup::default() }).await;
    let advertiser = |id: &str, listings: &[&str], enabled: bool, pipeline: Option<&str>| Advertiser {
        source: SourceId("zap".to_owned()),
        id: AdvertiserId::parse(id).unwrap(),
        document: Document::parse("11222333000181").unwrap(),
        name: format!("Imobiliária {id}"),
        email: Some(Email::parse("corretor@example.com.br").unwrap()),
        send_lead_email: false,
        route: AdvertiserRoute {
            destination: None,
            pipeline: pipeline.map(str::to_owned),
            status: pipeline.map(|_| "Объект выбран".to_owned()),
        },
        listings: listings.iter().map(|listing| (*listing).to_owned()).collect(),
        enabled,
    };
    app.store
        .upsert_advertisers(&[
            advertiser("123456", &["a40171"], true, None),
            advertiser("777", &["b1"], true, Some("TrendAgent")),
            advertiser("gone", &["c1"], false, None),
        ])
        .await
        .unwrap();
    app
}

pub(crate) async fn post(
    app: &TestApp,
    path: &str,
    body: &Value,
    credentials: Option<(&str, &str)>,
) -> reqwest::Response {
    let mut request = app.http.post(app.url(path)).json(body);
    if let Some((user, password)) = credentials {
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        request = request.header("authorization", format!("Basic {encoded}"));
    }
    request.send().await.unwrap()
}

pub(crate) const PORTAL: Option<(&str, &str)> = Some(("vivareal", ZAP_SECRET));

async fn accepted_id(response: reqwest::Response) -> i64 {
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

async fn zap_lead(app: &TestApp, id: i64) -> Value {
    let lead = app.store.find_lead(leadgate::domain::LeadId(id)).await.unwrap().unwrap();
    let history = app.store.history(leadgate::domain::LeadId(id)).await.unwrap();
    leadgate::http::lead_status::report(&lead, &history)
}

async fn wait_final(app: &TestApp, id: i64) -> Value {
    for _ in 0..400 {
        let lead = zap_lead(app, id).await;
        if matches!(lead["status"].as_str(), Some("approved" | "rejected" | "dead")) {
            return lead;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("lead {id} never settled: {:#}", zap_lead(app, id).await);
}

#[tokio::test]
async fn the_contract_sample_is_acknowledged_stored_and_delivered_to_the_advertisers_pipeline() {
    let app = portal_app().await;
    let id = accepted_id(post(&app, "/grupozap/lead/123456", &sample("59ee0fc6", "a40171", "999990001"), PORTAL).await)
        .await;
    let done = wait_final(&app, id).await;

    assert_eq!(done["status"], "approved");
    assert_eq!(done["phone"], "+5511999990001");
    assert_eq!(done["received"]["temperature"], "hot", "unknown fields are kept");
    let contact = &app.crm.emulator.contacts()[0];
    assert_eq!(contact.phones, ["+5511999990001"]);
    assert_eq!(contact.emails, ["consumidor@example.com.br"]);
    let deal = &app.crm.emulator.leads()[0];
    assert_eq!((deal.pipeline.as_str(), deal.status.as_str()), (ZAP_PIPELINE, ZAP_STAGE));
    let snapshot = app.crm.emulator.snapshot();
    let fields = &snapshot["leads"][0]["custom_fields_values"];
    assert_eq!(fields[0]["field_id"], amocrm_emulator::LISTING_FIELD_ID, "the configured deal field: {fields}");
    assert_eq!(fields[0]["values"][0]["value"], "a40171");
    let note = app.crm.emulator.notes()[0].text.clone().unwrap();
    for field in ["Olá, tenho interesse", "a40171", "87027856", "VivaReal", "59ee0fc6"] {
        assert!(note.contains(field), "{field} missing from the note:\n{note}");
    }
    app.stop().await;
}

#[tokio::test]
async fn an_advertiser_with_its_own_route_gets_its_leads_there() {
    let app = portal_app().await;
    let id = accepted_id(post(&app, "/grupozap/lead/777", &sample("x-1", "b1", "999990002"), PORTAL).await).await;
    wait_final(&app, id).await;
    let deal = &app.crm.emulator.leads()[0];
    assert_eq!((deal.pipeline.as_str(), deal.status.as_str()), ("TrendAgent", "Объект выбран"));
    app.stop().await;
}

#[tokio::test]
async fn missing_or_wrong_basic_credentials_get_401() {
    let app = portal_app().await;
    let body = sample("x-2", "a40171", "999990003");
    let missing = post(&app, "/grupozap/lead/123456", &body, None).await;
    assert_eq!(missing.status(), 401);
    assert!(missing.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    assert_eq!(post(&app, "/grupozap/lead/123456", &body, Some(("vivareal", "wrong"))).await.status(), 401);
    assert_eq!(post(&app, "/grupozap/lead/123456", &body, Some(("someone", ZAP_SECRET))).await.status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn a_lead_without_client_listing_id_or_with_broken_json_gets_400() {
    let app = portal_app().await;
    let mut body = sample("x-3", "a40171", "999990004");
    body.as_object_mut().unwrap().remove("clientListingId");
    let response = post(&app, "/grupozap/lead/123456", &body, PORTAL).await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("clientListingId"));
    let broken = app
        .http
        .post(app.url("/grupozap/lead/123456"))
        .header(
            "authorization",
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("vivareal:{ZAP_SECRET}"))),
        )
        .body("{\"name\":")
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status(), 400);
    assert!(app.store.count_by_status(None).await.unwrap().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn only_an_unknown_or_disabled_advertiser_gets_404() {
    let app = portal_app().await;
    let body = sample("x-4", "zzz", "999990005");
    assert_eq!(post(&app, "/grupozap/lead/nobody", &body, PORTAL).await.status(), 404);
    assert_eq!(post(&app, "/grupozap/lead/gone", &body, PORTAL).await.status(), 404);
    assert_eq!(post(&app, "/grupozap/lead", &sample("x-5", "c1", "999990005"), PORTAL).await.status(), 404);
    assert!(app.store.count_by_status(None).await.unwrap().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn the_single_endpoint_routes_by_listing_and_keeps_an_unknown_listing_as_unrouted() {
    let app = portal_app().await;
    let routed = accepted_id(post(&app, "/grupozap/lead", &sample("x-6", "a40171", "999990006"), PORTAL).await).await;
    assert_eq!(wait_final(&app, routed).await["status"], "approved");

    let unrouted =
        accepted_id(post(&app, "/grupozap/lead", &sample("x-7", "not-yet-listed", "999990007"), PORTAL).await).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(zap_lead(&app, unrouted).await["status"], "unrouted", "it waits for an operator");
    assert_eq!(app.crm.emulator.contacts_count(), 1);

    let output = std::process::Command::new(TestProcess::BINARY)
        .args(["leads", "route", &unrouted.to_string(), "--advertiser", "777"])
        .env("LEADGATE_STORE__URL", &app.store_url)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let done = wait_final(&app, unrouted).await;
    assert_eq!(done["status"], "approved");
    assert!(app.crm.emulator.leads().iter().any(|deal| deal.pipeline == "TrendAgent"));
    app.stop().await;
}

#[tokio::test]
async fn a_re_sent_lead_even_two_at_once_makes_one_lead() {
    let app = portal_app().await;
    let body = sample("same-origin-id", "a40171", "999990008");
    let (first, second) = tokio::join!(
        post(&app, "/grupozap/lead/123456", &body, PORTAL),
        post(&app, "/grupozap/lead/123456", &body, PORTAL)
    );
    let (first, second) = (accepted_id(first).await, accepted_id(second).await);
    assert_eq!(first, second);
    let later = accepted_id(post(&app, "/grupozap/lead/123456", &body, PORTAL).await).await;
    assert_eq!(later, first);
    wait_final(&app, first).await;
    let stored: i64 = app.store.count_by_status(None).await.unwrap().iter().map(|(_, count)| count).sum();
    assert_eq!(stored, 1);
    assert_eq!(app.crm.emulator.contacts_count(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_known_client_gets_a_note_on_the_deal_it_has_or_a_new_deal_when_found_by_email() {
    let app = portal_app().await;
    let with_deal = SeedContact {
        name: "Cliente".to_owned(),
        phones: vec!["+55 11 99999-0009".to_owned()],
        emails: Vec::new(),
        leads: vec![SeedLead {
            pipeline: ZAP_PIPELINE.to_owned(),
            status: "Переговоры".to_owned(),
            ..SeedLead::default()
        }],
    };
    let seeded = app.crm.emulator.seed_contact(&with_deal).unwrap();
    let noted =
        accepted_id(post(&app, "/grupozap/lead/123456", &sample("k-1", "a40171", "999990009"), PORTAL).await).await;
    let noted = wait_final(&app, noted).await;
    assert_eq!(noted["outcome"]["decision"], "known_client_deal_noted");
    assert_eq!(noted["outcome"]["deal_id"], seeded.lead_ids[0]);
    assert_eq!(app.crm.emulator.leads_count(), 1, "no new deal");
    assert_eq!(app.crm.emulator.notes()[0].entity_id, seeded.lead_ids[0]);

    let by_email = SeedContact {
        name: "Outro".to_owned(),
        phones: vec!["+55 21 3333-0000".to_owned()],
        emails: vec!["fiel@example.com.br".to_owned()],
        leads: Vec::new(),
    };
    let known = app.crm.emulator.seed_contact(&by_email).unwrap();
    let mut body = sample("k-2", "a40171", "999990010");
    body["email"] = json!("FIEL@example.com.br");
    let new_deal = wait_final(&app, accepted_id(post(&app, "/grupozap/lead/123456", &body, PORTAL).await).await).await;
    assert_eq!(new_deal["outcome"]["decision"], "known_client_new_deal");
    assert_eq!(new_deal["outcome"]["contact_id"], known.contact_id);
    assert_eq!(app.crm.emulator.contacts_count(), 2, "no contact was created");
    assert_eq!(app.crm.emulator.leads_count(), 2);
    app.stop().await;
}

#[tokio::test]
async fn an_advertiser_with_send_lead_email_gets_a_copy_of_each_lead() {
    let sink = crate::smtp_sink::SmtpSink::start().await;
    let app = spawn_app_with(Setup { zap: true, smtp_url: Some(sink.url()), ..Setup::default() }).await;
    let advertiser = Advertiser {
        source: SourceId("zap".to_owned()),
        id: AdvertiserId::parse("555").unwrap(),
        document: Document::parse("56921485000100").unwrap(),
        name: "Imobiliária Mail".to_owned(),
        email: Some(Email::parse("corretor@imobiliaria.com.br").unwrap()),
        send_lead_email: true,
        route: AdvertiserRoute::default(),
        listings: vec!["m1".to_owned()],
        enabled: true,
    };
    app.store.upsert_advertisers(&[advertiser]).await.unwrap();
    let id = accepted_id(post(&app, "/grupozap/lead/555", &sample("mail-1", "m1", "999990011"), PORTAL).await).await;
    wait_final(&app, id).await;
    let arrived =
        crate::helpers::poll_until(std::time::Duration::from_secs(10), || async { !sink.messages().is_empty() }).await;
    assert!(arrived, "the advertiser's copy was sent");
    let mail = &sink.messages()[0];
    assert_eq!(mail.to, ["corretor@imobiliaria.com.br"]);
    assert!(mail.body.contains("Olá, tenho interesse"), "{}", mail.body);
    app.stop().await;
}

#[tokio::test]
async fn an_advertiser_with_a_secret_of_its_own_is_reached_only_with_that_secret() {
    let app = portal_app().await;
    let own = secrecy::SecretString::from("advertiser-777-secret");
    app.store
        .set_advertiser_secret(&SourceId("zap".to_owned()), &AdvertiserId::parse("777").unwrap(), Some(&own))
        .await
        .unwrap();
    let body = sample("own-1", "b1", "999990012");
    assert_eq!(
        post(&app, "/grupozap/lead/777", &body, PORTAL).await.status(),
        401,
        "the source's secret no longer opens it"
    );
    let id =
        accepted_id(post(&app, "/grupozap/lead/777", &body, Some(("vivareal", "advertiser-777-secret"))).await).await;
    assert!(id > 0);
    let other = sample("own-2", "a40171", "999990013");
    assert_eq!(
        post(&app, "/grupozap/lead/123456", &other, PORTAL).await.status(),
        200,
        "other advertisers keep the source's"
    );
    app.stop().await;
}
