//! Zadarma: the seed's ten scenarios as NOTIFY_* form POSTs, each signed as facts §2.2 says, and the `zd_echo` check.

use pbx_emulator::{
    CallScript, KNOWN_CLIENT, PlayOptions, Provider, ProviderKind, SANDBOX_DID, Scenario, ZadarmaAccount,
};

use crate::harness::{Receiver, Verify, assert_all_signed, play_to_receiver, play_with, scenario};

fn events(received: &[crate::harness::Received]) -> Vec<&str> {
    received.iter().map(|request| request.get("event")).collect()
}

fn expected_events(name: &str) -> &'static [&'static str] {
    match name {
        "incoming-known-answered" | "incoming-unknown-answered" | "incoming-unknown-answered-no-autocontact" => {
            &["NOTIFY_START", "NOTIFY_INTERNAL", "NOTIFY_ANSWER", "NOTIFY_END", "NOTIFY_RECORD"]
        }
        "incoming-known-missed" | "incoming-unknown-missed" => &["NOTIFY_START", "NOTIFY_INTERNAL", "NOTIFY_END"],
        "outgoing-known-answered" | "outgoing-unknown-answered" | "outgoing-unknown-answered-no-autocontact" => {
            &["NOTIFY_OUT_START", "NOTIFY_OUT_END", "NOTIFY_RECORD"]
        }
        "outgoing-known-unanswered" | "outgoing-unknown-unanswered" => &["NOTIFY_OUT_START", "NOTIFY_OUT_END"],
        other => panic!("no expectation for {other}"),
    }
}

#[tokio::test]
async fn each_seed_scenario_arrives_as_signed_notify_events_in_the_documented_order() {
    for scenario in Scenario::seed() {
        let (received, report) = play_to_receiver(ProviderKind::Zadarma, &scenario.script()).await;

        assert_eq!(events(&received), expected_events(scenario.name), "{}", scenario.name);
        assert_all_signed(&received);
        assert!(report.all_accepted());
        let pbx_call_id = received[0].get("pbx_call_id");
        assert!(received.iter().all(|request| request.get("pbx_call_id") == pbx_call_id), "{}", scenario.name);
        for request in &received {
            assert_eq!(request.header("Signature").map(str::len), Some(56), "base64 of 40 hex digits");
        }
    }
}

#[tokio::test]
async fn an_answered_incoming_call_reports_who_answered_how_long_and_its_recording() {
    let (received, _) = play_to_receiver(ProviderKind::Zadarma, &scenario("incoming-known-answered")).await;
    let [start, internal, answer, end, record] = received.as_slice() else { panic!("five events") };

    assert_eq!(start.get("caller_id"), KNOWN_CLIENT);
    assert_eq!(start.get("called_did"), SANDBOX_DID);
    assert_eq!(internal.get("internal"), "101");
    assert_eq!(answer.get("destination"), "101");
    assert_eq!(answer.get("internal"), "101");
    assert_eq!(end.get("disposition"), "answered");
    assert_eq!(end.get("duration"), "95");
    assert_eq!(end.get("status_code"), "16");
    assert_eq!(end.get("is_recorded"), "1");
    assert_eq!(end.get("internal"), "101");
    assert_eq!(record.get("call_id_with_rec"), end.get("call_id_with_rec"));
    let call_start = start.get("call_start");
    assert!([internal, answer, end].iter().all(|request| request.get("call_start") == call_start));
    assert_eq!(call_start.len(), "2024-05-17 14:03:21".len(), "a local date-time: {call_start}");
}

#[tokio::test]
async fn unanswered_calls_say_why_in_disposition_and_status_code() {
    let cases = [
        ("incoming-known-missed", "NOTIFY_END", "cancel"),
        ("outgoing-known-unanswered", "NOTIFY_OUT_END", "no answer"),
        ("outgoing-unknown-unanswered", "NOTIFY_OUT_END", "busy"),
    ];
    for (name, event, disposition) in cases {
        let (received, _) = play_to_receiver(ProviderKind::Zadarma, &scenario(name)).await;
        let end = received.iter().find(|request| request.get("event") == event).unwrap();

        assert_eq!(end.get("disposition"), disposition, "{name}");
        assert_eq!(end.get("duration"), "0", "{name}");
        assert_eq!(end.get("is_recorded"), "0", "{name}");
        assert_eq!(end.field("call_id_with_rec"), None, "{name}");
    }
}

#[tokio::test]
async fn an_outgoing_call_names_the_extension_and_the_destination() {
    let (received, _) = play_to_receiver(ProviderKind::Zadarma, &scenario("outgoing-known-answered")).await;

    for request in &received[..2] {
        assert_eq!(request.get("internal"), "101");
        assert_eq!(request.get("destination"), KNOWN_CLIENT);
        assert!(request.get("pbx_call_id").starts_with("out_"));
    }
    assert_eq!(received[1].get("duration"), "140");
    assert_eq!(received[1].get("disposition"), "answered");
}

#[tokio::test]
async fn an_account_without_api_key_and_secret_sends_no_signature() {
    let unsigned = Provider::Zadarma(ZadarmaAccount { api: None, utc_offset_minutes: 180 });
    let receiver = Receiver::spawn(Verify::Nothing).await;

    pbx_emulator::play(&scenario("incoming-known-missed"), &unsigned, &receiver.url("/z"), &PlayOptions::default())
        .await
        .unwrap();

    assert!(receiver.received().iter().all(|request| request.header("Signature").is_none()));
}

#[tokio::test]
async fn the_zd_echo_check_passes_only_when_the_value_comes_back() {
    let options = PlayOptions { check_connection: true, ..PlayOptions::default() };
    let script = scenario("incoming-known-missed");
    let (received, report) = play_with(ProviderKind::Zadarma, &script, &options).await;

    let check = &received[0];
    assert_eq!(check.method, "GET");
    assert_eq!(check.query.iter().filter(|(key, _)| key == "secret").count(), 1, "the URL's own query stays");
    assert!(check.query.iter().any(|(key, value)| key == "zd_echo" && !value.is_empty()));
    assert!(report.connection_check.as_ref().unwrap().passed);

    let silent = Receiver::spawn(Verify::Zadarma).await;
    silent.stop_echoing();
    let provider = Provider::sandbox(ProviderKind::Zadarma);
    let report = pbx_emulator::play(&script, &provider, &silent.url("/z"), &options).await.unwrap();
    assert!(!report.connection_check.unwrap().passed);
}

#[tokio::test]
async fn parallel_ringing_sends_one_notify_internal_per_extension() {
    let script: CallScript = scenario("incoming-known-answered").parallel_ringing(&["102", "103"]);
    let (received, _) = play_to_receiver(ProviderKind::Zadarma, &script).await;

    let rung: Vec<&str> = received
        .iter()
        .filter(|request| request.get("event") == "NOTIFY_INTERNAL")
        .map(|request| request.get("internal"))
        .collect();
    assert_eq!(rung, ["101", "102", "103"]);
    assert_all_signed(&received);
}
