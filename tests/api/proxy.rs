//! The Roistat-compatible proxy-lead API: every parameter, the limits, charsets, templates,
//! the duplicate check, sync mode against a slow and a failing CRM, and follow-up messages.

use std::time::Duration;

use amocrm_emulator::{Fault, FaultLimit, Latency, LeadSummary, POSITION_FIELD_ID, USER_ID};
use leadgate::domain::{LeadId, LeadStatus};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PROXY_KEY, Setup, TestApp, ZAP_PIPELINE, poll_until, proxy_source, spawn_app_with};

async fn spawn() -> TestApp {
    spawn_app_with(Setup { proxy: Some(proxy_source()), ..Setup::default() }).await
}

/// `GET /api/proxy/1.0/leads/add?…` the way PHP's `file_get_contents` sends it.
async fn add(app: &TestApp, parameters: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = app
        .http
        .get(app.url("/api/proxy/1.0/leads/add"))
        .query(&[("key", PROXY_KEY)])
        .query(parameters)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn wait_status(app: &TestApp, id: i64, wanted: LeadStatus) {
    let settled = poll_until(Duration::from_secs(10), || async {
        app.store.find_lead(LeadId(id)).await.unwrap().is_some_and(|lead| lead.status == wanted)
    })
    .await;
    let lead = app.store.find_lead(LeadId(id)).await.unwrap();
    assert!(settled, "lead {id} did not become {wanted:?}: {lead:?}");
}

async fn stored_leads(app: &TestApp) -> usize {
    app.store.list_leads(None, None, 1000).await.unwrap().len()
}

fn website_deals(app: &TestApp) -> Vec<LeadSummary> {
    app.crm.emulator.leads_in_pipeline(ZAP_PIPELINE)
}

fn notes_of(app: &TestApp, deal_id: u64) -> Vec<String> {
    let notes = app.crm.emulator.notes().into_iter().filter(|note| note.entity_id == deal_id);
    notes.filter_map(|note| note.text).collect()
}

#[tokio::test]
async fn every_parameter_of_the_seed_reaches_the_deal_and_contact_with_templates_filled() {
    let app = spawn().await;
    let user = USER_ID.to_string();
    let position_field = format!("client_fields[{POSITION_FIELD_ID}]");
    let listing_field = format!("fields[{}]", amocrm_emulator::LISTING_FIELD_ID);
    let (status, body) = add(
        &app,
        &[
            ("roistat", "777"),
            ("title", "Новая сделка {visit} из {utmSource} {unknownVariable}"),
            ("comment", "utm_medium: {utmMedium}, город {city}"),
            ("name", "Иван {visit}"),
            ("email", "ivan@example.ru"),
            ("phone", "+7 (999) 100-20-30"),
            ("order_creation_method", "Ловец лидов"),
            ("is_need_callback", "1"),
            ("callback_phone", "+79990000000"),
            ("utm_source", "yandex"),
            ("utm_medium", "cpc"),
            ("city", "Москва"),
            ("fields[price]", "123"),
            ("fields[responsible_user_id]", &user),
            ("fields[tags]", "Тег1, {utmSource}"),
            (&listing_field, "{city}"),
            (&position_field, "Директор"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "success");
    let id = body["id"].as_i64().unwrap();
    wait_status(&app, id, LeadStatus::Approved).await;

    let deals = website_deals(&app);
    assert_eq!(deals.len(), 1);
    let deal = &deals[0];
    assert_eq!(deal.name, "Новая сделка 777 из yandex {unknownVariable}");
    assert_eq!(deal.price, 123);
    assert_eq!(deal.responsible_user_id, USER_ID);
    assert!(deal.tags.contains(&"Тег1".to_owned()) && deal.tags.contains(&"yandex".to_owned()), "{:?}", deal.tags);
    assert_eq!(deal.custom_fields[&amocrm_emulator::LISTING_FIELD_ID], ["Москва"]);
    let contact = app.crm.emulator.contacts().into_iter().find(|contact| contact.id == deal.contact_ids[0]).unwrap();
    assert_eq!(contact.name, "Иван 777");
    assert_eq!(contact.custom_fields[&POSITION_FIELD_ID], ["Директор"]);
    assert_eq!(contact.emails, ["ivan@example.ru"]);
    let note = notes_of(&app, deal.id).join("\n");
    for expected in
        ["utm_medium: cpc, город Москва", "order_creation_method: Ловец лидов", "callback_phone: +79990000000"]
    {
        assert!(note.contains(expected), "«{expected}» missing from the note:\n{note}");
    }
    assert!(!note.contains(PROXY_KEY), "the source's key must not be copied into the CRM");
}

/// A site sending a field id the account does not have (a field deleted in amoCRM, a typo)
/// would have its deal refused after the contact was made. The lead is delivered instead, one
/// contact and one deal, with the known fields filled and the unknown values in the note and
/// the history; the account's field lists are read once for both leads, not once per lead.
#[tokio::test]
async fn field_ids_the_account_lacks_are_left_out_and_the_lead_still_arrives_whole() {
    let app = spawn().await;
    let listing_field = format!("fields[{}]", amocrm_emulator::LISTING_FIELD_ID);
    let position_field = format!("client_fields[{POSITION_FIELD_ID}]");
    let mut ids = Vec::new();
    for phone in ["89991230101", "89991230102"] {
        let (status, body) = add(
            &app,
            &[
                ("phone", phone),
                (&listing_field, "Москва"),
                ("fields[990001]", "устаревшее поле"),
                (&position_field, "Директор"),
                ("client_fields[990002]", "поле контакта"),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        ids.push(body["id"].as_i64().unwrap());
    }
    for id in &ids {
        wait_status(&app, *id, LeadStatus::Approved).await;
    }

    let deals = website_deals(&app);
    assert_eq!(deals.len(), 2);
    assert_eq!(app.crm.emulator.contacts_count(), 2, "no contact is left without its deal");
    for deal in &deals {
        assert_eq!(deal.custom_fields.keys().copied().collect::<Vec<_>>(), [amocrm_emulator::LISTING_FIELD_ID]);
        let contact =
            app.crm.emulator.contacts().into_iter().find(|contact| contact.id == deal.contact_ids[0]).unwrap();
        assert_eq!(
            contact.custom_fields.get(&POSITION_FIELD_ID).map(Vec::as_slice),
            Some(&["Директор".to_owned()][..])
        );
        assert!(!contact.custom_fields.contains_key(&990_002));
        let note = notes_of(&app, deal.id).join("\n");
        assert!(note.contains("fields[990001]: устаревшее поле"), "{note}");
        assert!(note.contains("client_fields[990002]: поле контакта"), "{note}");
    }
    let history = app.store.history(LeadId(ids[0])).await.unwrap();
    let left_out: Vec<(Value, Value)> = history
        .iter()
        .filter(|event| event.kind == "custom_fields_left_out")
        .map(|event| (event.detail["record"].clone(), event.detail["field_ids"].clone()))
        .collect();
    assert_eq!(left_out, [(json!("contact"), json!([990_002])), (json!("deal"), json!([990_001]))], "{history:?}");
    let list_reads = |path: &str| {
        let requests = app.crm.emulator.requests();
        requests.iter().filter(|call| call.method == "GET" && call.path.starts_with(path)).count()
    };
    assert_eq!(list_reads("/api/v4/leads/custom_fields"), 1);
    assert_eq!(list_reads("/api/v4/contacts/custom_fields"), 1);
}

#[tokio::test]
async fn a_form_post_and_a_json_post_are_accepted_like_a_query_string() {
    let app = spawn().await;
    let url = app.url("/api/proxy/1.0/leads/add");
    let form = [("key", PROXY_KEY), ("name", "Форма"), ("phone", "89991112233"), ("fields[price]", "10")];
    let by_form = app.http.post(&url).form(&form).send().await.unwrap();
    assert_eq!(by_form.status(), StatusCode::OK);
    let json_body = json!({ "key": PROXY_KEY, "name": "JSON", "phone": "89994445566", "fields": { "price": 20 } });
    let by_json = app.http.post(&url).json(&json_body).send().await.unwrap();
    assert_eq!(by_json.status(), StatusCode::OK);
    for body in [by_form.json::<Value>().await.unwrap(), by_json.json::<Value>().await.unwrap()] {
        wait_status(&app, body["id"].as_i64().unwrap(), LeadStatus::Approved).await;
    }
    let mut prices: Vec<u64> = website_deals(&app).iter().map(|deal| deal.price).collect();
    prices.sort_unstable();
    assert_eq!(prices, [10, 20]);
}

#[tokio::test]
async fn a_windows_1251_site_is_converted_when_it_names_its_charset() {
    let app = spawn().await;
    // «Иван» and «Заявка» in Windows-1251, percent-encoded as such a site's http_build_query does.
    let query = format!(
        "key={PROXY_KEY}&name=%C8%E2%E0%ED&title=%C7%E0%FF%E2%EA%E0&phone=89995556677&fields%5Bcharset%5D=Windows-1251"
    );
    let response = app.http.get(app.url(&format!("/api/proxy/1.0/leads/add?{query}"))).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let id = response.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    wait_status(&app, id, LeadStatus::Approved).await;
    assert_eq!(website_deals(&app)[0].name, "Заявка");
    assert_eq!(app.crm.emulator.contacts()[0].name, "Иван");

    let without_charset = format!("key={PROXY_KEY}&name=%C8%E2%E0%ED&phone=89995556678");
    let response = app.http.get(app.url(&format!("/api/proxy/1.0/leads/add?{without_charset}"))).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error = response.json::<Value>().await.unwrap()["error"].as_str().unwrap().to_owned();
    assert!(error.contains("name") && error.contains("fields[charset]"), "{error}");
}

#[tokio::test]
async fn each_limit_is_enforced_by_name_and_nothing_is_stored() {
    let app = spawn().await;
    let at_limit = "я".repeat(1024);
    let (status, _) = add(&app, &[("phone", "89990000001"), ("title", &at_limit), ("name", &at_limit)]).await;
    assert_eq!(status, StatusCode::OK, "exactly 1024 characters is allowed");
    let over = "я".repeat(1025);
    let long_comment = "я".repeat(4097);
    let many_fields: Vec<(String, String)> = (1..=9).map(|n| (format!("fields[{n}]"), "x".repeat(1000))).collect();
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("title", vec![("title", &over)]),
        ("name", vec![("name", &over)]),
        ("email", vec![("email", &over)]),
        ("phone", vec![("phone", &over)]),
        ("comment", vec![("comment", &long_comment)]),
        ("fields", many_fields.iter().map(|(key, value)| (key.as_str(), value.as_str())).collect()),
    ];
    for (field, mut parameters) in cases {
        if field != "phone" {
            parameters.push(("phone", "89990000002"));
        }
        let (status, body) = add(&app, &parameters).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(field), "the error for {field} does not name it: {error}");
    }
    assert_eq!(stored_leads(&app).await, 1, "only the lead within the limits is stored");
}

#[tokio::test]
async fn a_wrong_key_a_missing_phone_and_unknown_fields_are_refused_clearly() {
    let app = spawn().await;
    let response = app
        .http
        .get(app.url("/api/proxy/1.0/leads/add"))
        .query(&[("key", "wrong-key-0000000000"), ("phone", "89990000003")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[("name", "Без телефона")], "phone"),
        (&[("phone", "89990000004"), ("fields[OPPORTUNITY]", "5")], "fields[OPPORTUNITY]"),
        (&[("phone", "89990000004"), ("fields[price]", "много")], "fields[price]"),
        (&[("phone", "89990000004"), ("sync", "yes")], "sync"),
    ];
    for (parameters, named) in cases {
        let (status, body) = add(&app, parameters).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["error"].as_str().unwrap().contains(named), "{body}");
    }
    assert_eq!(stored_leads(&app).await, 0);
}

#[tokio::test]
async fn a_repeat_while_the_first_lead_is_in_processing_is_not_created_again() {
    let app = spawn().await;
    let lead = [("phone", "89991230001"), ("name", "Повтор"), ("is_need_check_order_in_processing", "1")];
    let (status, first) = add(&app, &lead).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (_, second) = add(&app, &lead).await;
    assert_eq!(second["id"], first["id"]);
    assert_eq!(second["duplicate"], true);
    let id = first["id"].as_i64().unwrap();
    wait_status(&app, id, LeadStatus::Approved).await;
    // Delivered within the window: still a repeat.
    let (_, third) = add(&app, &lead).await;
    assert_eq!(third["id"], first["id"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(website_deals(&app).len(), 1);
    assert_eq!(stored_leads(&app).await, 1);

    // Without the check, the same client's lead is a lead of its own.
    let (_, unchecked) = add(&app, &[("phone", "89991230001"), ("name", "Повтор")]).await;
    assert_ne!(unchecked["id"], first["id"]);
    wait_status(&app, unchecked["id"].as_i64().unwrap(), LeadStatus::Approved).await;
    assert_eq!(website_deals(&app).len(), 2);
}

#[tokio::test]
async fn with_append_the_repeat_becomes_a_comment_on_the_first_deal() {
    let app = spawn().await;
    let first = [("phone", "89991230002"), ("name", "Анна"), ("is_need_check_order_in_processing", "1")];
    let (status, body) = add(&app, &first).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["id"].as_i64().unwrap();
    let repeat = [
        ("phone", "+7 999 123-00-02"),
        ("name", "Анна"),
        ("comment", "Перезвоните после обеда"),
        ("is_need_check_order_in_processing", "1"),
        ("is_need_check_order_in_processing_append", "1"),
    ];
    let (_, repeated) = add(&app, &repeat).await;
    assert_eq!(repeated["id"], id);
    wait_status(&app, id, LeadStatus::Approved).await;
    let deal = website_deals(&app)[0].id;
    let noted = poll_until(Duration::from_secs(10), || async {
        notes_of(&app, deal).iter().any(|text| text.contains("Повторная заявка") && text.contains("после обеда"))
    })
    .await;
    assert!(noted, "the repeat was not noted on the deal: {:?}", notes_of(&app, deal));
    assert_eq!(website_deals(&app).len(), 1);
}

#[tokio::test]
async fn sync_mode_answers_with_the_crm_deal_id() {
    let app = spawn().await;
    let (status, body) = add(&app, &[("phone", "89991230003"), ("sync", "1")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "success");
    let deals = website_deals(&app);
    assert_eq!(body["deal_id"].as_u64(), Some(deals[0].id));
}

#[tokio::test]
async fn sync_mode_against_a_slow_crm_answers_202_when_its_time_is_up_and_delivers_later() {
    let mut proxy = proxy_source();
    proxy.sync_timeout = Duration::from_secs(1);
    let app = spawn_app_with(Setup { proxy: Some(proxy), ..Setup::default() }).await;
    let latency = Latency {
        delay: Duration::from_secs(2),
        path_prefix: Some("/api/v4/leads".into()),
        method: Some("POST".into()),
    };
    app.crm.emulator.set_latency(Some(latency));
    let started = std::time::Instant::now();
    let (status, body) = add(&app, &[("phone", "89991230004"), ("sync", "1")]).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "pending");
    assert!(started.elapsed() < Duration::from_secs(2), "the site waited longer than sync_timeout");
    wait_status(&app, body["id"].as_i64().unwrap(), LeadStatus::Approved).await;
}

#[tokio::test]
async fn sync_mode_against_a_failing_crm_answers_with_its_error_and_keeps_the_lead() {
    let app = spawn().await;
    app.crm.emulator.inject_fault(Fault::new(503, FaultLimit::Count(1)));
    let (status, body) = add(&app, &[("phone", "89991230005"), ("sync", "1")]).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["status"], "error");
    assert_eq!(body["will_retry"], true);
    assert!(body["error"].as_str().unwrap().contains("503"), "{body}");
    wait_status(&app, body["id"].as_i64().unwrap(), LeadStatus::Approved).await;

    let mut refusal = Fault::new(400, FaultLimit::Count(1));
    refusal.path_prefix = Some("/api/v4/contacts".to_owned());
    app.crm.emulator.inject_fault(refusal);
    let (status, body) = add(&app, &[("phone", "89991230006"), ("sync", "1")]).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["will_retry"], false, "a lead the CRM refused is not retried: {body}");
}

#[tokio::test]
async fn skip_sending_stores_the_lead_without_calling_the_crm() {
    let app = spawn().await;
    let (status, body) = add(&app, &[("phone", "89991230007"), ("is_skip_sending", "1"), ("sync", "1")]).await;
    assert_eq!(status, StatusCode::OK);
    let lead = app.store.find_lead(LeadId(body["id"].as_i64().unwrap())).await.unwrap().unwrap();
    assert_eq!(lead.status, LeadStatus::Skipped);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.crm.emulator.leads_count(), 0);
}

#[tokio::test]
async fn a_message_waits_for_the_deal_and_then_lands_on_it() {
    let app = spawn().await;
    let latency = Latency {
        delay: Duration::from_secs(1),
        path_prefix: Some("/api/v4/leads".into()),
        method: Some("POST".into()),
    };
    app.crm.emulator.set_latency(Some(latency));
    let (_, body) = add(&app, &[("phone", "89991230008")]).await;
    let id = body["id"].as_i64().unwrap().to_string();
    let message = |title: &'static str, text: &'static str| {
        let id = id.clone();
        let app = &app;
        async move {
            let parameters = [("key", PROXY_KEY), ("id", id.as_str()), ("title", title), ("message", text)];
            let response =
                app.http.get(app.url("/api/proxy/1.0/leads/messages/add")).query(&parameters).send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    let (status, early) = message("Звонок", "Клиент перезвонил до создания сделки").await;
    assert_eq!(status, StatusCode::OK, "{early}");
    assert_eq!(early["queued_until_delivery"], true);
    wait_status(&app, body["id"].as_i64().unwrap(), LeadStatus::Approved).await;
    app.crm.emulator.set_latency(None);
    let (_, late) = message("", "И ещё раз, после").await;
    assert_eq!(late["queued_until_delivery"], false);
    let deal = website_deals(&app)[0].id;
    let both = poll_until(Duration::from_secs(10), || async {
        let notes = notes_of(&app, deal);
        notes.iter().any(|text| text.starts_with("Звонок\nКлиент перезвонил"))
            && notes.iter().any(|text| text == "И ещё раз, после")
    })
    .await;
    assert!(both, "{:?}", notes_of(&app, deal));

    let unknown = [("key", PROXY_KEY), ("id", "999999"), ("message", "x")];
    let response = app.http.get(app.url("/api/proxy/1.0/leads/messages/add")).query(&unknown).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn pipeline_and_stage_ids_in_fields_place_the_deal_where_the_site_says() {
    let app = spawn().await;
    let pipelines: Value = app
        .http
        .get(format!("{}/api/v4/leads/pipelines", app.crm.base_url()))
        .bearer_auth("sandbox-long-lived-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let partner_pipeline = pipelines["_embedded"]["pipelines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|pipeline| pipeline["name"] == crate::helpers::PIPELINE)
        .unwrap()
        .clone();
    let pipeline_id = partner_pipeline["id"].as_i64().unwrap().to_string();
    let stage = partner_pipeline["_embedded"]["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|status| status["name"] == crate::helpers::STAGE)
        .unwrap();
    let status_id = stage["id"].as_i64().unwrap().to_string();
    let (_, body) = add(
        &app,
        &[("phone", "89991230009"), ("fields[pipeline_id]", &pipeline_id), ("fields[status_id]", &status_id)],
    )
    .await;
    wait_status(&app, body["id"].as_i64().unwrap(), LeadStatus::Approved).await;
    let deals = app.crm.emulator.leads_in_pipeline(crate::helpers::PIPELINE);
    assert_eq!(deals.len(), 1, "the deal is not in the pipeline the site named");
    assert_eq!(deals[0].status, crate::helpers::STAGE);
    assert!(website_deals(&app).is_empty(), "nothing lands in the source's own pipeline");
}
