//! Mango Office: the seed's ten scenarios as signed `events/call` per leg state, one `events/summary`, and `events/record/added`.

use pbx_emulator::{KNOWN_CLIENT, PlayOptions, ProviderKind, SANDBOX_DID, Scenario};
use serde_json::Value;

use crate::harness::{Received, assert_all_signed, play_to_receiver, play_with, scenario};

/// `path` for summaries and records; `path state location extension` for call events.
fn outline(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .map(|request| {
            let event = request.json();
            match request.path.as_str() {
                "/mango/events/call" => format!(
                    "{} {} {}",
                    event["call_state"].as_str().unwrap(),
                    event["location"].as_str().unwrap(),
                    event["to"]["extension"].as_str().unwrap_or("-"),
                ),
                other => other.trim_start_matches("/mango/").to_owned(),
            }
        })
        .collect()
}

fn expected_outline(name: &str) -> &'static [&'static str] {
    match name {
        "incoming-known-answered" | "incoming-unknown-answered" | "incoming-unknown-answered-no-autocontact" => &[
            "Appeared ivr -",
            "Disconnected ivr -",
            "Appeared abonent 101",
            "Connected abonent 101",
            "Disconnected abonent 101",
            "events/summary",
            "events/record/added",
        ],
        "incoming-known-missed" | "incoming-unknown-missed" => &[
            "Appeared ivr -",
            "Disconnected ivr -",
            "Appeared abonent 101",
            "Disconnected abonent 101",
            "events/summary",
        ],
        "outgoing-known-answered" | "outgoing-unknown-answered" | "outgoing-unknown-answered-no-autocontact" => &[
            "Appeared abonent -",
            "Connected abonent -",
            "Disconnected abonent -",
            "events/summary",
            "events/record/added",
        ],
        "outgoing-known-unanswered" | "outgoing-unknown-unanswered" => {
            &["Appeared abonent -", "Disconnected abonent -", "events/summary"]
        }
        other => panic!("no expectation for {other}"),
    }
}

async fn play_mango(name: &str) -> Vec<Received> {
    play_to_receiver(ProviderKind::Mango, &scenario(name)).await.0.into_iter().map(under_mango).collect()
}

/// The harness plays to `/hook?secret=s`; Mango appends its event path to that.
fn under_mango(mut request: Received) -> Received {
    request.path = request.path.replacen("/hook", "/mango", 1);
    request
}

#[tokio::test]
async fn each_seed_scenario_arrives_as_signed_leg_events_then_one_summary() {
    for scenario in Scenario::seed() {
        let (received, report) = play_to_receiver(ProviderKind::Mango, &scenario.script()).await;
        let received: Vec<Received> = received.into_iter().map(under_mango).collect();

        assert_eq!(outline(&received), expected_outline(scenario.name), "{}", scenario.name);
        assert_all_signed(&received);
        assert!(report.all_accepted());
        let entry_id = received[0].json()["entry_id"].clone();
        assert!(received.iter().all(|request| request.json()["entry_id"] == entry_id), "{}", scenario.name);
        assert!(received.iter().all(|request| request.query == [("secret".to_owned(), "s".to_owned())]));
        assert_eq!(received.iter().filter(|request| request.path == "/mango/events/summary").count(), 1);
    }
}

#[tokio::test]
async fn leg_events_count_seq_per_leg_and_carry_parties_and_disconnect_reasons() {
    let received = play_mango("incoming-known-answered").await;
    let calls: Vec<Value> =
        received.iter().filter(|request| request.path == "/mango/events/call").map(Received::json).collect();
    let ivr: Vec<&Value> = calls.iter().filter(|event| event["location"] == "ivr").collect();
    let phone: Vec<&Value> = calls.iter().filter(|event| event["location"] == "abonent").collect();

    assert_eq!(ivr.iter().map(|event| event["seq"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(phone.iter().map(|event| event["seq"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 2, 3]);
    assert_ne!(ivr[0]["call_id"], phone[0]["call_id"], "each leg has its own call_id");
    assert!(phone.iter().all(|event| event["call_id"] == phone[0]["call_id"]));
    assert_eq!(phone[0]["from"]["number"], KNOWN_CLIENT);
    assert_eq!(phone[0]["to"]["extension"], "101");
    assert_eq!(phone[0]["to"]["line_number"], SANDBOX_DID);
    assert_eq!(ivr[0]["to"]["line_number"], SANDBOX_DID);
    assert_eq!(phone[2]["disconnect_reason"], 1110, "the caller hung up");
    assert!(phone[0].get("disconnect_reason").is_none(), "only Disconnected says why");
    assert!(phone.iter().all(|event| event["timestamp"].is_u64()));
}

#[tokio::test]
async fn the_summary_gives_direction_line_and_times_with_talk_time_as_the_moment_of_answer() {
    let received = play_mango("incoming-known-answered").await;
    let summary = received.iter().find(|request| request.path == "/mango/events/summary").unwrap().json();

    assert_eq!(summary["call_direction"], 1);
    assert_eq!(summary["line_number"], SANDBOX_DID);
    assert_eq!(summary["from"]["number"], KNOWN_CLIENT);
    assert_eq!(summary["to"]["extension"], "101");
    assert_eq!(summary["entry_result"], 1);
    let time = |name: &str| summary[name].as_u64().unwrap();
    assert_eq!(time("forward_time") - time("create_time"), 5, "5 s in the IVR");
    assert_eq!(time("talk_time") - time("forward_time"), 12, "12 s of ringing");
    assert_eq!(time("end_time") - time("talk_time"), 95, "talk seconds = end_time − talk_time");
}

#[tokio::test]
async fn missed_and_outgoing_summaries_use_their_direction_and_result() {
    let missed = play_mango("incoming-unknown-missed").await;
    let summary = missed.iter().find(|request| request.path == "/mango/events/summary").unwrap().json();
    assert_eq!(summary["entry_result"], 0);
    assert_eq!(summary["talk_time"], 0);
    assert_eq!(summary["disconnect_reason"], 1110);

    let busy = play_mango("outgoing-unknown-unanswered").await;
    let summary = busy.iter().find(|request| request.path == "/mango/events/summary").unwrap().json();
    assert_eq!(summary["call_direction"], 2);
    assert_eq!(summary["from"]["extension"], "101");
    assert_eq!(summary["to"]["number"], "79035550110");
    assert_eq!(summary["disconnect_reason"], 1121, "busy");

    let no_answer = play_mango("outgoing-known-unanswered").await;
    let summary = no_answer.iter().find(|request| request.path == "/mango/events/summary").unwrap().json();
    assert_eq!(summary["disconnect_reason"], 1111, "no answer in time");
}

#[tokio::test]
async fn record_added_names_the_entry_and_the_recording() {
    let received = play_mango("outgoing-known-answered").await;
    let record = received.last().unwrap();

    assert_eq!(record.path, "/mango/events/record/added");
    let event = record.json();
    assert_eq!(event["entry_id"], received[0].json()["entry_id"]);
    for field in ["recording_id", "user_id", "product_id", "timestamp"] {
        assert!(event.get(field).is_some(), "{field} in {event}");
    }
}

#[tokio::test]
async fn the_check_connection_request_is_empty_and_needs_a_200() {
    let options = PlayOptions { check_connection: true, ..PlayOptions::default() };
    let (received, report) = play_with(ProviderKind::Mango, &scenario("outgoing-known-unanswered"), &options).await;

    assert_eq!(received[0].body, "");
    assert_eq!(received[0].path, "/hook");
    assert!(report.connection_check.unwrap().passed);
    assert_eq!(received[1].path, "/hook/events/call");
}
