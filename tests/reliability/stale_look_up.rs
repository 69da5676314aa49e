//! A lead retried between its look-up and its first create must not act on a look-up that is no longer true.

use std::time::Duration;

use amocrm_emulator::Latency;

use crate::audit::CrmAudit;
use crate::helpers::{Setup, history_kinds, lead, poll_until, spawn_app_with};

const PHONE: &str = "+79998000001";

#[tokio::test]
async fn a_lead_whose_contact_create_failed_while_a_sibling_settled_the_phone_makes_no_second_deal() {
    // Long enough for the sibling to run start to finish while the first lead waits for its retry.
    let app = spawn_app_with(Setup { retry_initial: Duration::from_secs(2), ..Setup::default() }).await;
    // The contact create of the first lead outlives the connector's timeout: a retryable failure
    // after the look-up "new client" was journaled, and nothing is created.
    app.crm.emulator.set_latency(Some(Latency {
        delay: Duration::from_secs(30),
        path_prefix: Some("/api/v4/contacts".to_owned()),
        method: Some("POST".to_owned()),
    }));
    let first = app.accept(lead("Первая", PHONE)).await;
    let rescheduled = poll_until(Duration::from_secs(15), || async {
        history_kinds(&app.get_lead(first).await).contains(&"retry_scheduled".to_owned())
    })
    .await;
    assert!(rescheduled, "{:#}", app.get_lead(first).await);

    app.crm.emulator.set_latency(None);
    let sibling = app.accept(lead("Вторая", PHONE)).await;
    let sibling = app.wait_for(sibling, &["approved", "rejected", "dead"]).await;
    let first = app.wait_for(first, &["approved", "rejected", "dead"]).await;

    let audit = CrmAudit::of(&app.crm.emulator);
    assert_eq!(
        (audit.duplicate_contacts(), audit.duplicate_deals()),
        (0, 0),
        "first: {:#}\nsibling: {:#}",
        first["outcome"],
        sibling["outcome"]
    );
    audit.assert_one_client_per_phone(&[PHONE.to_owned()].into());
    audit.assert_one_approval_per_phone([&first, &sibling]);
    app.stop().await;
}
