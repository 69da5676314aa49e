//! Telphin: the seed's ten scenarios arrive as one unsigned form POST per leg event, as facts §1.3–1.4 describe.

use pbx_emulator::{KNOWN_CLIENT, ProviderKind, SANDBOX_DID, Scenario};

use crate::harness::{Received, play_to_receiver, scenario};

/// `(EventType, extension number, CallStatus)` of every event.
fn sequence(received: &[Received]) -> Vec<(String, String, String)> {
    received
        .iter()
        .map(|event| {
            let extension = event.field("CalledExtension").or(event.field("CallerExtension")).unwrap_or_default();
            let number = extension.split_once('*').and_then(|(_, rest)| rest.split_once('@')).map(|(number, _)| number);
            (
                event.get("EventType").to_owned(),
                number.unwrap_or_default().to_owned(),
                event.get("CallStatus").to_owned(),
            )
        })
        .collect()
}

fn triples(expected: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    expected.iter().map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned())).collect()
}

fn expected_sequence(name: &str) -> Vec<(String, String, String)> {
    let incoming_answered = [
        ("dial-in", "099", "CALLING"),
        ("dial-in", "101", "CALLING"),
        ("answer", "101", "ANSWER"),
        ("hangup", "101", "ANSWER"),
        ("hangup", "099", "ANSWER"),
    ];
    let incoming_missed = [
        ("dial-in", "099", "CALLING"),
        ("dial-in", "101", "CALLING"),
        ("hangup", "101", "CANCEL"),
        ("hangup", "099", "ANSWER"),
    ];
    let outgoing_answered = [("dial-out", "101", "CALLING"), ("answer", "101", "ANSWER"), ("hangup", "101", "ANSWER")];
    match name {
        "incoming-known-answered" | "incoming-unknown-answered" | "incoming-unknown-answered-no-autocontact" => {
            triples(&incoming_answered)
        }
        "incoming-known-missed" | "incoming-unknown-missed" => triples(&incoming_missed),
        "outgoing-known-answered" | "outgoing-unknown-answered" | "outgoing-unknown-answered-no-autocontact" => {
            triples(&outgoing_answered)
        }
        "outgoing-known-unanswered" => triples(&[("dial-out", "101", "CALLING"), ("hangup", "101", "NOANSWER")]),
        "outgoing-unknown-unanswered" => triples(&[("dial-out", "101", "CALLING"), ("hangup", "101", "BUSY")]),
        other => panic!("no expectation for {other}"),
    }
}

#[tokio::test]
async fn each_seed_scenario_arrives_as_the_documented_per_leg_event_sequence() {
    for scenario in Scenario::seed() {
        let script = scenario.script();
        let (received, report) = play_to_receiver(ProviderKind::Telphin, &script).await;

        assert_eq!(sequence(&received), expected_sequence(scenario.name), "{}", scenario.name);
        assert!(report.all_accepted());
        for event in &received {
            assert_eq!(event.method, "POST");
            assert_eq!(event.path, "/hook", "the URL is used as subscribed");
            assert_eq!(event.query, [("secret".to_owned(), "s".to_owned())], "the URL's secret stays");
            assert_eq!(event.header("content-type"), Some("application/x-www-form-urlencoded"));
            assert_eq!(event.get("CallID"), received[0].get("CallID"), "one CallID per call");
            assert_eq!(event.header("Signature"), None, "Telphin signs nothing");
        }
        if scenario.client_known {
            let client_field =
                if script.direction == pbx_emulator::Direction::Incoming { "CallerIDNum" } else { "CalledNumber" };
            assert!(received.iter().all(|event| event.get(client_field) == KNOWN_CLIENT), "{}", scenario.name);
        }
    }
}

#[tokio::test]
async fn an_answered_incoming_call_carries_did_flow_duration_recording_and_bridged_where_documented() {
    let (received, _) = play_to_receiver(ProviderKind::Telphin, &scenario("incoming-known-answered")).await;
    let [ivr_in, phone_in, answer, phone_hangup, ivr_hangup] = received.as_slice() else { panic!("five events") };

    for event in &received {
        assert_eq!(event.get("CallFlow"), "IN");
        assert_eq!(event.get("CalledDID"), SANDBOX_DID);
        assert_eq!(event.get("CallerIDNum"), KNOWN_CLIENT);
        assert_eq!(event.field("CallerExtension"), None, "an external caller has no extension");
    }
    assert_eq!(phone_in.get("CalledExtension"), "100*101@sipproxy.telphin.ru");
    assert_eq!(phone_in.get("CalledNumber"), "101");
    assert_eq!(ivr_in.get("CalledNumber"), "099");
    assert_ne!(ivr_in.get("SubCallID"), phone_in.get("SubCallID"), "each leg has its own SubCallID");
    assert_eq!(answer.get("SubCallID"), phone_in.get("SubCallID"));
    assert_eq!(phone_hangup.get("SubCallID"), phone_in.get("SubCallID"));
    assert_eq!(phone_hangup.get("Duration"), "95");
    assert!(phone_hangup.get("RecID").starts_with("469101-"), "{}", phone_hangup.get("RecID"));
    assert_eq!(phone_hangup.field("Bridged"), None, "Bridged only on IVR and queue hangups");
    assert_eq!(ivr_hangup.get("Bridged"), "yes");
    assert_eq!(ivr_hangup.field("RecID"), None);
    for event in [ivr_in, phone_in, answer] {
        assert_eq!(event.field("Duration"), None, "Duration comes with hangups");
    }
}

#[tokio::test]
async fn event_times_are_epoch_microseconds_in_the_order_of_the_call() {
    let (received, _) = play_to_receiver(ProviderKind::Telphin, &scenario("incoming-known-answered")).await;
    let times: Vec<u128> = received.iter().map(|event| event.get("EventTime").parse().unwrap()).collect();
    let now_micros = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros();

    assert!(times.windows(2).all(|pair| pair[0] <= pair[1]));
    let last = *times.last().unwrap();
    assert!(last <= now_micros && last > now_micros - 60_000_000, "µs, not s or ms, and not in the future: {last}");
    assert_eq!((times[3] - times[2]) / 1_000_000, 95, "the talk lasts 95 s between answer and hangup");
}

#[tokio::test]
async fn a_missed_call_says_bridged_no_and_no_leg_talked() {
    let (received, _) = play_to_receiver(ProviderKind::Telphin, &scenario("incoming-unknown-missed")).await;

    assert!(received.iter().all(|event| event.get("EventType") != "answer"));
    assert_eq!(received[2].get("Duration"), "0");
    assert_eq!(received[3].get("Bridged"), "no");
    assert!(received.iter().all(|event| event.field("RecID").is_none()));
}

#[tokio::test]
async fn an_outgoing_call_names_the_caller_extension_and_the_dialled_number() {
    let (received, _) = play_to_receiver(ProviderKind::Telphin, &scenario("outgoing-unknown-answered")).await;

    for event in &received {
        assert_eq!(event.get("CallFlow"), "OUT");
        assert_eq!(event.get("CallerExtension"), "100*101@sipproxy.telphin.ru");
        assert_eq!(event.get("CalledNumber"), "79035550107");
        assert_eq!(event.field("CalledExtension"), None);
        assert_eq!(event.field("Bridged"), None);
    }
    assert_eq!(received[2].get("Duration"), "140");
    assert!(received[2].field("RecID").is_some());
}
