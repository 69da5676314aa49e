//! E-mail: the sender against a real SMTP server on loopback, and the notifications outcomes owe.

use std::time::{Duration, Instant};

use crate::smtp_sink::SmtpSink;
use leadgate::notify::email::{EmailError, Mailer, SmtpConfig};
use secrecy::SecretString;
use url::Url;

fn config(url: &str) -> SmtpConfig {
    SmtpConfig {
        url: Url::parse(url).expect("a valid URL"),
        from: "Leadgate <leads@example.com>".to_owned(),
        username: None,
        password: None,
        timeout: Duration::from_secs(5),
    }
}

fn recipients(addresses: &[&str]) -> Vec<String> {
    addresses.iter().map(|address| (*address).to_owned()).collect()
}

#[tokio::test]
async fn a_cyrillic_message_arrives_intact_with_its_sender_and_recipient() {
    let sink = SmtpSink::start().await;
    let mailer = Mailer::new(&config(&sink.url())).expect("a mailer");
    let subject = "Успех! Клиент уникальный: Анна Петрова-Водкина из Санкт-Петербурга, заявка №42";
    let body =
        "Имя: Анна\nТелефон: +79991234567\n.строка с точкой в начале\nСделка: https://acme.amocrm.ru/leads/detail/7";

    mailer.send(&recipients(&["sales@example.com"]), subject, body).await.expect("sent");

    let messages = sink.messages();
    assert_eq!(messages.len(), 1);
    let mail = &messages[0];
    assert_eq!(mail.from, "leads@example.com");
    assert_eq!(mail.to, ["sales@example.com"]);
    assert_eq!(mail.subject, subject);
    assert_eq!(mail.body, body);
    assert!(mail.data.contains("From: Leadgate <leads@example.com>"), "{}", mail.data);
    assert!(mail.data.contains("charset=utf-8"), "{}", mail.data);
    assert!(mail.data.is_ascii(), "the message is 7-bit clean:\n{}", mail.data);
    assert_eq!(mail.username, None);
}

#[tokio::test]
async fn every_recipient_gets_the_message_and_is_listed_in_to() {
    let sink = SmtpSink::start().await;
    let mailer = Mailer::new(&config(&sink.url())).expect("a mailer");

    mailer
        .send(
            &recipients(&["sales@example.com", "Руководитель <boss@example.com>"]),
            "Проверка! Требуется уточнение: Иван",
            "Клиент уже есть в CRM.",
        )
        .await
        .expect("sent");

    let mail = &sink.messages()[0];
    assert_eq!(mail.to, ["sales@example.com", "boss@example.com"]);
    let to_header = mail.data.split("\r\n").find(|line| line.starts_with("To:")).expect("a To header");
    assert!(to_header.contains("sales@example.com"), "{to_header}");
    assert!(to_header.contains("boss@example.com"), "{to_header}");
}

#[tokio::test]
async fn credentials_in_the_config_are_used_to_log_in() {
    let sink = SmtpSink::start().await;
    let mut config = config(&sink.url());
    config.username = Some("robot@example.com".to_owned());
    config.password = Some(SecretString::from("s3cret"));
    let mailer = Mailer::new(&config).expect("a mailer");

    mailer.send(&recipients(&["sales@example.com"]), "Тема", "Текст").await.expect("sent");

    assert_eq!(sink.messages()[0].username.as_deref(), Some("robot@example.com"));
}

#[tokio::test]
async fn a_temporary_refusal_is_not_permanent_and_the_next_try_goes_through() {
    let sink = SmtpSink::start().await;
    let mailer = Mailer::new(&config(&sink.url())).expect("a mailer");
    sink.fail_next(1, 451);
    let to = recipients(&["sales@example.com"]);

    let error = mailer.send(&to, "Тема", "Текст").await.expect_err("refused once");

    assert!(matches!(error, EmailError::Transport { .. }), "{error:?}");
    assert!(!error.is_permanent(), "{error:?}");
    assert!(error.to_string().contains("451"), "{error}");
    mailer.send(&to, "Тема", "Текст").await.expect("the retry is taken");
    assert_eq!(sink.messages().len(), 1);
}

#[tokio::test]
async fn a_permanent_refusal_is_reported_as_permanent() {
    let sink = SmtpSink::start().await;
    let mailer = Mailer::new(&config(&sink.url())).expect("a mailer");
    sink.fail_next(1, 550);

    let error = mailer.send(&recipients(&["sales@example.com"]), "Тема", "Текст").await.expect_err("refused");

    assert!(error.is_permanent(), "{error:?}");
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn an_unreachable_server_is_a_temporary_error_reported_quickly() {
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let mut config = config(&format!("smtp://127.0.0.1:{closed_port}"));
    config.timeout = Duration::from_millis(500);
    let mailer = Mailer::new(&config).expect("a mailer");
    let started = Instant::now();

    let error = mailer.send(&recipients(&["sales@example.com"]), "Тема", "Текст").await.expect_err("nobody listens");

    assert!(!error.is_permanent(), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn an_invalid_recipient_is_refused_before_connecting() {
    let sink = SmtpSink::start().await;
    let mailer = Mailer::new(&config(&sink.url())).expect("a mailer");

    let error = mailer
        .send(&recipients(&["sales@example.com", "not an address"]), "Тема", "Текст")
        .await
        .expect_err("an invalid recipient");

    assert!(matches!(error, EmailError::InvalidAddress { ref address, .. } if address == "not an address"));
    assert!(error.is_permanent());
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn a_server_that_never_greets_times_out_as_a_temporary_error() {
    // Connections queue in the backlog and are never answered.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let mut config = config(&format!("smtp://{}", silent.local_addr().expect("address")));
    config.timeout = Duration::from_millis(300);
    let mailer = Mailer::new(&config).expect("a mailer");
    let started = Instant::now();

    let error = mailer.send(&recipients(&["sales@example.com"]), "Тема", "Текст").await.expect_err("no greeting");

    assert!(!error.is_permanent(), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
}

mod notifications {
    //! The e-mails outcomes owe, end to end through the feedback worker: one test per decision,
    //! each asserting what the team reads, and the advertiser's copy of a portal lead.

    use std::time::Duration;

    use amocrm_emulator::{SeedContact, SeedLead};
    use leadgate::domain::advertiser::{Advertiser, AdvertiserId, AdvertiserRoute};
    use leadgate::domain::document::Document;
    use leadgate::domain::{Email, LeadId, SourceId};
    use serde_json::{Value, json};

    use crate::helpers::{
        PIPELINE, PROXY_KEY, Setup, TestApp, ZAP_PIPELINE, ZAP_STAGE, history_kinds, poll_until, proxy_source,
        spawn_app_with,
    };
    use crate::smtp_sink::{ReceivedMail, SmtpSink};
    use crate::zap::{PORTAL, post, sample};

    const TEAM: [&str; 2] = ["sales@example.ru", "boss@example.ru"];
    const ADVERTISER: &str = "corretor@imobiliaria.com.br";

    fn setup(sink: &SmtpSink) -> Setup {
        Setup {
            smtp_url: Some(sink.url()),
            notify: TEAM.iter().map(|address| (*address).to_owned()).collect(),
            ..Setup::default()
        }
    }

    async fn app_with_mail(sink: &SmtpSink) -> TestApp {
        spawn_app_with(setup(sink)).await
    }

    /// A portal whose advertiser «555» lists `m1`, and wants its own copy when `copy` is set.
    async fn portal_with_mail(sink: &SmtpSink, copy: bool) -> TestApp {
        let app = spawn_app_with(Setup { zap: true, ..setup(sink) }).await;
        let advertiser = Advertiser {
            source: SourceId("zap".to_owned()),
            id: AdvertiserId::parse("555").unwrap(),
            document: Document::parse("56921485000100").unwrap(),
            name: "Imobiliária Mail".to_owned(),
            email: Some(Email::parse(ADVERTISER).unwrap()),
            send_lead_email: copy,
            route: AdvertiserRoute::default(),
            listings: vec!["m1".to_owned()],
            enabled: true,
        };
        app.store.upsert_advertisers(&[advertiser]).await.unwrap();
        app
    }

    async fn post_portal_lead(app: &TestApp, origin_lead_id: &str, phone: &str) -> i64 {
        let response = post(app, "/grupozap/lead/555", &sample(origin_lead_id, "m1", phone), PORTAL).await;
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
    }

    fn client(name: &str, phone: &str, deal_pipeline: Option<(&str, &str)>) -> SeedContact {
        SeedContact {
            name: name.to_owned(),
            phones: vec![phone.to_owned()],
            emails: Vec::new(),
            leads: deal_pipeline
                .map(|(pipeline, status)| SeedLead {
                    pipeline: pipeline.to_owned(),
                    status: status.to_owned(),
                    ..SeedLead::default()
                })
                .into_iter()
                .collect(),
        }
    }

    /// The messages the sink took once the gateway has recorded `count` e-mails of lead `id` as
    /// delivered, so no other e-mail of the lead is still on its way when the test looks.
    async fn delivered_mail(app: &TestApp, sink: &SmtpSink, id: i64, count: usize) -> Vec<ReceivedMail> {
        let delivered = || async {
            let history = app.store.history(LeadId(id)).await.unwrap();
            history.iter().filter(|event| event.kind == "email_delivered").count()
        };
        let settled = poll_until(Duration::from_secs(15), || async { delivered().await >= count }).await;
        let lead = app.store.find_lead(LeadId(id)).await.unwrap();
        assert!(settled, "lead {id} did not get {count} e-mail(s) delivered: {lead:?}");
        assert_eq!(delivered().await, count);
        let messages = sink.messages();
        assert_eq!(messages.len(), count, "{messages:#?}");
        messages
    }

    /// The one message the team got about lead `id`, checked to have gone to the team only.
    async fn the_team_mail(app: &TestApp, sink: &SmtpSink, id: i64) -> ReceivedMail {
        let mail = delivered_mail(app, sink, id, 1).await.remove(0);
        assert_eq!(mail.to, TEAM);
        mail
    }

    fn decision_lines(mail: &ReceivedMail) -> Vec<&str> {
        mail.body.lines().filter(|line| line.starts_with("Решение:")).collect()
    }

    #[tokio::test]
    async fn a_new_client_is_announced_with_the_seed_subject_the_fields_and_crm_links() {
        let sink = SmtpSink::start().await;
        let app = app_with_mail(&sink).await;
        let id = app
            .accept(json!({ "name": "Алиса", "phone": "+79998000001", "comment": "Студия", "object": "ЖК Лес" }))
            .await;

        let mail = the_team_mail(&app, &sink, id).await;

        assert_eq!(mail.subject, "Успех! Клиент уникальный: Алиса");
        assert_eq!(
            decision_lines(&mail),
            ["Решение: новый клиент — в CRM созданы контакт и сделка с примечанием о заявке."]
        );
        let deal = &app.crm.emulator.leads()[0];
        let base = app.crm.base_url();
        for expected in [
            "+79998000001".to_owned(),
            "Студия".to_owned(),
            "ЖК Лес".to_owned(),
            format!("{base}/contacts/detail/{}", deal.contact_ids[0]),
            format!("{base}/leads/detail/{}", deal.id),
        ] {
            assert!(mail.body.contains(&expected), "{expected} missing from:\n{}", mail.body);
        }
        app.stop().await;
    }

    #[tokio::test]
    async fn a_partner_lead_of_a_known_client_without_a_deal_is_announced_as_nothing_created() {
        let sink = SmtpSink::start().await;
        let app = app_with_mail(&sink).await;
        let seeded = app.crm.emulator.seed_contact(&client("Глеб", "+79998000004", None)).unwrap();
        let id = app.accept(json!({ "name": "Глеб", "phone": "8 999 800-00-04" })).await;

        let mail = the_team_mail(&app, &sink, id).await;

        assert_eq!(mail.subject, "Проверка! Требуется уточнение: Глеб");
        assert_eq!(
            decision_lines(&mail),
            [
                "Решение: клиент уже есть в CRM, сделки в воронке источника нет — ничего не создано, требуется уточнение."
            ]
        );
        let contact = format!("{}/contacts/detail/{}", app.crm.base_url(), seeded.contact_id);
        assert!(mail.body.contains(&contact), "{}", mail.body);
        assert!(!mail.body.contains("Сделка в CRM"), "{}", mail.body);
        app.stop().await;
    }

    #[tokio::test]
    async fn a_partner_lead_of_a_known_client_with_a_deal_is_announced_as_the_deal_moved() {
        let sink = SmtpSink::start().await;
        let app = app_with_mail(&sink).await;
        let seeded =
            app.crm.emulator.seed_contact(&client("Борис", "+79998000002", Some((PIPELINE, "Новая заявка")))).unwrap();
        let id = app.accept(json!({ "name": "Борис", "phone": "8 999 800-00-02" })).await;

        let mail = the_team_mail(&app, &sink, id).await;

        assert_eq!(mail.subject, "Проверка! Требуется уточнение: Борис");
        assert_eq!(
            decision_lines(&mail),
            ["Решение: клиент уже есть в CRM — его сделка перенесена на этап источника, новая не создана."]
        );
        let deal = format!("{}/leads/detail/{}", app.crm.base_url(), seeded.lead_ids[0]);
        assert!(mail.body.contains(&deal), "{}", mail.body);
        app.stop().await;
    }

    #[tokio::test]
    async fn a_portal_lead_of_a_known_client_without_a_deal_is_announced_as_a_new_deal() {
        let sink = SmtpSink::start().await;
        let app = portal_with_mail(&sink, false).await;
        let seeded = app.crm.emulator.seed_contact(&client("Cliente", "+55 11 99999-0101", None)).unwrap();
        let id = post_portal_lead(&app, "nd-1", "999990101").await;

        let mail = the_team_mail(&app, &sink, id).await;

        assert_eq!(mail.subject, "Новая сделка! Клиент уже есть в CRM: Nome Consumidor");
        assert_eq!(
            decision_lines(&mail),
            [
                "Решение: клиент уже есть в CRM — к его контакту создана новая сделка с примечанием о заявке, контакт не изменён."
            ]
        );
        let deal = &app.crm.emulator.leads()[0];
        let base = app.crm.base_url();
        assert!(mail.body.contains(&format!("{base}/contacts/detail/{}", seeded.contact_id)), "{}", mail.body);
        assert!(mail.body.contains(&format!("{base}/leads/detail/{}", deal.id)), "{}", mail.body);
        app.stop().await;
    }

    #[tokio::test]
    async fn a_website_lead_of_a_known_client_is_announced_as_a_new_deal() {
        let sink = SmtpSink::start().await;
        let app = spawn_app_with(Setup { proxy: Some(proxy_source()), ..setup(&sink) }).await;
        let seeded =
            app.crm.emulator.seed_contact(&client("Дина", "+79998000005", Some((ZAP_PIPELINE, ZAP_STAGE)))).unwrap();
        let response = app
            .http
            .get(app.url("/api/proxy/1.0/leads/add"))
            .query(&[("key", PROXY_KEY), ("name", "Дина"), ("phone", "89998000005")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let id = response.json::<Value>().await.unwrap()["id"].as_i64().unwrap();

        let mail = the_team_mail(&app, &sink, id).await;

        assert_eq!(mail.subject, "Новая сделка! Клиент уже есть в CRM: Дина");
        assert_eq!(
            decision_lines(&mail),
            [
                "Решение: клиент уже есть в CRM — к его контакту создана новая сделка с примечанием о заявке, контакт не изменён."
            ]
        );
        let new_deal = app.crm.emulator.leads().into_iter().find(|deal| deal.id != seeded.lead_ids[0]).unwrap();
        assert!(mail.body.contains(&format!("/leads/detail/{}", new_deal.id)), "{}", mail.body);
        app.stop().await;
    }

    #[tokio::test]
    async fn a_portal_lead_of_a_client_with_a_deal_is_announced_as_a_note_on_that_deal() {
        let sink = SmtpSink::start().await;
        let app = portal_with_mail(&sink, false).await;
        let seeded = app
            .crm
            .emulator
            .seed_contact(&client("Cliente", "+55 11 99999-0102", Some((ZAP_PIPELINE, ZAP_STAGE))))
            .unwrap();
        let id = post_portal_lead(&app, "dn-1", "999990102").await;

        let mail = the_team_mail(&app, &sink, id).await;

        assert_eq!(mail.subject, "Повторная заявка! Примечание в сделке клиента: Nome Consumidor");
        assert_eq!(
            decision_lines(&mail),
            [
                "Решение: клиент уже есть в CRM, у него есть сделка в этой воронке — к ней добавлено примечание о заявке, новая сделка не создана."
            ]
        );
        let deal = format!("{}/leads/detail/{}", app.crm.base_url(), seeded.lead_ids[0]);
        assert!(mail.body.contains(&deal), "{}", mail.body);
        app.stop().await;
    }

    #[tokio::test]
    async fn an_advertisers_copy_of_a_portal_lead_is_a_message_of_its_own() {
        let sink = SmtpSink::start().await;
        let app = portal_with_mail(&sink, true).await;
        let id = post_portal_lead(&app, "copy-1", "999990103").await;

        let messages = delivered_mail(&app, &sink, id, 2).await;

        let team = messages.iter().find(|mail| mail.to == TEAM).expect("the team's message");
        let copy = messages.iter().find(|mail| mail.to == [ADVERTISER]).expect("the advertiser's message");
        assert!(!team.data.contains(ADVERTISER), "the team's message shows the advertiser:\n{}", team.data);
        for address in TEAM {
            assert!(!copy.data.contains(address), "the advertiser's copy shows {address}:\n{}", copy.data);
        }
        assert_eq!(copy.subject, team.subject);
        assert!(copy.body.contains("Olá, tenho interesse"), "{}", copy.body);
        app.stop().await;
    }

    #[tokio::test]
    async fn a_mail_server_that_refuses_for_a_while_still_gets_the_notification() {
        let sink = SmtpSink::start().await;
        sink.fail_next(2, 451);
        let app = app_with_mail(&sink).await;
        let id = app.accept(json!({ "name": "Вика", "phone": "+79998000003" })).await;

        the_team_mail(&app, &sink, id).await;

        let kinds = history_kinds(&app.get_lead(id).await);
        assert_eq!(kinds.iter().filter(|kind| *kind == "email_attempt_failed").count(), 2, "{kinds:?}");
        app.stop().await;
    }
}
