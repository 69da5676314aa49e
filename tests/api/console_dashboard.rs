//! The console's dashboard, the destinations half of the sources page, and adding an advertiser
//! by a form: the numbers shown are the leads sent, bad ranges are named, viewers only look.

use amocrm_emulator::{Fault, FaultLimit};
use chrono::{Timelike, Utc};
use leadgate::domain::SourceId;
use leadgate::domain::operator::Role;
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::json;

use crate::console::{ADMIN, VIEWER, Visitor, add_user, console_app, console_config};
use crate::helpers::{OTHER_SOURCE_KEY, SOURCE_KEY, Setup, TestApp, accept_at, spawn_app_with, wait_for_status};

/// Leads from two sources, every one delivered: `trendagent` sends `first`, `other` sends `second`.
async fn delivered_leads(app: &TestApp, first: usize, second: usize) {
    let mut ids = Vec::new();
    for n in 0..first {
        let body = json!({ "name": "Анна", "phone": format!("+7999800{n:04}") });
        ids.push((SOURCE_KEY, accept_at(&app.http, &app.url(""), SOURCE_KEY, &body).await));
    }
    for n in 0..second {
        let body = json!({ "name": "Лев", "phone": format!("+7999801{n:04}") });
        ids.push((OTHER_SOURCE_KEY, accept_at(&app.http, &app.url(""), OTHER_SOURCE_KEY, &body).await));
    }
    for (key, id) in ids {
        wait_for_status(&app.http, &app.url(""), key, id, &["approved"]).await;
    }
}

#[tokio::test]
async fn the_dashboard_shows_as_many_leads_per_source_and_hour_as_were_sent() {
    let app = console_app(console_config()).await;
    let hour_before = Utc::now().hour();
    delivered_leads(&app, 3, 2).await;
    let viewer = Visitor::new(&app);
    assert_eq!(viewer.get("/admin/dashboard").await.headers()[LOCATION], "/admin/login", "no session, no charts");
    viewer.log_in(VIEWER).await;
    let page = viewer.page("/admin/dashboard").await;
    let hour = Utc::now().hour();

    assert!(page.contains("href=\"/admin/dashboard\""), "the navigation links the dashboard");
    assert!(
        page.contains("id=\"range-24h\" class=\"button\" href=\"/admin/dashboard?range=24h\" aria-current=\"page\""),
        "{page}"
    );
    if hour == hour_before {
        let label = format!("{hour:02}:00");
        assert!(page.contains(&format!("<title>{label} · trendagent: 3</title>")), "3 leads of trendagent: {page}");
        assert!(page.contains(&format!("<title>{label} · other: 2</title>")), "2 of other");
        assert!(page.contains(&format!("<title>{label} · в CRM: 5</title>")), "all five delivered");
        assert!(page.contains(&format!("<title>{label} · p50: ≤")), "a median time to the CRM");
    }
    assert!(page.contains("Всего: 5"), "the total of the range");
    let calls = &page[page.find("id=\"chart-calls-main\"").expect("a chart of the destination's calls")..];
    assert!(calls.contains("Лимит: 100"), "the destination's budget is drawn");
    let made: i64 =
        calls[calls.find("Всего: ").unwrap() + "Всего: ".len()..].split(';').next().unwrap().parse().unwrap();
    assert!(made >= 5, "every lead made CRM calls, and each is counted: {made}");
    assert!(page.contains("id=\"chart-queue\""), "the queue now");
    assert!(page.contains("<td data-label=\"trendagent\">3</td>"), "the table under the chart carries the numbers");

    let month = viewer.page("/admin/dashboard?range=30d").await;
    assert!(month.contains("Всего: 5") && month.contains("aria-current=\"page\">30"), "30 days include them too");
    let long_ago = viewer.page("/admin/dashboard?from=2020-01-01&until=2020-01-31").await;
    assert!(long_ago.contains("Всего: 0"), "none in a range long past");
    assert!(long_ago.contains("value=\"2020-01-01\""), "the form keeps the range asked for");
    app.stop().await;
}

#[tokio::test]
async fn a_bad_range_is_answered_400_naming_the_field() {
    let app = console_app(console_config()).await;
    let viewer = Visitor::new(&app);
    viewer.log_in(VIEWER).await;
    for (query, named) in [
        ("range=1y", "«range»: «1y» is not one of 24h, 7d, 30d"),
        ("from=yesterday&until=2026-11-03", "«from»: «yesterday» is not a date"),
        ("from=2026-11-03", "«until» is missing"),
        ("from=2026-11-05&until=2026-11-01", "«from» must be earlier than «until»"),
        ("from=2025-01-01&until=2026-01-01", "at most 92 days"),
    ] {
        let response = viewer.get(&format!("/admin/dashboard?{query}")).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        let page = response.text().await.unwrap();
        assert!(page.contains(named), "{query}: {page}");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_sources_page_shows_times_to_the_crm_and_each_destinations_calls_429s_and_sign_in() {
    // The usual retry policy: the lead answered 429 is tried again, not given up.
    let app = spawn_app_with(Setup { console: Some(console_config()), ..Setup::default() }).await;
    add_user(&app, VIEWER, Role::Viewer).await;
    app.crm.emulator.inject_fault(Fault::new(429, FaultLimit::Count(1)));
    delivered_leads(&app, 2, 0).await;
    let viewer = Visitor::new(&app);
    viewer.log_in(VIEWER).await;
    let page = viewer.page("/admin/sources").await;

    let source = &page[page.find("id=\"source-trendagent\"").unwrap()..];
    let source = &source[..source.find("</tr>").unwrap()];
    assert!(source.contains("class=\"median\">≤ ") && source.contains("class=\"p95\">≤ "), "{source}");
    let other = &page[page.find("id=\"source-other\"").unwrap()..];
    assert!(other[..other.find("</tr>").unwrap()].contains("class=\"median\"></td>"), "nothing delivered, no time");

    let destination = &page[page.find("id=\"destination-main\"").expect("the destination's row")..];
    let destination = &destination[..destination.find("</tr>").unwrap()];
    assert!(destination.contains("(amocrm)") && destination.contains("class=\"budget\">100/s"), "{destination}");
    assert!(destination.contains("class=\"throttled bad\">1<"), "the one 429 is counted: {destination}");
    assert!(destination.contains("долгосрочный токен"), "the sign-in: {destination}");
    assert!(page.contains("id=\"chart-calls-main\""), "the last minutes' calls against the budget");
    app.stop().await;
}

#[tokio::test]
async fn an_oauth_destination_shows_when_its_access_token_renews() {
    let setup = Setup { oauth: true, console: Some(console_config()), ..Setup::default() };
    let app = spawn_app_with(setup).await;
    add_user(&app, ADMIN, Role::Admin).await;
    let admin = Visitor::new(&app);
    admin.log_in(ADMIN).await;
    let before = admin.page("/admin/sources").await;
    assert!(before.contains("OAuth: токен ещё не получен"), "no token before the first call");
    let id = app.accept(json!({ "name": "Анна", "phone": "+79998020000" })).await;
    app.wait_for(id, &["approved"]).await;
    let after = admin.page("/admin/sources").await;
    assert!(after.contains("OAuth: токен действует до 20"), "the stored token's expiry: {after}");
    app.stop().await;
}

async fn add_form(visitor: &Visitor, csrf: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    let mut form = vec![("csrf", csrf)];
    form.extend_from_slice(fields);
    visitor.post("/admin/advertisers/add", &form).await
}

#[tokio::test]
async fn an_admin_adds_an_advertiser_by_the_form_with_the_command_lines_checks_and_a_viewer_cannot() {
    let app = spawn_app_with(Setup { zap: true, console: Some(console_config()), ..Setup::default() }).await;
    add_user(&app, ADMIN, Role::Admin).await;
    add_user(&app, VIEWER, Role::Viewer).await;
    let zap = SourceId("zap".to_owned());
    let good = [
        ("source", "zap"),
        ("id", "901"),
        ("document", "11.222.333/0001-81"),
        ("name", "Imobiliária 901"),
        ("listings", "l-901; l-902"),
        ("send_lead_email", "true"),
        ("email", "corretor@example.com"),
    ];

    let viewer = Visitor::new(&app);
    let viewer_csrf = viewer.log_in(VIEWER).await;
    assert!(viewer.page("/admin/dashboard").await.contains("id=\"chart-leads\""), "a viewer sees the charts");
    assert!(!viewer.page("/admin/advertisers").await.contains("id=\"add-advertiser\""), "but no add form");
    assert_eq!(add_form(&viewer, &viewer_csrf, &good).await.status(), StatusCode::FORBIDDEN);

    let admin = Visitor::new(&app);
    let csrf = admin.log_in(ADMIN).await;
    assert!(admin.page("/admin/advertisers").await.contains("id=\"add-advertiser\""));
    assert_eq!(add_form(&admin, "", &good).await.status(), StatusCode::FORBIDDEN, "CSRF missing");
    assert_eq!(add_form(&admin, "forged", &good).await.status(), StatusCode::FORBIDDEN, "CSRF wrong");
    assert!(app.store.list_advertisers(Some(&zap), true).await.unwrap().is_empty(), "nothing written so far");

    for (field, value, problem) in [
        ("document", "123", "CPF"),
        ("document", "", "needs a document"),
        ("id", "bad id!", "id"),
        ("email", "not-an-email", "e-mail"),
        ("source", "trendagent", "«source»: «trendagent» is not a portal source"),
    ] {
        let mut fields = good.to_vec();
        fields.retain(|(name, _)| *name != field);
        fields.push((field, value));
        let refused = add_form(&admin, &csrf, &fields).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{field}={value}");
        let page = refused.text().await.unwrap();
        let shown = &page[page.find("id=\"add-problem\"").unwrap_or_else(|| panic!("{field}: {page}"))..];
        assert!(
            shown[..shown.find("</p>").unwrap()].to_lowercase().contains(&problem.to_lowercase()),
            "{field}: {shown}"
        );
        assert!(page.contains("value=\"Imobiliária 901\""), "the form keeps what was typed");
    }
    assert!(app.store.list_advertisers(Some(&zap), true).await.unwrap().is_empty(), "refusals write nothing");

    let added = add_form(&admin, &csrf, &good).await;
    assert_eq!(added.status(), StatusCode::SEE_OTHER);
    assert_eq!(added.headers()[LOCATION], "/admin/advertisers?added=901");
    let stored = app.store.list_advertisers(Some(&zap), true).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (stored[0].name.as_str(), stored[0].listings.len(), stored[0].send_lead_email),
        ("Imobiliária 901", 2, true)
    );
    let listed = admin.page("/admin/advertisers?added=901").await;
    assert!(listed.contains("id=\"advertiser-zap-901\"") && listed.contains("id=\"flash\""), "{listed}");

    let taken = [("source", "zap"), ("id", "902"), ("document", "11222333000181"), ("listings", "l-902")];
    let conflict = add_form(&admin, &csrf, &taken).await;
    assert_eq!(conflict.status(), StatusCode::BAD_REQUEST);
    assert!(conflict.text().await.unwrap().contains("listing «l-902» belongs to advertiser 901"));

    let renamed = add_form(&admin, &csrf, &[("source", "zap"), ("id", "901"), ("name", "Nova 901")]).await;
    assert_eq!(renamed.headers()[LOCATION], "/admin/advertisers?updated=901", "an existing id is changed");
    let stored = app.store.list_advertisers(Some(&zap), true).await.unwrap();
    assert_eq!((stored[0].name.as_str(), stored[0].listings.len()), ("Nova 901", 2), "empty fields keep their value");
    let audit = admin.page("/admin/audit").await;
    assert!(audit.contains("advertiser_added") && audit.contains("901 of source zap"), "{audit}");
    assert!(audit.contains("advertiser_updated"));
    app.stop().await;
}

#[tokio::test]
async fn the_queue_chart_shows_a_lead_waiting_for_its_retry_while_the_crm_is_down() {
    let app = spawn_app_with(Setup { console: Some(console_config()), ..Setup::default() }).await;
    add_user(&app, VIEWER, Role::Viewer).await;
    let viewer = Visitor::new(&app);
    viewer.log_in(VIEWER).await;
    let waiting = "<tr><th scope=\"row\">ждут повтора</th><td data-label=\"Очередь сейчас\">1</td></tr>";
    assert!(!viewer.page("/admin/dashboard").await.contains(waiting), "nothing waits yet");

    app.crm.emulator.inject_fault(Fault::new(503, FaultLimit::UntilCleared));
    let id = app.accept(json!({ "name": "Анна", "phone": "+79998050000" })).await;
    let shown = crate::helpers::poll_until(std::time::Duration::from_secs(10), || async {
        viewer.page("/admin/dashboard").await.contains(waiting)
    })
    .await;
    assert!(shown, "the lead the CRM refused waits for its next attempt");
    app.crm.emulator.clear_faults();
    app.wait_for(id, &["approved"]).await;
    let after = viewer.page("/admin/dashboard").await;
    assert!(after.contains("<tr><th scope=\"row\">ждут повтора</th><td data-label=\"Очередь сейчас\">0</td></tr>"));
    app.stop().await;
}
