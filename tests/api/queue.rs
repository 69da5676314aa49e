//! The queue's contract, driven claim by claim on a store of its own: one lead per client in flight,
//! take-overs first, started leads keep their client, due order, the outbox claim, and an upgrade
//! of a queue written before the client index existed.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use leadgate::config::{Durability, StoreConfig};
use leadgate::domain::{
    CrmRef, DealSpec, Decision, Entity, EntityKind, LeadId, NewLead, Outcome, Phone, Routing, SourceId,
};
use leadgate::store::{AttemptCount, Claim, FeedbackKind, OwedFeedback, Store, StoreError};
use serde_json::json;

use crate::helpers::{on_postgres, store_url};

const LEASE: Duration = Duration::from_secs(60);
/// A lease that has run out as soon as it is given: the next claim takes the lead over.
const EXPIRED: Duration = Duration::ZERO;

struct Queue {
    store: Store,
    _dir: tempfile::TempDir,
}

async fn fresh_queue() -> Queue {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig { url: store_url(dir.path()), durability: Durability::ProcessCrash, max_connections: 8 };
    Queue { store: Store::open(&config).await.unwrap(), _dir: dir }
}

/// A partner lead for `phone` as intake would store it, for tests that drive the store directly.
pub fn new_lead(phone: &str) -> NewLead {
    NewLead {
        source: SourceId("trendagent".to_owned()),
        external_id: None,
        name: "Очередь".to_owned(),
        phone: Phone::parse(phone, Default::default()).unwrap(),
        email: None,
        comment: None,
        callback_url: None,
        payload: json!({ "phone": phone }),
        routing: Routing::default(),
        origin_time: None,
        deal: DealSpec::default(),
        skip_sending: false,
        duplicate_check: None,
        call: None,
    }
}

fn approved() -> Outcome {
    let made = |kind, id: &str| Entity { record: CrmRef::new(kind, id), made: true, url: None };
    Outcome {
        decision: Decision::NewClient,
        entities: vec![made(EntityKind::Contact, "1"), made(EntityKind::Deal, "2")],
    }
}

impl Queue {
    /// Commits one lead per phone, in order, in one batch; returns their ids.
    async fn accept(&self, phones: &[&str]) -> Vec<LeadId> {
        let leads: Vec<NewLead> = phones.iter().map(|phone| new_lead(phone)).collect();
        self.store.insert_leads(&leads).await.unwrap().into_iter().map(|inserted| inserted.id()).collect()
    }

    async fn claim(&self, limit: usize, lease: Duration) -> Vec<Claim> {
        self.store.claim_due(limit, lease).await.unwrap()
    }

    async fn claim_ids(&self, limit: usize) -> BTreeSet<LeadId> {
        self.claim(limit, LEASE).await.iter().map(|claim| claim.lead.id).collect()
    }
}

fn ids(claims: &[Claim]) -> BTreeSet<LeadId> {
    claims.iter().map(|claim| claim.lead.id).collect()
}

#[tokio::test]
async fn concurrent_claims_take_one_lead_per_client_the_earliest_and_never_a_busy_clients() {
    let queue = fresh_queue().await;
    let a = queue.accept(&["+79990000001", "+79990000001", "+79990000001"]).await;
    let b = queue.accept(&["+79990000002", "+79990000002"]).await;
    let c = queue.accept(&["+79990000003"]).await;

    let claims = futures::future::join_all((0..4).map(|_| queue.claim(10, LEASE))).await;
    let taken: Vec<LeadId> = claims.iter().flatten().map(|claim| claim.lead.id).collect();
    let distinct: BTreeSet<LeadId> = taken.iter().copied().collect();
    assert_eq!(taken.len(), distinct.len(), "two workers were given the same lead: {taken:?}");
    assert_eq!(distinct, BTreeSet::from([a[0], b[0], c[0]]));
    assert!(queue.claim_ids(10).await.is_empty(), "every client is busy");

    let first_of_a = claims.iter().flatten().find(|claim| claim.lead.id == a[0]).unwrap();
    queue.store.complete(&first_of_a.lease, &approved(), &[], &[]).await.unwrap();
    assert_eq!(queue.claim_ids(10).await, BTreeSet::from([a[1]]), "the client's next lead, and only it");
}

#[tokio::test]
async fn a_lead_whose_lease_ran_out_is_taken_over_before_any_other_lead_and_its_old_owner_cannot_write() {
    let queue = fresh_queue().await;
    let a = queue.accept(&["+79990000011", "+79990000011"]).await;
    let first = queue.claim(1, EXPIRED).await;
    assert_eq!(ids(&first), BTreeSet::from([a[0]]));
    let b = queue.accept(&["+79990000012"]).await;

    let taken_over = queue.claim(1, LEASE).await;
    assert_eq!(ids(&taken_over), BTreeSet::from([a[0]]), "the take-over goes before the new client");
    assert_eq!(queue.claim_ids(10).await, BTreeSet::from([b[0]]), "the client's second lead waits");
    let stale = queue.store.complete(&first[0].lease, &approved(), &[], &[]).await;
    assert!(matches!(stale, Err(StoreError::LeaseLost(_))), "{stale:?}");
    queue.store.complete(&taken_over[0].lease, &approved(), &[], &[]).await.unwrap();
    assert_eq!(queue.claim_ids(10).await, BTreeSet::from([a[1]]));
}

#[tokio::test]
async fn a_lead_that_started_its_crm_steps_keeps_its_client_while_it_waits_for_a_retry() {
    let queue = fresh_queue().await;
    let a = queue.accept(&["+79990000021", "+79990000021"]).await;
    let claim = queue.claim(1, LEASE).await.remove(0);
    queue.store.record_step(&claim.lease, &json!({ "contact_id": 7 }), &[], LEASE).await.unwrap();
    queue.store.reschedule(&claim.lease, Utc::now(), AttemptCount::Counted, "CRM down", &[]).await.unwrap();
    let resumed = queue.claim(10, LEASE).await;
    assert_eq!(ids(&resumed), BTreeSet::from([a[0]]), "the started lead resumes before its sibling");

    let later = Utc::now() + chrono::Duration::hours(1);
    queue.store.reschedule(&resumed[0].lease, later, AttemptCount::Counted, "CRM down", &[]).await.unwrap();
    assert!(queue.claim_ids(10).await.is_empty(), "the sibling waits for the started lead's retry");
    let b = queue.accept(&["+79990000022"]).await;
    assert_eq!(queue.claim_ids(10).await, BTreeSet::from([b[0]]), "other clients go on");
}

#[tokio::test]
async fn a_retry_that_never_started_lets_its_clients_newer_lead_go_first() {
    let queue = fresh_queue().await;
    let first = queue.accept(&["+79990000031"]).await;
    let claim = queue.claim(1, LEASE).await.remove(0);
    let later = Utc::now() + chrono::Duration::hours(1);
    queue.store.reschedule(&claim.lease, later, AttemptCount::Counted, "CRM down", &[]).await.unwrap();
    assert!(queue.claim_ids(10).await.is_empty(), "not due yet");

    let newer = queue.accept(&["+79990000031"]).await;
    let claims = queue.claim(10, LEASE).await;
    assert_eq!(ids(&claims), BTreeSet::from([newer[0]]));
    queue.store.complete(&claims[0].lease, &approved(), &[], &[]).await.unwrap();
    assert!(queue.claim_ids(10).await.is_empty(), "the retry of {:?} is still an hour away", first[0]);
}

#[tokio::test]
async fn a_re_sent_lead_with_a_journal_goes_before_its_clients_other_leads() {
    let queue = fresh_queue().await;
    let dead = queue.accept(&["+79990000041"]).await[0];
    let claim = queue.claim(1, LEASE).await.remove(0);
    queue.store.record_step(&claim.lease, &json!({ "contact_id": 7 }), &[], LEASE).await.unwrap();
    queue.store.mark_dead(&claim.lease, "rejected", &[]).await.unwrap();
    let waiting = queue.accept(&["+79990000041", "+79990000041"]).await;
    let busy = queue.claim(1, LEASE).await.remove(0);
    assert_eq!(busy.lead.id, waiting[0]);

    queue.store.resend(dead, "test").await.unwrap();
    assert!(queue.claim_ids(10).await.is_empty(), "the client is busy");
    queue.store.complete(&busy.lease, &approved(), &[], &[]).await.unwrap();
    assert_eq!(queue.claim_ids(10).await, BTreeSet::from([dead]), "the journaled lead resumes first");
}

#[tokio::test]
async fn ten_thousand_leads_of_one_phone_do_not_hold_back_a_client_who_came_after_them() {
    let queue = fresh_queue().await;
    let flood: Vec<NewLead> = (0..10_000).map(|_| new_lead("+79990000051")).collect();
    for batch in flood.chunks(500) {
        queue.store.insert_leads(batch).await.unwrap();
    }
    let other = queue.accept(&["+79990000052"]).await[0];

    let claims = queue.claim(10, LEASE).await;
    assert_eq!(claims.len(), 2, "one lead of the flooding phone and the other client's");
    assert!(ids(&claims).contains(&other));
    let bot = claims.iter().find(|claim| claim.lead.id != other).unwrap();
    queue.store.complete(&bot.lease, &approved(), &[], &[]).await.unwrap();
    assert_eq!(queue.claim(10, LEASE).await.len(), 1, "the flood goes one lead at a time");
}

#[tokio::test]
async fn the_outbox_claim_takes_due_rows_once_takes_over_expired_ones_and_leaves_future_ones() {
    let queue = fresh_queue().await;
    queue.accept(&["+79990000061", "+79990000062"]).await;
    let owed = |n: i64| OwedFeedback {
        kind: FeedbackKind::Callback,
        payload: json!({ "url": "http://127.0.0.1:9/", "n": n }),
        only_if_committed_after: None,
    };
    for (n, claim) in queue.claim(2, LEASE).await.into_iter().enumerate() {
        queue.store.complete(&claim.lease, &approved(), &[], &[owed(n as i64)]).await.unwrap();
    }

    let first = queue.store.claim_feedback(1, EXPIRED).await.unwrap();
    assert_eq!(first.len(), 1);
    let second = queue.store.claim_feedback(10, LEASE).await.unwrap();
    assert_eq!(second.len(), 2, "the other row, and the first taken over");
    assert!(second.iter().any(|claim| claim.lease.id == first[0].lease.id));
    assert!(queue.store.claim_feedback(10, LEASE).await.unwrap().is_empty(), "every row is taken");

    let later = Utc::now() + chrono::Duration::hours(1);
    for claim in &second {
        queue.store.settle_feedback(claim, "pending", Some(later), Some("503"), &[]).await.unwrap();
    }
    assert!(queue.store.claim_feedback(10, LEASE).await.unwrap().is_empty(), "retries are an hour away");
}

#[tokio::test]
async fn feedback_owed_only_after_a_moment_is_written_only_when_the_outcome_commits_later() {
    let queue = fresh_queue().await;
    queue.accept(&["+79990000071", "+79990000072"]).await;
    let claims = queue.claim(2, LEASE).await;
    let owed = |moment| OwedFeedback {
        kind: FeedbackKind::Email,
        payload: json!({ "to": ["visitor@example.ru"] }),
        only_if_committed_after: Some(moment),
    };
    let future = Utc::now() + chrono::Duration::hours(1);
    let past = Utc::now() - chrono::Duration::seconds(1);

    queue.store.complete(&claims[0].lease, &approved(), &[], &[owed(future)]).await.unwrap();
    queue.store.complete(&claims[1].lease, &approved(), &[], &[owed(past)]).await.unwrap();

    assert!(queue.store.owed_feedback(claims[0].lead.id).await.unwrap().is_empty(), "committed before its moment");
    assert_eq!(queue.store.owed_feedback(claims[1].lead.id).await.unwrap().len(), 1, "committed after its moment");
}

#[tokio::test]
async fn a_queue_written_before_the_client_index_existed_is_claimed_by_the_same_rules_after_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let url = store_url(dir.path());
    // Leads as version 0.1 left them (migrations up to 0007): a client with two waiting leads, one
    // whose lead's lease ran out beside a waiting sibling, one whose later lead started its steps.
    let leads = "insert into leads (source_id, name, phone, phone_raw, payload, status, run_at, lease_until,
                                    lease_token, progress, created_at, updated_at) values
        ('trendagent', 'A', '+79990000071', '+79990000071', '{}', 'pending', 1000, null, null, null, 1000, 1000),
        ('trendagent', 'A', '+79990000071', '+79990000071', '{}', 'pending', 2000, null, null, null, 2000, 2000),
        ('trendagent', 'B', '+79990000072', '+79990000072', '{}', 'processing', 1000, 1500, 'old', null, 1000, 1000),
        ('trendagent', 'B', '+79990000072', '+79990000072', '{}', 'pending', 900, null, null, null, 900, 900),
        ('trendagent', 'C', '+79990000073', '+79990000073', '{}', 'pending', 500, null, null, null, 500, 500),
        ('trendagent', 'C', '+79990000073', '+79990000073', '{}', 'pending', 3000, null, null, '{\"step\":1}', 3000, 3000)";
    let old = |mut migrator: sqlx::migrate::Migrator| {
        migrator.migrations = migrator.migrations.iter().filter(|migration| migration.version <= 7).cloned().collect();
        migrator
    };
    if on_postgres() {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        old(sqlx::migrate!("./migrations/postgres")).run(&pool).await.unwrap();
        sqlx::query(leads).execute(&pool).await.unwrap();
        pool.close().await;
    } else {
        let options: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
        let pool = sqlx::SqlitePool::connect_with(options.create_if_missing(true)).await.unwrap();
        old(sqlx::migrate!("./migrations/sqlite")).run(&pool).await.unwrap();
        sqlx::query(leads).execute(&pool).await.unwrap();
        pool.close().await;
    }

    let config = StoreConfig { url, durability: Durability::ProcessCrash, max_connections: 2 };
    let queue = Queue { store: Store::open(&config).await.unwrap(), _dir: dir };
    let taken = queue.claim_ids(10).await;
    assert_eq!(taken, BTreeSet::from([LeadId(1), LeadId(3), LeadId(6)]), "A's first, B's take-over, C's started lead");
    assert!(queue.claim_ids(10).await.is_empty());
}
