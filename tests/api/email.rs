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
    //! The e-mails outcomes owe the team, end to end through the feedback worker.

    use std::time::Duration;

    use amocrm_emulator::{SeedContact, SeedLead};
    use serde_json::json;

    use crate::helpers::{PIPELINE, Setup, history_kinds, poll_until, spawn_app_with};
    use crate::smtp_sink::SmtpSink;

    async fn app_with_mail(sink: &SmtpSink) -> crate::helpers::TestApp {
        spawn_app_with(Setup {
            smtp_url: Some(sink.url()),
            notify: vec!["sales@example.ru".to_owned(), "boss@example.ru".to_owned()],
            ..Setup::default()
        })
        .await
    }

    #[tokio::test]
    async fn a_new_client_is_announced_with_the_seed_subject_the_fields_and_crm_links() {
        let sink = SmtpSink::start().await;
        let app = app_with_mail(&sink).await;
        let id = app
            .accept(json!({ "name": "Алиса", "phone": "+79998000001", "comment": "Студия", "object": "ЖК Лес" }))
            .await;
        app.wait_for(id, &["approved"]).await;
        assert!(poll_until(Duration::from_secs(10), || async { !sink.messages().is_empty() }).await);

        let mail = &sink.messages()[0];
        assert!(mail.subject.starts_with("Успех! Клиент уникальный"), "{}", mail.subject);
        assert!(mail.subject.contains("Алиса"));
        assert_eq!(mail.to.len(), 2);
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
        assert!(
            poll_until(Duration::from_secs(5), || async {
                history_kinds(&app.get_lead(id).await).contains(&"email_delivered".to_owned())
            })
            .await
        );
        app.stop().await;
    }

    #[tokio::test]
    async fn a_known_client_is_announced_as_needing_a_check() {
        let sink = SmtpSink::start().await;
        let app = app_with_mail(&sink).await;
        let seed = SeedContact {
            name: "Борис".to_owned(),
            phones: vec!["+79998000002".to_owned()],
            emails: Vec::new(),
            leads: vec![SeedLead {
                pipeline: PIPELINE.to_owned(),
                status: "Новая заявка".to_owned(),
                ..SeedLead::default()
            }],
        };
        app.crm.emulator.seed_contact(&seed).unwrap();
        let id = app.accept(json!({ "name": "Борис", "phone": "8 999 800-00-02" })).await;
        app.wait_for(id, &["rejected"]).await;
        assert!(poll_until(Duration::from_secs(10), || async { !sink.messages().is_empty() }).await);
        assert!(
            sink.messages()[0].subject.starts_with("Проверка! Требуется уточнение"),
            "{}",
            sink.messages()[0].subject
        );
        app.stop().await;
    }

    #[tokio::test]
    async fn a_mail_server_that_refuses_for_a_while_still_gets_the_notification() {
        let sink = SmtpSink::start().await;
        sink.fail_next(2, 451);
        let app = app_with_mail(&sink).await;
        let id = app.accept(json!({ "name": "Вика", "phone": "+79998000003" })).await;
        app.wait_for(id, &["approved"]).await;
        assert!(poll_until(Duration::from_secs(15), || async { !sink.messages().is_empty() }).await);
        assert!(
            poll_until(Duration::from_secs(5), || async {
                history_kinds(&app.get_lead(id).await).contains(&"email_delivered".to_owned())
            })
            .await
        );
        let kinds = history_kinds(&app.get_lead(id).await);
        assert_eq!(kinds.iter().filter(|kind| *kind == "email_attempt_failed").count(), 2, "{kinds:?}");
        assert_eq!(sink.messages().len(), 1);
        app.stop().await;
    }
}
