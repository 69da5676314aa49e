//! Resends, reordering, parallel ringing, transfers and internal calls, and a player that does not stop at a failure.

use std::time::{Duration, Instant};

use pbx_emulator::{Pacing, PlayOptions, Provider, ProviderKind, Reorder, ScriptError};

use crate::harness::{Receiver, Verify, assert_all_signed, play_to_receiver, play_with, scenario};

#[tokio::test]
async fn resend_every_event_sends_each_request_twice_byte_for_byte() {
    for kind in ProviderKind::ALL {
        let script = scenario("incoming-known-answered").resend_every_event();
        let (received, report) = play_to_receiver(kind, &script).await;

        assert_eq!(received.len() % 2, 0);
        for pair in received.chunks(2) {
            assert_eq!(pair[0].body, pair[1].body, "{kind}");
            assert_eq!(pair[0].path, pair[1].path, "{kind}");
            assert_eq!(pair[0].header("Signature"), pair[1].header("Signature"), "{kind}");
        }
        assert_eq!(report.deliveries.len(), received.len());
        if kind != ProviderKind::Telphin {
            assert_all_signed(&received);
        }
    }
}

#[tokio::test]
async fn hangup_before_answer_delivers_the_answered_legs_hangup_first() {
    let script = scenario("incoming-known-answered").reorder(Reorder::HangupBeforeAnswer);
    let (received, _) = play_to_receiver(ProviderKind::Telphin, &script).await;
    let types: Vec<&str> = received.iter().map(|event| event.get("EventType")).collect();
    assert_eq!(types, ["dial-in", "dial-in", "hangup", "answer", "hangup"]);
    assert_eq!(received[2].get("SubCallID"), received[3].get("SubCallID"), "the hangup of the very leg that answers");

    let (received, _) = play_to_receiver(ProviderKind::Zadarma, &script).await;
    let events: Vec<&str> = received.iter().map(|event| event.get("event")).collect();
    assert_eq!(events, ["NOTIFY_START", "NOTIFY_INTERNAL", "NOTIFY_END", "NOTIFY_ANSWER", "NOTIFY_RECORD"]);

    let (received, _) = play_to_receiver(ProviderKind::Mango, &script).await;
    let states: Vec<String> = received
        .iter()
        .filter(|event| event.path.ends_with("/events/call"))
        .map(|event| event.json()["call_state"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(states, ["Appeared", "Disconnected", "Appeared", "Disconnected", "Connected"]);
    assert_all_signed(&received);
}

#[tokio::test]
async fn reversed_delivers_the_whole_call_last_request_first() {
    let script = scenario("outgoing-known-answered").reorder(Reorder::Reversed);
    let (received, _) = play_to_receiver(ProviderKind::Mango, &script).await;
    let paths: Vec<&str> = received.iter().map(|event| event.path.as_str()).collect();
    assert_eq!(paths.first(), Some(&"/hook/events/record/added"));
    assert_eq!(paths.last(), Some(&"/hook/events/call"));
}

#[tokio::test]
async fn reordering_around_an_answer_that_is_never_sent_is_refused() {
    let unanswered = scenario("outgoing-known-unanswered").reorder(Reorder::HangupBeforeAnswer);
    let error = pbx_emulator::render(&unanswered, &Provider::sandbox(ProviderKind::Telphin)).unwrap_err();
    assert_eq!(error, ScriptError::NothingToReorder);

    let zadarma_outgoing = scenario("outgoing-known-answered").reorder(Reorder::HangupBeforeAnswer);
    let error = pbx_emulator::render(&zadarma_outgoing, &Provider::sandbox(ProviderKind::Zadarma)).unwrap_err();
    assert_eq!(error, ScriptError::NoAnswerEvent);
}

#[tokio::test]
async fn with_parallel_ringing_every_other_leg_gets_its_own_hangup_in_the_same_call() {
    let script = scenario("incoming-parallel-answered");
    let (received, _) = play_to_receiver(ProviderKind::Telphin, &script).await;

    let legs_rung = received.iter().filter(|event| event.get("EventType") == "dial-in").count();
    assert_eq!(legs_rung, 4, "the IVR and three phones");
    let hangups: Vec<(&str, &str)> = received
        .iter()
        .filter(|event| event.get("EventType") == "hangup")
        .map(|event| (event.get("CalledNumber"), event.get("CallStatus")))
        .collect();
    assert_eq!(hangups, [("101", "CANCEL"), ("103", "CANCEL"), ("102", "ANSWER"), ("099", "ANSWER")]);
    assert!(received.iter().all(|event| event.get("CallID") == received[0].get("CallID")));

    let (received, _) = play_to_receiver(ProviderKind::Mango, &script).await;
    let taken_elsewhere = received
        .iter()
        .filter(|event| event.path.ends_with("/events/call"))
        .filter(|event| event.json()["disconnect_reason"] == 1182)
        .count();
    assert_eq!(taken_elsewhere, 2);
}

#[tokio::test]
async fn a_transfer_keeps_the_call_id_and_shows_the_real_party_in_remote_number() {
    let (received, _) = play_to_receiver(ProviderKind::Telphin, &scenario("incoming-transfer-to-extension")).await;
    let transferred = received.iter().find(|event| event.field("RemoteNumber").is_some()).unwrap();

    assert_eq!(transferred.get("EventType"), "dial-in");
    assert_eq!(transferred.get("CalledNumber"), "103");
    assert_eq!(transferred.get("RemoteNumber"), pbx_emulator::KNOWN_CLIENT);
    assert!(received.iter().all(|event| event.get("CallID") == received[0].get("CallID")));
    let recordings = received.iter().filter(|event| event.field("RecID").is_some()).count();
    assert_eq!(recordings, 2, "each talking leg has its own recording");

    let (received, _) = play_to_receiver(ProviderKind::Telphin, &scenario("incoming-transfer-to-number")).await;
    let outward: Vec<_> = received.iter().filter(|event| event.field("Transfered") == Some("yes")).collect();
    assert_eq!(outward[0].get("EventType"), "dial-out");
    assert_eq!(outward[0].get("CalledNumber"), "79857654321");
    assert!(outward.iter().all(|event| event.get("CallID") == received[0].get("CallID")));
}

#[tokio::test]
async fn an_internal_call_is_between_extensions_only() {
    let (received, _) = play_to_receiver(ProviderKind::Telphin, &scenario("internal-call")).await;
    let dial_out = received.iter().find(|event| event.get("EventType") == "dial-out").unwrap();
    assert_eq!(dial_out.get("CalledNumber"), "102", "the guide's test for an internal call");
    assert!(received.iter().all(|event| event.field("CalledDID").is_none()));

    let (received, _) = play_to_receiver(ProviderKind::Mango, &scenario("internal-call")).await;
    let summary = received.iter().find(|event| event.path.ends_with("/events/summary")).unwrap().json();
    assert_eq!(summary["call_direction"], 0);
    assert_eq!(summary["to"]["extension"], "102");
}

#[tokio::test]
async fn the_player_goes_on_after_a_refusal_and_resends_when_asked() {
    let receiver = Receiver::spawn(Verify::Nothing).await;
    receiver.fail_next(&[503]);
    let provider = Provider::sandbox(ProviderKind::Telphin);
    let script = scenario("outgoing-known-unanswered");

    let report = pbx_emulator::play(&script, &provider, &receiver.url("/t"), &PlayOptions::default()).await.unwrap();
    assert_eq!(report.statuses(), [Some(503), Some(200)], "no resend by default, and no stop either");
    assert!(!report.all_accepted());

    receiver.fail_next(&[500, 502]);
    let options =
        PlayOptions { resend_on_failure: 3, resend_delay: Duration::from_millis(10), ..PlayOptions::default() };
    let report = pbx_emulator::play(&script, &provider, &receiver.url("/t"), &options).await.unwrap();
    assert_eq!(report.statuses(), [Some(500), Some(502), Some(200), Some(200)]);
    assert_eq!(report.deliveries.iter().map(|delivery| delivery.attempt).collect::<Vec<_>>(), [1, 2, 3, 1]);
    assert!(report.all_accepted());
}

#[tokio::test]
async fn an_unreachable_target_is_reported_per_request_not_as_an_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = url::Url::parse(&format!("http://{}/gone", closed.local_addr().unwrap())).unwrap();
    drop(closed);

    let options =
        PlayOptions { resend_on_failure: 1, resend_delay: Duration::from_millis(1), ..PlayOptions::default() };
    let report = pbx_emulator::play(
        &scenario("outgoing-known-unanswered"),
        &Provider::sandbox(ProviderKind::Zadarma),
        &url,
        &options,
    )
    .await
    .unwrap();

    assert_eq!(report.deliveries.len(), 4, "two requests, each tried twice");
    assert!(report.deliveries.iter().all(|delivery| delivery.status.is_none() && delivery.error.is_some()));
}

#[tokio::test]
async fn fixed_pacing_spaces_the_requests() {
    let options = PlayOptions { pacing: Pacing::Every(Duration::from_millis(60)), ..PlayOptions::default() };
    let started = Instant::now();
    let (received, _) = play_with(ProviderKind::Telphin, &scenario("outgoing-known-answered"), &options).await;
    assert_eq!(received.len(), 3);
    assert!(started.elapsed() >= Duration::from_millis(120));
}
