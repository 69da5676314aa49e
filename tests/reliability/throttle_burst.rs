//! One burst of 429 answers is one throttling episode: the CRM gets a short pause, not the longest one.

use std::time::Duration;

use amocrm_emulator::{Fault, FaultLimit, Latency};

use crate::audit::{CrmAudit, retry_delays};
use crate::helpers::{Setup, history_kinds, lead, poll_until, spawn_app_with};

const LEADS: usize = 20;
/// Long enough for every lead's look-up to be on its way before the first answer comes back.
const LOOK_UP_LATENCY: Duration = Duration::from_millis(500);
/// The first pause after a 429 is 1 s; one doubling is allowed for a burst that straddles it.
const LONGEST_PAUSE_FOR_ONE_BURST: Duration = Duration::from_secs(2);

#[tokio::test]
async fn one_burst_of_429_answers_pauses_the_crm_for_about_a_second_not_a_minute() {
    let app = spawn_app_with(Setup { emulator_rate: 300, gateway_rate: 100, ..Setup::default() }).await;
    let emulator = &app.crm.emulator;
    // Every look-up is held, then all of them are answered 429 together: answers to requests that
    // were sent before the CRM's first complaint could be heard.
    emulator.set_latency(Some(Latency {
        delay: LOOK_UP_LATENCY,
        path_prefix: Some("/api/v4/contacts".to_owned()),
        method: Some("GET".to_owned()),
    }));
    let mut burst = Fault::new(429, FaultLimit::Count(LEADS as u32));
    burst.path_prefix = Some("/api/v4/contacts".to_owned());
    emulator.inject_fault(burst);
    let mut ids = Vec::new();
    for n in 0..LEADS {
        ids.push(app.accept(lead("Клиент", &format!("+7999820{n:04}"))).await);
    }
    let refused = || async { emulator.requests().iter().filter(|request| request.status == 429).count() == LEADS };
    assert!(poll_until(Duration::from_secs(10), refused).await, "{:?}", emulator.requests());
    emulator.set_latency(None);
    let all_rescheduled = poll_until(Duration::from_secs(10), || async {
        let mut rescheduled = true;
        for id in &ids {
            rescheduled &= history_kinds(&app.get_lead(*id).await).contains(&"retry_scheduled".to_owned());
        }
        rescheduled
    })
    .await;
    assert!(all_rescheduled);

    let mut pauses = Vec::new();
    for id in &ids {
        pauses.extend(retry_delays(&app.get_lead(*id).await, false));
    }
    let longest = pauses.iter().max().copied().unwrap_or_default();
    assert!(longest <= LONGEST_PAUSE_FOR_ONE_BURST, "one burst of {LEADS} 429s paused leads for {pauses:?}");
    let mut leads = Vec::new();
    for id in &ids {
        leads.push(app.wait_for(*id, &["approved", "rejected", "dead"]).await);
    }
    CrmAudit::of(emulator).assert_one_approval_per_phone(&leads);
    app.stop().await;
}
