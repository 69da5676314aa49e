//! The CRM answers 503 while leads arrive, then recovers: every lead settles once, after backoff, within the budget.

use std::time::Duration;

use amocrm_emulator::{Fault, FaultLimit};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::Value;
use tokio::time::Instant;

use crate::audit::{CrmAudit, retry_delays};
use crate::helpers::{Setup, spawn_app_with};
use crate::lead_plan::LeadPlan;

const LEADS: usize = 100;
const OUTAGE: Duration = Duration::from_secs(5);
const GATEWAY_RATE: u32 = 100;
/// `spawn_app_with` caps the lead retry delay at this.
const RETRY_MAX: Duration = Duration::from_secs(2);

#[tokio::test]
async fn a_crm_outage_under_load_delays_leads_with_growing_backoff_and_loses_or_duplicates_nothing() {
    let app = spawn_app_with(Setup { emulator_rate: 300, gateway_rate: GATEWAY_RATE, ..Setup::default() }).await;
    let plan = LeadPlan::new(LEADS, "outage", 5_000_000, &mut StdRng::seed_from_u64(rand::random()));
    let started = Instant::now();

    app.crm.emulator.inject_fault(Fault::new(503, FaultLimit::For(OUTAGE)));
    // The leads arrive over the first two thirds of the outage, so some fail many times and some few.
    let mut pace = tokio::time::interval(OUTAGE * 2 / 3 / LEADS as u32);
    let mut ids = Vec::new();
    for planned in &plan.leads {
        pace.tick().await;
        ids.push(app.accept(planned.body(None)).await);
    }
    let mut leads = Vec::new();
    for id in &ids {
        leads.push(app.wait_for(*id, &["approved", "rejected", "dead"]).await);
    }
    let settled_after = started.elapsed();

    let audit = CrmAudit::of(&app.crm.emulator);
    let traffic = app.crm.emulator.traffic_stats();
    let refused = app.crm.emulator.requests().iter().filter(|request| request.status == 503).count();
    let delays: Vec<Vec<Duration>> = leads.iter().map(|lead| retry_delays(lead, true)).collect();
    let most_retried = delays.iter().max_by_key(|delays| delays.len()).cloned().unwrap_or_default();
    let dead: Vec<&Value> = leads.iter().filter(|lead| lead["status"] == "dead").collect();
    println!(
        "outage: leads {LEADS}, CRM down {OUTAGE:?} ({refused} requests answered 503), all settled after {:.1}s, \
         dead {}, duplicate contacts {}, duplicate deals {}, most retries of one lead {} with delays {most_retried:?}, \
         max requests in any second {} (budget {GATEWAY_RATE})",
        settled_after.as_secs_f64(),
        dead.len(),
        audit.duplicate_contacts(),
        audit.duplicate_deals(),
        most_retried.len(),
        traffic.max_requests_in_any_second,
    );

    assert!(dead.is_empty(), "a lead died of the outage: {:#}", dead[0]);
    audit.assert_one_client_per_phone(&plan.distinct_phones());
    audit.assert_one_approval_per_phone(&leads);
    assert!(traffic.max_requests_in_any_second <= u64::from(GATEWAY_RATE), "{traffic:?}");
    assert!(most_retried.len() >= 3, "the outage should have failed some lead at least three times");
    for (lead, delays) in leads.iter().zip(&delays) {
        assert_backoff_grows(lead, delays);
    }
    app.stop().await;
}

/// Each delay doubles the one before, within ±20 % jitter, until it reaches `RETRY_MAX`: so every delay
/// that is clearly below the cap is followed by a longer one.
fn assert_backoff_grows(lead: &Value, delays: &[Duration]) {
    for pair in delays.windows(2) {
        if pair[0] < RETRY_MAX.mul_f64(0.8) {
            assert!(pair[1] > pair[0], "lead {}: delays {delays:?} do not grow", lead["id"]);
        }
    }
}
