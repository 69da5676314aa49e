//! The form page in a real browser: headless Chromium driven over WebDriver by chromedriver.
//!
//! Needs `chromium` and `chromedriver` (Debian: `apt-get install chromium chromium-driver`; CI
//! installs them). Other locations can be given in `CHROMIUM` and `CHROMEDRIVER`.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use leadgate::config::{DEFAULT_REGISTERED_MESSAGE, FormSource, WaitForCrm};
use serde_json::{Value, json};

use crate::helpers::{
    SUCCESS_MESSAGE, Setup, TestApp, ZAP_PIPELINE, feedback_form, free_port, poll_until, spawn_app_with,
};

const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
const DEFAULT_CHROMEDRIVER: &str = "/usr/bin/chromedriver";

fn program(variable: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(variable).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.is_file(),
        "{} not found: the browser tests need Chromium and its WebDriver. Install them with \
         `apt-get install chromium chromium-driver` (CI does), or set {variable} to the program's path",
        path.display()
    );
    path
}

/// chromedriver (and, through it, Chromium) for one test; the whole process group is killed on drop.
pub struct Browser {
    client: Option<Client>,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn start() -> Self {
        let chromium = program("CHROMIUM", DEFAULT_CHROMIUM);
        let chromedriver = program("CHROMEDRIVER", DEFAULT_CHROMEDRIVER);
        let port = free_port();
        let verbose = std::env::var_os("TEST_LOG").is_some();
        let output = || if verbose { Stdio::inherit() } else { Stdio::null() };
        // Its own process group, so that Chromium's processes can be killed along with it.
        let mut driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(output())
            .stderr(output())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|error| panic!("{} did not start: {error}", chromedriver.display()));
        let status_url = format!("http://127.0.0.1:{port}/status");
        let http = reqwest::Client::new();
        let ready = poll_until(Duration::from_secs(20), || async {
            let Ok(response) = http.get(&status_url).send().await else { return false };
            response.json::<Value>().await.is_ok_and(|status| status["value"]["ready"] == true)
        })
        .await;
        if !ready {
            let exited = driver.try_wait().ok().flatten();
            let _ = driver.kill();
            panic!("{} never answered on port {port} (exit status: {exited:?})", chromedriver.display());
        }
        let profile = tempfile::tempdir().unwrap();
        let options = json!({
            "binary": chromium,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        });
        let capabilities = serde_json::Map::from_iter([("goog:chromeOptions".to_owned(), options)]);
        let mut browser = Self { client: None, driver, _profile: profile };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|error| panic!("chromedriver could not start {}: {error}", chromium.display()));
        browser.client = Some(client);
        browser
    }

    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("connected in start")
    }

    pub async fn find(&self, css: &str) -> Element {
        self.client().find(Locator::Css(css)).await.unwrap_or_else(|error| panic!("no {css} on the page: {error}"))
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        self.find(css).await.send_keys(text).await.unwrap();
    }

    /// Whether the element is on the page, displayed, and shows exactly `text`.
    pub async fn shows(&self, css: &str, text: &str) -> bool {
        let Ok(element) = self.client().find(Locator::Css(css)).await else { return false };
        element.is_displayed().await.unwrap_or(false) && element.text().await.is_ok_and(|shown| shown.trim() == text)
    }

    /// Waits up to `seconds` for `check`, then fails saying what was expected.
    pub async fn wait_until<F, Fut>(&self, seconds: u64, what: &str, check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        if !poll_until(Duration::from_secs(seconds), check).await {
            let page = self.client().source().await.unwrap_or_default();
            panic!("the page never showed {what}; the page is:\n{page}");
        }
    }

    /// Saves what the browser shows to `target/screenshots/<name>.png`, for people to look at.
    pub async fn screenshot(&self, name: &str) {
        let folder = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).with_file_name("screenshots");
        std::fs::create_dir_all(&folder).unwrap();
        let png = self.client().screenshot().await.unwrap();
        std::fs::write(folder.join(format!("{name}.png")), png).unwrap();
    }

    /// Ends the browser session, so Chromium exits before its driver is killed.
    pub async fn close(mut self) {
        if let Some(client) = self.client.take() {
            client.close().await.unwrap();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver leads its own process group, which Chromium's processes join.
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.driver.id())]).status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

async fn fill_text_fields(browser: &Browser) {
    browser.type_into("#leadgate-form [name=name]", "Анна Петрова").await;
    browser.type_into("#leadgate-form [name=phone]", "+7 912 345-67-89").await;
    browser.type_into("#leadgate-form [name=email]", "anna@example.ru").await;
    browser.type_into("#leadgate-form [name=message]", "Прошу перезвонить по смете").await;
}

async fn form_app() -> TestApp {
    spawn_app_with(Setup { form: Some(feedback_form()), ..Setup::default() }).await
}

#[tokio::test]
async fn a_visitor_sends_the_form_with_a_file_sees_the_thanks_and_the_deal_links_the_file() {
    let app = form_app().await;
    let uploads = tempfile::tempdir().unwrap();
    let upload = uploads.path().join("smeta-2024.pdf");
    let bytes: Vec<u8> = (0..30_000u32).map(|index| (index % 253) as u8).collect();
    std::fs::write(&upload, &bytes).unwrap();
    let browser = Browser::start().await;

    browser.client().goto(&app.url("/forms/feedback")).await.unwrap();
    fill_text_fields(&browser).await;
    browser.find("#leadgate-form input[type=file]").await.send_keys(upload.to_str().unwrap()).await.unwrap();
    // Set on this page only: a reload forgets it.
    browser.client().execute("window.lgBeforeReload = true;", Vec::new()).await.unwrap();
    browser.find("#lg-submit").await.click().await.unwrap();

    browser.wait_until(10, "the success message", || browser.shows("#lg-success-message", SUCCESS_MESSAGE)).await;
    assert!(!browser.find("#leadgate-form").await.is_displayed().await.unwrap(), "the form gives way to the thanks");
    let ok = browser.find("#lg-ok").await;
    assert_eq!(ok.text().await.unwrap().trim(), "Хорошо");
    ok.click().await.unwrap();

    browser
        .wait_until(10, "a fresh, empty form after «Хорошо»", || async {
            let reloaded = browser
                .client()
                .execute("return window.lgBeforeReload === undefined;", Vec::new())
                .await
                .is_ok_and(|answer| answer == true);
            let Ok(form) = browser.client().find(Locator::Css("#leadgate-form")).await else { return false };
            let Ok(name) = browser.client().find(Locator::Css("#leadgate-form [name=name]")).await else {
                return false;
            };
            reloaded
                && form.is_displayed().await.unwrap_or(false)
                && name.prop("value").await.is_ok_and(|value| value.as_deref() == Some(""))
        })
        .await;
    assert!(!browser.find("#lg-success").await.is_displayed().await.unwrap());
    browser.close().await;

    let noted = poll_until(Duration::from_secs(15), || async {
        app.crm
            .emulator
            .notes()
            .iter()
            .any(|note| note.text.as_deref().is_some_and(|text| text.contains("smeta-2024.pdf")))
    })
    .await;
    assert!(noted, "no CRM note lists the file; notes: {:?}", app.crm.emulator.notes());
    let deals = app.crm.emulator.leads_in_pipeline(ZAP_PIPELINE);
    assert_eq!(deals.len(), 1, "one deal in «{ZAP_PIPELINE}»");
    let note = app
        .crm
        .emulator
        .notes()
        .into_iter()
        .filter(|note| note.entity_type == "leads" && note.entity_id == deals[0].id)
        .find_map(|note| note.text)
        .expect("the deal has the note");
    assert!(note.contains("Анна Петрова") && note.contains("Прошу перезвонить по смете"), "{note}");
    let line = note.lines().find(|line| line.contains("smeta-2024.pdf")).unwrap();
    let link = &line[line.find("http://").unwrap_or_else(|| panic!("no link in {line}"))..];
    let download = app.http.get(link.trim()).send().await.unwrap();
    assert_eq!(download.status(), 200);
    assert_eq!(download.bytes().await.unwrap(), bytes, "the linked file is the one the visitor attached");
    app.stop().await;
}

#[tokio::test]
async fn a_visitor_who_forgets_the_file_is_told_to_attach_one_next_to_the_file_input() {
    let app = form_app().await;
    let browser = Browser::start().await;

    browser.client().goto(&app.url("/forms/feedback")).await.unwrap();
    fill_text_fields(&browser).await;
    browser.find("#lg-submit").await.click().await.unwrap();

    browser.wait_until(10, "«Прикрепите файл»", || browser.shows("#lg-files-error", "Прикрепите файл")).await;
    let input = browser.find("#lg-files").await;
    assert_eq!(input.attr("aria-invalid").await.unwrap().as_deref(), Some("true"));
    assert!(!browser.find("#lg-success").await.is_displayed().await.unwrap());
    for field in 0..4 {
        let error = browser.find(&format!("#lg-error-{field}")).await.text().await.unwrap();
        assert_eq!(error, "", "the filled field {field} shows no error");
    }
    browser.close().await;

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(app.store.list_leads(None, None, 10).await.unwrap().is_empty(), "nothing was sent");
    app.stop().await;
}

#[tokio::test]
async fn a_visitor_of_a_form_that_waits_for_the_crm_is_shown_the_deal_number() {
    let wait = WaitForCrm {
        wait: Duration::from_secs(5),
        registered_message: DEFAULT_REGISTERED_MESSAGE.to_owned(),
        visitor_email: None,
    };
    let form = FormSource { require_file: false, wait_for_crm: Some(wait), ..feedback_form() };
    let app = spawn_app_with(Setup { form: Some(form), ..Setup::default() }).await;
    let browser = Browser::start().await;

    browser.client().goto(&app.url("/forms/feedback")).await.unwrap();
    fill_text_fields(&browser).await;
    browser.find("#lg-submit").await.click().await.unwrap();

    browser
        .wait_until(15, "the deal's number", || async {
            let deals = app.crm.emulator.leads_in_pipeline(ZAP_PIPELINE);
            let Some(deal) = deals.first() else { return false };
            let text = format!("Ваша заявка зарегистрирована под номером {}", deal.id);
            browser.shows("#lg-success-message", &text).await
        })
        .await;
    browser.close().await;
    app.stop().await;
}

#[tokio::test]
async fn a_visitor_must_tick_the_personal_data_consent_whose_policy_opens_in_a_new_tab() {
    let consent = leadgate::config::Consent {
        text: "Я согласен на обработку персональных данных".to_owned(),
        policy_url: url::Url::parse("https://example.ru/privacy").unwrap(),
    };
    let form = FormSource { require_file: false, consent: Some(Box::new(consent)), ..feedback_form() };
    let app = spawn_app_with(Setup { form: Some(form), ..Setup::default() }).await;
    let browser = Browser::start().await;

    browser.client().goto(&app.url("/forms/feedback")).await.unwrap();
    fill_text_fields(&browser).await;
    let link = browser.find(".lg-consent a").await;
    assert_eq!(link.attr("href").await.unwrap().as_deref(), Some("https://example.ru/privacy"));
    assert_eq!(link.attr("target").await.unwrap().as_deref(), Some("_blank"));
    assert!(link.attr("rel").await.unwrap().is_some_and(|rel| rel.contains("noopener")));
    browser.find("#lg-submit").await.click().await.unwrap();
    let refusal = "Без согласия на обработку персональных данных мы не можем принять заявку";
    browser.wait_until(10, "the consent's error", || browser.shows("#lg-consent-error", refusal)).await;
    assert!(app.store.list_leads(None, None, 10).await.unwrap().is_empty(), "the page sent nothing");

    browser.find("#lg-consent").await.click().await.unwrap();
    browser.screenshot("form-consent-ticked").await;
    browser.find("#lg-submit").await.click().await.unwrap();
    browser.wait_until(10, "the success message", || browser.shows("#lg-success-message", SUCCESS_MESSAGE)).await;
    browser.close().await;

    let leads = app.store.list_leads(None, None, 10).await.unwrap();
    assert_eq!(leads.len(), 1);
    assert_eq!(leads[0].fields.payload["consent"]["given"], true);
    assert_eq!(leads[0].fields.payload["consent"]["policy_url"], "https://example.ru/privacy");
    app.stop().await;
}
