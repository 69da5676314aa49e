//! The seed's ten call scenarios, as each PBX sends them, through the real binary into the amoCRM
//! emulator: the note on the right contact with the pinned params, auto-contacts and auto-deals,
//! parked calls that attach or are dropped; and resends and reordering that change nothing.

use std::time::Duration;

use amocrm_emulator::SeedContact;
use leadgate::domain::{LeadStatus, SourceId};
use leadgate::store::Store;
use pbx_emulator::{PlayOptions, Provider, ProviderKind, Reorder, Scenario, render};
use serde_json::{Value, json};

use crate::conformance::{open_store, settled};
use crate::helpers::{PIPELINE, STAGE, TestProcess, poll_until, spawn_emulator};

const TELPHIN_KEY: &str = "telphin-url-secret-0123456789";
/// amoCRM emulator's users: who 101 is, who takes missed calls, who owns seeded contacts.
const ANNA: u64 = 6_000_002;
const IVAN: u64 = 6_000_003;
const ADMIN: u64 = 6_000_001;
const OUR_NUMBER: &str = "+74951234567";
const ADMIN_TOKEN: &str = "admin-token-for-calls-0123";

/// Two sources on one PBX: `auto` makes contacts (and deals) for unknown numbers, `quiet` makes
/// nothing and lets calls wait for a contact.
fn config(crm_url: &str, kind: ProviderKind) -> String {
    let access = match kind {
        ProviderKind::Telphin => format!("provider = \"telphin\"\nkey = \"{TELPHIN_KEY}\"\n"),
        ProviderKind::Zadarma => {
            "provider = \"zadarma\"\nsecret = \"sandbox-zadarma-secret\"\ntimezone = \"Europe/Moscow\"\n".to_owned()
        }
        ProviderKind::Mango => {
            "provider = \"mango\"\napi_key = \"sandbox-mango-key\"\napi_salt = \"sandbox-mango-salt\"\n".to_owned()
        }
    };
    let source = |name: &str, unknown: &str, missed: &str| {
        format!(
            "[sources.{name}]\nkind = \"telephony\"\n{access}destination = \"main\"\npipeline = \"{PIPELINE}\"\n\
             status = \"{STAGE}\"\nusers = {{ \"101\" = \"Анна Смирнова\" }}\nmissed_calls_user = {IVAN}\n\
             incoming_unknown = \"{unknown}\"\nmissed_unknown = \"{missed}\"\noutgoing_unknown = \"{unknown}\"\n\
             finish_after = \"1s\"\nattach_window = \"12s\"\n"
        )
    };
    format!(
        "[admin]\ntoken = \"{ADMIN_TOKEN}\"\n\
         [worker]\ninterval = \"100ms\"\nlease = \"2s\"\nretry_initial = \"200ms\"\nretry_max = \"1s\"\n\
         [destinations.main]\nkind = \"amocrm\"\nbase_url = \"{crm_url}\"\naccess_token = \"sandbox-long-lived-token\"\n\
         requests_per_second = 100\n{}{}",
        source("auto", "contact_and_deal", "contact"),
        source("quiet", "none", "none"),
    ) + &format!(
        "{}[[sources.ruled.numbers]]\nnumber = \"8 (495) 123-45-67\"\nname = \"Реклама\"\n\
         incoming_unknown = \"contact_and_deal\"\npipeline = \"Воронка\"\nstatus = \"Переговоры\"\n",
        source("ruled", "none", "none")
    )
}

fn target(base: &str, source: &str, kind: ProviderKind) -> url::Url {
    let url = match kind {
        ProviderKind::Telphin => format!("{base}/telephony/{source}/{TELPHIN_KEY}"),
        ProviderKind::Zadarma | ProviderKind::Mango => format!("{base}/telephony/{source}"),
    };
    url.parse().unwrap()
}

struct Run {
    crm: amocrm_emulator::RunningEmulator,
    _gateway: TestProcess,
    _dir: tempfile::TempDir,
    store: Store,
    base: String,
    kind: ProviderKind,
    known_contact: u64,
}

impl Run {
    async fn start(kind: ProviderKind) -> Self {
        let crm = spawn_emulator(200).await;
        let seed = SeedContact {
            name: "Известный клиент".to_owned(),
            phones: vec![format!("+{}", pbx_emulator::KNOWN_CLIENT)],
            emails: Vec::new(),
            leads: Vec::new(),
        };
        let known_contact = crm.emulator.seed_contact(&seed).unwrap().contact_id;
        let dir = tempfile::tempdir().unwrap();
        let gateway = TestProcess::serve(dir.path(), &config(&crm.base_url(), kind)).await;
        let store = open_store(dir.path()).await;
        let base = format!("http://{}", gateway.address);
        Self { crm, _gateway: gateway, _dir: dir, store, base, kind, known_contact }
    }

    /// Plays `scenario` to `source` (perturbed by `change`); returns the call's id once all its
    /// events were acknowledged.
    async fn play(
        &self,
        scenario: &str,
        source: &str,
        change: impl Fn(pbx_emulator::CallScript) -> pbx_emulator::CallScript,
    ) -> String {
        self.play_script(change(Scenario::find(scenario).unwrap().script()), scenario, source).await
    }

    /// Plays any script; `name` only names it in failures.
    async fn play_script(&self, script: pbx_emulator::CallScript, name: &str, source: &str) -> String {
        let scenario = name;
        let rendered = render(&script, &Provider::sandbox(self.kind)).unwrap();
        let report = pbx_emulator::deliver(&rendered, &target(&self.base, source, self.kind), &PlayOptions::default())
            .await
            .unwrap();
        assert!(report.all_accepted(), "{scenario}: {report:?}");
        rendered.call_id
    }

    /// The lead the call became, once settled with one of `statuses`.
    async fn settled(&self, source: &str, call_id: &str, statuses: &[LeadStatus]) -> leadgate::domain::Lead {
        let source = SourceId(source.to_owned());
        let made = || async { self.store.lead_of_call(&source, call_id).await.unwrap().is_some() };
        assert!(poll_until(Duration::from_secs(20), made).await, "call {call_id} became no lead");
        let id = self.store.lead_of_call(&source, call_id).await.unwrap().unwrap();
        settled(&self.store, id.0, statuses).await
    }

    fn call_notes(&self, uniq: &str) -> Vec<amocrm_emulator::NoteSummary> {
        self.crm.emulator.notes().into_iter().filter(|note| note.params["uniq"] == uniq).collect()
    }

    fn contact_with(&self, phone: &str) -> Vec<amocrm_emulator::ContactSummary> {
        self.crm.emulator.contacts().into_iter().filter(|contact| contact.phones.iter().any(|p| p == phone)).collect()
    }
}

fn params(note: &amocrm_emulator::NoteSummary) -> Value {
    note.params.clone()
}

/// The ten scenarios of the seed, for one provider.
async fn the_seed_s_ten_scenarios(kind: ProviderKind) {
    let run = Run::start(kind).await;
    let known = format!("+{}", pbx_emulator::KNOWN_CLIENT);
    let same = |script| script;

    // 1. incoming, known, answered → call_in on the client's card, who answered, the talk time.
    let call = run.play("incoming-known-answered", "auto", same).await;
    let lead = run.settled("auto", &call, &[LeadStatus::Approved]).await;
    assert_eq!(lead.outcome.unwrap().decision.as_str(), "call_logged");
    let notes = run.call_notes(&call);
    assert_eq!(notes.len(), 1, "1: {notes:?}");
    assert_eq!((notes[0].note_type.as_str(), notes[0].entity_type.as_str()), ("call_in", "contacts"));
    assert_eq!(notes[0].entity_id, run.known_contact);
    assert_eq!(notes[0].responsible_user_id, ANNA);
    let expected = json!({ "uniq": call, "phone": known, "duration": 95, "source": "leadgate", "call_status": 4, "call_responsible": ANNA });
    for (key, value) in expected.as_object().unwrap() {
        assert_eq!(&params(&notes[0])[key], value, "1: {key} in {}", params(&notes[0]));
    }

    // 2. incoming, unknown, answered, contact_and_deal → auto-contact, deal, the call on it.
    let call = run.play("incoming-unknown-answered", "auto", same).await;
    let lead = run.settled("auto", &call, &[LeadStatus::Approved]).await;
    assert_eq!(lead.outcome.unwrap().decision.as_str(), "call_auto_contact");
    let contacts = run.contact_with("+79035550102");
    assert_eq!(contacts.len(), 1, "2: {contacts:?}");
    assert_eq!(contacts[0].name, "Автоконтакт: Входящий");
    assert_eq!(contacts[0].responsible_user_id, ANNA);
    assert_eq!(contacts[0].tags, [OUR_NUMBER]);
    let deals: Vec<_> =
        run.crm.emulator.leads().into_iter().filter(|deal| deal.contact_ids == [contacts[0].id]).collect();
    assert_eq!(deals.len(), 1, "2: {deals:?}");
    assert_eq!(
        (deals[0].name.as_str(), deals[0].pipeline.as_str(), deals[0].status.as_str()),
        ("Входящий +79035550102", PIPELINE, STAGE)
    );
    assert_eq!(run.call_notes(&call)[0].entity_id, contacts[0].id);

    // 3. incoming, unknown, answered, none → parked; a manager makes the contact in time → attached.
    let call = run.play("incoming-unknown-answered-no-autocontact", "quiet", same).await;
    let source = SourceId("quiet".to_owned());
    // The contact appears only once the call waits for it: found earlier, it would simply be logged.
    let parked = || async {
        let Some(id) = run.store.lead_of_call(&source, &call).await.unwrap() else { return false };
        run.store.history(id).await.unwrap().iter().any(|event| event.kind == "call_parked")
    };
    assert!(poll_until(Duration::from_secs(10), parked).await, "3: the call waits for a contact");
    let seed = SeedContact {
        name: "Клиент от менеджера".into(),
        phones: vec!["+79035550103".into()],
        emails: vec![],
        leads: vec![],
    };
    let made_by_hand = run.crm.emulator.seed_contact(&seed).unwrap().contact_id;
    let lead = run.settled("quiet", &call, &[LeadStatus::Approved, LeadStatus::Skipped]).await;
    assert_eq!(lead.outcome.unwrap().decision.as_str(), "call_attached");
    assert_eq!(run.call_notes(&call)[0].entity_id, made_by_hand);
    assert_eq!(run.contact_with("+79035550103").len(), 1, "3: nothing made by the gateway");

    // 4. incoming, known, missed → the call on the card, "to" the client's responsible, the wait.
    let call = run.play("incoming-known-missed", "auto", same).await;
    run.settled("auto", &call, &[LeadStatus::Approved]).await;
    let note = &run.call_notes(&call)[0];
    assert_eq!((note.entity_id, note.responsible_user_id), (run.known_contact, ADMIN));
    assert_eq!(
        (params(note)["call_status"].clone(), params(note)["call_responsible"].clone()),
        (json!(6), json!(ADMIN))
    );
    assert!(params(note)["duration"].as_u64().unwrap() >= 25, "4: the waiting time: {}", params(note));

    // 5. incoming, unknown, missed, missed_unknown = contact → «…Входящий-пропущенный», missed_calls_user.
    let call = run.play("incoming-unknown-missed", "auto", same).await;
    run.settled("auto", &call, &[LeadStatus::Approved]).await;
    let contact = &run.contact_with("+79035550105")[0];
    assert_eq!((contact.name.as_str(), contact.responsible_user_id), ("Автоконтакт: Входящий-пропущенный", IVAN));
    assert_eq!(contact.tags, [OUR_NUMBER]);
    assert_eq!(run.call_notes(&call)[0].entity_id, contact.id);

    // 6. outgoing, known, answered → call_out on the card.
    let call = run.play("outgoing-known-answered", "auto", same).await;
    run.settled("auto", &call, &[LeadStatus::Approved]).await;
    let note = &run.call_notes(&call)[0];
    assert_eq!(
        (note.note_type.as_str(), note.entity_id, note.responsible_user_id),
        ("call_out", run.known_contact, ANNA)
    );
    assert_eq!((params(note)["duration"].clone(), params(note)["call_status"].clone()), (json!(140), json!(4)));

    // 7. outgoing, unknown, answered, contact_and_deal → «Автоконтакт: Исходящий» and «Исходящий +7…».
    let call = run.play("outgoing-unknown-answered", "auto", same).await;
    run.settled("auto", &call, &[LeadStatus::Approved]).await;
    let contact = &run.contact_with("+79035550107")[0];
    assert_eq!((contact.name.as_str(), contact.responsible_user_id), ("Автоконтакт: Исходящий", ANNA));
    let deals: Vec<_> = run.crm.emulator.leads().into_iter().filter(|deal| deal.contact_ids == [contact.id]).collect();
    assert_eq!(deals.iter().map(|deal| deal.name.as_str()).collect::<Vec<_>>(), ["Исходящий +79035550107"]);

    // 8. outgoing, unknown, answered, none → parked, and dropped when nobody makes the contact.
    let call = run.play("outgoing-unknown-answered-no-autocontact", "quiet", same).await;
    let lead = run.settled("quiet", &call, &[LeadStatus::Skipped]).await;
    assert_eq!(lead.outcome.unwrap().decision.as_str(), "call_dropped");
    assert!(run.contact_with("+79035550108").is_empty() && run.call_notes(&call).is_empty());
    let history = run.store.history(lead.id).await.unwrap();
    assert!(history.iter().any(|event| event.kind == "call_dropped"), "8: {history:?}");

    // 9. outgoing, known, not answered → the call on the card, "not reached".
    let call = run.play("outgoing-known-unanswered", "auto", same).await;
    run.settled("auto", &call, &[LeadStatus::Approved]).await;
    let note = &run.call_notes(&call)[0];
    assert_eq!((note.entity_id, params(note)["call_status"].clone()), (run.known_contact, json!(6)));

    // 10. outgoing, unknown, not answered (busy) → a contact, never a deal.
    let call = run.play("outgoing-unknown-unanswered", "auto", same).await;
    run.settled("auto", &call, &[LeadStatus::Approved]).await;
    let contact = &run.contact_with("+79035550110")[0];
    assert_eq!(contact.name, "Автоконтакт: Исходящий");
    assert!(run.crm.emulator.leads().iter().all(|deal| !deal.contact_ids.contains(&contact.id)), "10: no deal");
    assert_eq!(params(&run.call_notes(&call)[0])["call_status"], json!(7));

    // Resent and reordered events make one call, one contact, one note.
    let call = run
        .play("incoming-unknown-answered", "auto", |script| {
            script.resend_every_event().reorder(Reorder::HangupBeforeAnswer)
        })
        .await;
    run.settled("auto", &call, &[LeadStatus::Approved]).await;
    assert_eq!(run.call_notes(&call).len(), 1, "one note for a resent call");
    assert_eq!(run.contact_with("+79035550102").len(), 1, "no second auto-contact");
}

#[tokio::test]
async fn telphin_calls_reach_amocrm_as_the_seed_describes() {
    the_seed_s_ten_scenarios(ProviderKind::Telphin).await;
}

#[tokio::test]
async fn zadarma_calls_reach_amocrm_as_the_seed_describes() {
    the_seed_s_ten_scenarios(ProviderKind::Zadarma).await;
}

#[tokio::test]
async fn mango_calls_reach_amocrm_as_the_seed_describes() {
    the_seed_s_ten_scenarios(ProviderKind::Mango).await;
}

/// What is not the PBX's is refused before anything is stored; the URL checks pass.
#[tokio::test]
async fn events_that_are_not_the_pbx_s_are_refused_and_its_url_checks_pass() {
    let http = reqwest::Client::new();
    let telphin = Run::start(ProviderKind::Telphin).await;
    let forged = http
        .post(format!("{}/telephony/auto/not-the-key-0123456789", telphin.base))
        .form(&[("EventType", "dial-in"), ("CallID", "forged"), ("CallerIDNum", "79990000000")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    let missing = http
        .post(format!("{}/telephony/auto/{TELPHIN_KEY}", telphin.base))
        .form(&[("EventType", "hangup")])
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
    let said = missing.text().await.unwrap();
    assert!(said.contains("the field CallStatus is missing"), "the missing field is named: {said}");
    assert_eq!(
        http.post(format!("{}/telephony/nosuch/{TELPHIN_KEY}", telphin.base)).send().await.unwrap().status(),
        404
    );
    assert!(telphin.store.call_events(&SourceId("auto".into()), "forged").await.unwrap().is_empty());

    let zadarma = Run::start(ProviderKind::Zadarma).await;
    let echo = http.get(format!("{}/telephony/auto?zd_echo=a1b2c3", zadarma.base)).send().await.unwrap();
    assert_eq!(echo.status(), 200);
    assert_eq!(echo.text().await.unwrap(), "a1b2c3");
    let unsigned = http
        .post(format!("{}/telephony/auto", zadarma.base))
        .header("Signature", "Zm9yZ2Vk")
        .form(&[
            ("event", "NOTIFY_START"),
            ("call_start", "2026-11-28 12:00:00"),
            ("pbx_call_id", "in_1"),
            ("caller_id", "79990000000"),
            ("called_did", "74951234567"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);

    let mango = Run::start(ProviderKind::Mango).await;
    let check = http.post(format!("{}/telephony/auto", mango.base)).send().await.unwrap();
    assert_eq!(check.status(), 200, "Mango's connection check is answered");
    let wrong_sign = http
        .post(format!("{}/telephony/auto/events/call", mango.base))
        .form(&[("vpbx_api_key", "sandbox-mango-key"), ("sign", "00"), ("json", "{}")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_sign.status(), 401);
}

/// An operator reads a call with its events, and a client's calls by a number in any spelling.
#[tokio::test]
async fn an_operator_reads_a_call_with_its_events_and_a_client_s_calls_by_phone() {
    let run = Run::start(ProviderKind::Telphin).await;
    let call = run.play("incoming-known-answered", "auto", |script| script).await;
    let lead = run.settled("auto", &call, &[LeadStatus::Approved]).await;
    let http = reqwest::Client::new();

    let shown: Value = http
        .get(format!("{}/api/v1/calls/{}", run.base, lead.id))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["call"]["call_id"], call.as_str());
    assert_eq!(shown["outcome"]["decision"], "call_logged");
    assert!(shown["events"].as_array().unwrap().len() >= 4, "{shown}");
    assert!(shown["history"].as_array().unwrap().iter().any(|event| event["kind"] == "crm_call"), "{shown}");

    let listed: Value = http
        .get(format!("{}/api/v1/calls?phone=8%20(916)%20123-45-67", run.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["phone"], "+79161234567");
    assert_eq!(listed["calls"][0]["id"], lead.id.0);
    // The same list without the number in the URL.
    let search =
        |body: Value| http.post(format!("{}/api/v1/calls/search", run.base)).bearer_auth(ADMIN_TOKEN).json(&body);
    let searched: Value = search(json!({"phone": "+7 916 123 45 67"})).send().await.unwrap().json().await.unwrap();
    assert_eq!(searched, listed);
    let refused = search(json!({"phone": 79161234567_i64})).send().await.unwrap();
    assert_eq!(refused.status(), 400);
    let message = refused.text().await.unwrap();
    assert!(message.contains("phone") && !message.contains("9161234567"), "the number is not echoed: {message}");
    let not_a_number = search(json!({"phone": "позвоните мне"})).send().await.unwrap();
    assert_eq!(not_a_number.status(), 400);
    let anonymous = http.get(format!("{}/api/v1/calls/{}", run.base, lead.id)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let anonymous = http.post(format!("{}/api/v1/calls/search", run.base)).json(&json!({"phone": "+79161234567"}));
    assert_eq!(anonymous.send().await.unwrap().status(), 401);
}

/// A rule of the number the client called overrides the source's options: the source makes
/// nothing for unknown numbers, the rule of our advertised number makes a contact and a deal in
/// its own pipeline and stage.
#[tokio::test]
async fn a_rule_of_the_called_number_overrides_the_source_s_options() {
    let run = Run::start(ProviderKind::Telphin).await;

    let call = run.play("incoming-unknown-answered", "ruled", |script| script).await;
    let lead = run.settled("ruled", &call, &[LeadStatus::Approved]).await;

    assert_eq!(lead.outcome.unwrap().decision.as_str(), "call_auto_contact");
    let contact = &run.contact_with("+79035550102")[0];
    let deals: Vec<_> = run.crm.emulator.leads().into_iter().filter(|deal| deal.contact_ids == [contact.id]).collect();
    assert_eq!(deals.len(), 1, "{deals:?}");
    assert_eq!((deals[0].pipeline.as_str(), deals[0].status.as_str()), ("Воронка", "Переговоры"));
}

/// Calls between two extensions, and calls only unmapped extensions took part in, are set aside:
/// no lead, nothing in the CRM.
#[tokio::test]
async fn internal_calls_and_calls_of_unmapped_extensions_are_ignored() {
    let run = Run::start(ProviderKind::Telphin).await;
    let internal = run.play("internal-call", "auto", |script| script).await;
    let stranger = pbx_emulator::CallScript::incoming_answered("79035550199", pbx_emulator::SANDBOX_DID, "103", 60);
    let unmapped = run.play_script(stranger, "unmapped", "auto").await;

    let source = SourceId("auto".to_owned());
    for call in [&internal, &unmapped] {
        assert!(!run.store.call_events(&source, call).await.unwrap().is_empty(), "call {call} was kept");
        let closed = || async { !run.store.open_calls(100).await.unwrap().iter().any(|open| &open.call_id == call) };
        assert!(poll_until(Duration::from_secs(10), closed).await, "call {call} stayed open");
        assert_eq!(run.store.lead_of_call(&source, call).await.unwrap(), None, "call {call} became a lead");
        assert!(run.call_notes(call).is_empty());
    }
    assert!(run.contact_with("+79035550199").is_empty());
}

/// A gateway killed after it made a caller's auto-contact, before the call's note: the restarted
/// one logs the call on that contact, once, with no second contact.
#[tokio::test]
async fn a_gateway_killed_between_the_auto_contact_and_the_note_makes_neither_twice() {
    let crm = spawn_emulator(200).await;
    crm.emulator.set_latency(Some(amocrm_emulator::Latency {
        delay: Duration::from_secs(30),
        path_prefix: Some("/api/v4/contacts/notes".to_owned()),
        method: Some("POST".to_owned()),
    }));
    let dir = tempfile::tempdir().unwrap();
    let config = config(&crm.base_url(), ProviderKind::Telphin);
    let first = TestProcess::serve(dir.path(), &config).await;
    let script = Scenario::find("incoming-unknown-answered").unwrap().script();
    let rendered = render(&script, &Provider::sandbox(ProviderKind::Telphin)).unwrap();
    let target = target(&format!("http://{}", first.address), "auto", ProviderKind::Telphin);
    let report = pbx_emulator::deliver(&rendered, &target, &PlayOptions::default()).await.unwrap();
    assert!(report.all_accepted());
    let contact_made = || async { crm.emulator.contacts_count() == 1 && crm.emulator.leads_count() == 1 };
    assert!(poll_until(Duration::from_secs(10), contact_made).await, "the auto-contact and deal were made");
    first.kill();

    crm.emulator.set_latency(None);
    let second = TestProcess::serve(dir.path(), &config).await;
    let store = open_store(dir.path()).await;
    let source = SourceId("auto".to_owned());
    let id = store.lead_of_call(&source, &rendered.call_id).await.unwrap().expect("the call became a lead");
    settled(&store, id.0, &[LeadStatus::Approved]).await;

    assert_eq!(crm.emulator.contacts_count(), 1, "no second auto-contact");
    assert_eq!(crm.emulator.leads_count(), 1, "no second deal");
    let notes: Vec<_> =
        crm.emulator.notes().into_iter().filter(|note| note.params["uniq"] == rendered.call_id.as_str()).collect();
    assert_eq!(notes.len(), 1, "one note: {notes:?}");
    drop(second);
}

/// A transferred call is one call: one lead, one note.
#[tokio::test]
async fn a_transferred_call_is_logged_once() {
    let run = Run::start(ProviderKind::Telphin).await;
    let call = run.play("incoming-transfer-to-extension", "auto", |script| script).await;
    run.settled("auto", &call, &[LeadStatus::Approved]).await;
    assert_eq!(run.call_notes(&call).len(), 1);
}
