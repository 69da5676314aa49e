//! The operator console in headless Chromium: log in, find a lead by another spelling of its
//! phone, read its timeline, re-send a dead lead once the CRM is back, re-send in bulk.
//! Each test saves screenshots to `target/screenshots/console-*.png`.

use amocrm_emulator::{Fault, FaultLimit};
use fantoccini::Locator;
use serde_json::json;

use crate::browser::Browser;
use crate::console::{ADMIN, PASSWORD, console_app, console_config};
use crate::helpers::TestApp;

async fn log_in(browser: &Browser, app: &TestApp) {
    browser.client().goto(&app.url("/admin/login")).await.unwrap();
    browser.type_into("#username", ADMIN).await;
    browser.type_into("#password", PASSWORD).await;
    browser.find("#login").await.click().await.unwrap();
    browser
        .wait_until(10, "the lead list", || async { browser.client().find(Locator::Css("#filters")).await.is_ok() })
        .await;
}

async fn text_of(browser: &Browser, css: &str) -> String {
    match browser.client().find(Locator::Css(css)).await {
        Ok(element) => element.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

#[tokio::test]
async fn an_operator_finds_a_lead_by_another_spelling_of_its_phone_and_reads_its_timeline() {
    let app = console_app(console_config()).await;
    let id = app
        .accept(json!({ "name": "Анна Петрова", "phone": "+7 912 345-67-89", "comment": "Перезвонить после 18:00" }))
        .await;
    app.accept(json!({ "name": "Лев Смирнов", "phone": "+7 999 000-11-22" })).await;
    app.wait_for(id, &["approved"]).await;
    let browser = Browser::start().await;
    log_in(&browser, &app).await;

    browser.type_into("#q", "8 (912) 345 67 89").await;
    browser.find("#find").await.click().await.unwrap();
    let row = format!("#lead-{id}");
    browser.wait_until(10, "the lead found by its phone", || async { !text_of(&browser, &row).await.is_empty() }).await;
    assert!(text_of(&browser, "#leads").await.contains("Анна Петрова"));
    assert!(!text_of(&browser, "#leads").await.contains("Лев Смирнов"), "only the searched client");
    assert!(!browser.client().current_url().await.unwrap().as_str().contains("912"), "no phone in the address");
    browser.screenshot("console-leads-found-by-phone").await;

    browser.find(&format!("{row} a")).await.click().await.unwrap();
    browser.wait_until(10, "the timeline", || async { text_of(&browser, "#timeline").await.contains("POST") }).await;
    let timeline = text_of(&browser, "#timeline").await;
    assert!(timeline.contains("Получена") && timeline.contains("Доставлена"), "{timeline}");
    assert!(text_of(&browser, "#deal").await.trim().parse::<i64>().is_ok(), "the deal's number is shown");
    browser.screenshot("console-timeline").await;

    browser.client().set_window_size(390, 844).await.unwrap();
    browser.client().goto(&app.url("/admin/leads")).await.unwrap();
    browser.screenshot("console-leads-phone-width").await;
    browser.close().await;
    app.stop().await;
}

#[tokio::test]
async fn an_operator_resends_a_dead_lead_after_the_crm_recovers_and_sees_it_delivered() {
    let app = console_app(console_config()).await;
    app.crm.emulator.inject_fault(Fault::new(503, FaultLimit::UntilCleared));
    let id = app.accept(json!({ "name": "Дина Орлова", "phone": "+79997000002" })).await;
    app.wait_for(id, &["dead"]).await;
    let browser = Browser::start().await;
    log_in(&browser, &app).await;

    browser.client().goto(&app.url(&format!("/admin/leads/{id}"))).await.unwrap();
    assert!(text_of(&browser, ".summary .error").await.contains("503"));
    app.crm.emulator.clear_faults();
    browser.find("#resend").await.click().await.unwrap();
    browser
        .wait_until(10, "the confirmation", || async { !text_of(&browser, "#resend-effect").await.is_empty() })
        .await;
    browser.screenshot("console-resend-confirmation").await;
    browser.find("#confirm").await.click().await.unwrap();

    browser
        .wait_until(15, "the lead delivered", || async {
            browser.client().refresh().await.is_ok() && text_of(&browser, "#lead-status").await == "в CRM"
        })
        .await;
    assert!(!text_of(&browser, "#deal").await.is_empty(), "the deal's number appears");
    browser.screenshot("console-resent-and-delivered").await;
    browser.close().await;
    app.stop().await;
}

#[tokio::test]
async fn an_operator_resends_every_dead_lead_of_a_source_after_a_preview() {
    let app = console_app(console_config()).await;
    app.crm.emulator.inject_fault(Fault::new(503, FaultLimit::UntilCleared));
    let ids = [
        app.accept(json!({ "name": "Дина", "phone": "+79997000002" })).await,
        app.accept(json!({ "name": "Лев", "phone": "+79997000003" })).await,
    ];
    for id in ids {
        app.wait_for(id, &["dead"]).await;
    }
    app.crm.emulator.clear_faults();
    let browser = Browser::start().await;
    log_in(&browser, &app).await;

    browser.client().goto(&app.url("/admin/dead")).await.unwrap();
    assert!(text_of(&browser, "#dead").await.contains("503"));
    browser.screenshot("console-dead-and-failed").await;
    browser.find("#bulk-source option[value=trendagent]").await.click().await.unwrap();
    // How a datetime-local input takes typed digits depends on the browser's locale; the value
    // is what the form posts either way.
    let set_since = "document.getElementById('since').value = '2000-01-01T00:00';";
    browser.client().execute(set_since, Vec::new()).await.unwrap();
    browser.find("#preview").await.click().await.unwrap();
    browser.wait_until(10, "the preview count", || async { text_of(&browser, "#bulk-count").await == "2" }).await;
    browser.screenshot("console-bulk-preview").await;
    browser.find("#confirm").await.click().await.unwrap();
    browser.wait_until(10, "the bulk result", || async { text_of(&browser, "#flash").await.ends_with(" 2") }).await;
    for id in ids {
        app.wait_for(id, &["approved"]).await;
    }
    browser.client().refresh().await.unwrap();
    assert!(browser.client().find(Locator::Css("#no-dead")).await.is_ok(), "nothing is dead any more");
    browser.screenshot("console-bulk-done").await;
    browser.close().await;
    app.stop().await;
}

#[tokio::test]
async fn an_operator_sees_the_accepting_but_not_delivering_banner_when_the_crm_goes_down() {
    let app = crate::console::retrying_app(std::time::Duration::from_millis(500)).await;
    let delivered = app.accept(json!({ "name": "Анна", "phone": "+79997000010" })).await;
    app.wait_for(delivered, &["approved"]).await;
    let browser = Browser::start().await;
    log_in(&browser, &app).await;
    browser.client().goto(&app.url("/admin/sources")).await.unwrap();
    assert!(text_of(&browser, "#stalled-trendagent").await.is_empty(), "no banner while the CRM answers");

    app.crm.emulator.inject_fault(Fault::new(503, FaultLimit::UntilCleared));
    app.accept(json!({ "name": "Лев", "phone": "+79997000011" })).await;
    browser
        .wait_until(15, "the red banner", || async {
            browser.client().refresh().await.is_ok()
                && text_of(&browser, "#stalled-trendagent").await.contains("не доставляются")
        })
        .await;
    browser.screenshot("console-sources-stalled").await;
    app.crm.emulator.clear_faults();
    browser.close().await;
    app.stop().await;
}

#[tokio::test]
async fn an_operator_imports_an_advertisers_csv_and_sees_them_listed() {
    use crate::helpers::{Setup, spawn_app_with};
    let app = spawn_app_with(Setup { zap: true, console: Some(console_config()), ..Setup::default() }).await;
    crate::console::add_user(&app, ADMIN, leadgate::domain::operator::Role::Admin).await;
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("advertisers.csv");
    std::fs::write(&file, crate::console::GOOD_ADVERTISERS).unwrap();
    let browser = Browser::start().await;
    log_in(&browser, &app).await;

    browser.client().goto(&app.url("/admin/advertisers")).await.unwrap();
    browser.find("#import-file").await.send_keys(file.to_str().unwrap()).await.unwrap();
    browser.find("#import-button").await.click().await.unwrap();
    browser.wait_until(10, "the import's result", || async { text_of(&browser, "#flash").await.contains('2') }).await;
    let listed = text_of(&browser, "#advertisers").await;
    assert!(listed.contains("Imobiliária 555") && listed.contains("Imobiliária 556"), "{listed}");
    browser.screenshot("console-advertisers-imported").await;
    browser.close().await;
    app.stop().await;
}

/// The live call card: an admin whose extension is 101 keeps the console open; a known client
/// calls, 101 rings, and the card pops up with the caller's contact from the CRM; it goes when
/// the call ends. Then the call button beside a phone number asks the PBX to ring 101.
#[tokio::test]
async fn the_call_card_pops_up_while_the_operator_s_extension_rings_and_the_call_button_starts_a_call() {
    use pbx_emulator::{PbxConfig, PlayOptions, ProviderKind, RenderedCall, Scenario, render};
    let crm = crate::helpers::spawn_emulator(100).await;
    let known = amocrm_emulator::SeedContact {
        name: "Известный клиент".to_owned(),
        phones: vec![format!("+{}", pbx_emulator::KNOWN_CLIENT)],
        emails: Vec::new(),
        leads: Vec::new(),
    };
    crm.emulator.seed_contact(&known).unwrap();
    let pbx = pbx_emulator::spawn(PbxConfig::sandbox(ProviderKind::Telphin)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = "telphin-key-for-the-console-0123";
    let config = crate::helpers::config_file(
        &crm.base_url(),
        &format!(
            "[console]\nextensions = {{ \"{ADMIN}\" = \"101\" }}\n\
             [sources.pbx]\nkind = \"telephony\"\nprovider = \"telphin\"\nkey = \"{key}\"\n\
             client_id = \"sandbox-telphin-app\"\nclient_secret = \"sandbox-telphin-secret\"\napi_url = \"{}\"\n\
             destination = \"main\"\npipeline = \"{}\"\nstatus = \"{}\"\n\
             users = {{ \"101\" = \"Анна Смирнова\" }}\nfinish_after = \"1s\"\n",
            pbx.base_url(),
            crate::helpers::PIPELINE,
            crate::helpers::STAGE
        ),
    );
    let gateway = crate::helpers::TestProcess::serve(dir.path(), &config).await;
    let base = format!("http://{}", gateway.address);
    crate::helpers::add_user_by_command(&crate::helpers::store_url(dir.path()), ADMIN, "admin", PASSWORD);

    let browser = Browser::start().await;
    browser.client().goto(&format!("{base}/admin/login")).await.unwrap();
    browser.type_into("#username", ADMIN).await;
    browser.type_into("#password", PASSWORD).await;
    browser.find("#login").await.click().await.unwrap();
    browser
        .wait_until(10, "the lead list", || async { browser.client().find(Locator::Css("#filters")).await.is_ok() })
        .await;
    browser.client().goto(&format!("{base}/admin/calls")).await.unwrap();
    assert_eq!(text_of(&browser, "#my-extension").await, "101");

    // The call up to 101 ringing (5 s in the IVR, then 12 s of ringing before the answer).
    let script = Scenario::find("incoming-known-answered").unwrap().script();
    let rendered = render(&script, pbx.pbx.provider()).unwrap();
    let until = rendered.requests[0].at + std::time::Duration::from_secs(10);
    let (ringing, rest): (Vec<_>, Vec<_>) = rendered.requests.iter().cloned().partition(|request| request.at <= until);
    let part = |requests| RenderedCall { requests, ..rendered.clone() };
    let target: url::Url = format!("{base}/telephony/pbx/{key}").parse().unwrap();
    assert!(pbx_emulator::deliver(&part(ringing), &target, &PlayOptions::default()).await.unwrap().all_accepted());
    browser
        .wait_until(15, "the call card with the caller's contact", || async {
            text_of(&browser, "#call-popup").await.contains("Известный клиент")
        })
        .await;
    let card = text_of(&browser, "#call-popup").await;
    assert!(card.contains(&format!("+{}", pbx_emulator::KNOWN_CLIENT)) && card.contains("101"), "{card}");
    assert!(text_of(&browser, "#live-calls").await.contains("Известный клиент"), "the calls page lists it too");
    browser.screenshot("console-call-card").await;

    assert!(pbx_emulator::deliver(&part(rest), &target, &PlayOptions::default()).await.unwrap().all_accepted());
    browser
        .wait_until(15, "the card gone once the call ended", || async {
            !browser.find("#call-popup").await.is_displayed().await.unwrap_or(true)
        })
        .await;

    // The call, logged, is a lead whose timeline has the call button for the client's number.
    let lead = crate::helpers::poll_until(std::time::Duration::from_secs(20), || async {
        browser.client().goto(&format!("{base}/admin/leads")).await.unwrap();
        browser.client().find(Locator::Css("#leads tbody tr a")).await.is_ok()
    });
    assert!(lead.await, "the call became a lead");
    browser.find("#leads tbody tr a").await.click().await.unwrap();
    browser.wait_until(10, "the call button", || async { browser.shows("button.call", "Позвонить").await }).await;
    browser.find("button.call").await.click().await.unwrap();
    browser
        .wait_until(10, "the call started", || async {
            browser.shows("button.call", "Звоним: поднимите трубку").await
        })
        .await;
    browser.screenshot("console-call-button").await;
    let callbacks = pbx.pbx.callbacks();
    assert_eq!(callbacks.len(), 1, "{callbacks:?}");
    assert_eq!(callbacks[0].destination, pbx_emulator::KNOWN_CLIENT);
    assert_eq!(callbacks[0].extension, "469101", "101 rings first");
    browser.close().await;
}

#[tokio::test]
async fn an_operator_opens_the_dashboard_and_picks_a_range() {
    let app = console_app(console_config()).await;
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(app.accept(json!({ "name": "Анна", "phone": format!("+7999803{n:04}") })).await);
    }
    for id in ids {
        app.wait_for(id, &["approved"]).await;
    }
    let key = crate::helpers::OTHER_SOURCE_KEY;
    let body = json!({ "name": "Лев", "phone": "+79998040000" });
    let other = crate::helpers::accept_at(&app.http, &app.url(""), key, &body).await;
    crate::helpers::wait_for_status(&app.http, &app.url(""), key, other, &["approved"]).await;
    let browser = Browser::start().await;
    // Tall enough for every chart in one screenshot.
    browser.client().set_window_size(1280, 1900).await.unwrap();
    log_in(&browser, &app).await;

    browser.find("nav a[href='/admin/dashboard']").await.click().await.unwrap();
    browser.wait_until(10, "the charts", || async { !text_of(&browser, "#chart-leads").await.is_empty() }).await;
    assert!(text_of(&browser, "#chart-leads").await.contains("Всего: 5"));
    browser.screenshot("console-dashboard").await;

    browser.find("#range-7d").await.click().await.unwrap();
    browser
        .wait_until(10, "the week's charts", || async {
            browser.client().current_url().await.is_ok_and(|url| url.as_str().ends_with("range=7d"))
        })
        .await;
    assert_eq!(text_of(&browser, "[aria-current=page]").await, "7 дней");
    assert!(text_of(&browser, "#chart-leads").await.contains("Всего: 5"), "the week holds today's leads");

    let today = chrono::Utc::now().date_naive().to_string();
    let set_range = format!(
        "document.getElementById('range-from').value = '{today}'; document.getElementById('range-until').value = '{today}';"
    );
    browser.client().execute(&set_range, Vec::new()).await.unwrap();
    browser.find("#range-show").await.click().await.unwrap();
    browser
        .wait_until(10, "the custom range", || async {
            browser.client().current_url().await.is_ok_and(|url| url.as_str().contains(&format!("from={today}")))
        })
        .await;
    assert!(text_of(&browser, "#chart-leads").await.contains("Всего: 5"), "today's range holds them");
    browser.find("#chart-leads summary").await.click().await.unwrap();
    assert!(text_of(&browser, "#chart-leads table").await.contains("trendagent"), "the numbers as a table");
    browser.screenshot("console-dashboard-custom-range").await;

    browser.client().set_window_size(390, 844).await.unwrap();
    browser.client().goto(&app.url("/admin/dashboard")).await.unwrap();
    let to_chart = "document.getElementById('chart-leads').scrollIntoView();";
    browser.client().execute(to_chart, Vec::new()).await.unwrap();
    browser.screenshot("console-dashboard-phone-width").await;
    browser.client().goto(&app.url("/admin/sources")).await.unwrap();
    let to_destinations = "document.getElementById('destinations-title').scrollIntoView();";
    browser.client().execute(to_destinations, Vec::new()).await.unwrap();
    browser.screenshot("console-sources-phone-width").await;
    browser.client().set_window_size(1280, 1000).await.unwrap();
    browser.client().refresh().await.unwrap();
    assert!(text_of(&browser, "#destination-main").await.contains("100/s"));
    browser.screenshot("console-sources-destinations").await;
    browser.close().await;
    app.stop().await;
}
