//! The account's custom field ids, read when a lead first fills one and again on a miss, so a contact or deal is written only with fields the account has.
//!
//! amoCRM refuses a whole contact or deal (400 `NotSupportedChoice`) for one unknown `field_id`.
//! A site sending a stale id in `fields[…]` would then lose every lead at the deal, after its
//! contact was made; leaving that value out of the record loses nothing, since the lead's note
//! and its history in the gateway keep every field it came with.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Mutex;

use super::client::AmoCrmClient;
use super::wire::CustomFieldsEmbedded;
use crate::connectors::{Calls, DeliveryError};
use crate::domain::HistoryEvent;

/// A field missing from a fresh list is taken as missing for this long: a site that keeps
/// sending a stale id costs one read of the list a minute, not one per lead.
const REREAD_AFTER: Duration = Duration::from_secs(60);

/// Which records a list of fields belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldsOf {
    Contacts,
    Deals,
}

impl FieldsOf {
    fn path(self) -> &'static str {
        match self {
            Self::Contacts => "/api/v4/contacts/custom_fields",
            Self::Deals => "/api/v4/leads/custom_fields",
        }
    }

    fn record(self) -> &'static str {
        match self {
            Self::Contacts => "contact",
            Self::Deals => "deal",
        }
    }
}

/// The ids of one kind of record's custom fields, as last read.
pub struct FieldCatalog {
    of: FieldsOf,
    /// Never held across an await: read, copied, let go.
    known: RwLock<Option<(BTreeSet<i64>, Instant)>>,
    /// One read at a time, as for the pipelines and users.
    refreshing: Mutex<()>,
}

impl FieldCatalog {
    pub fn new(of: FieldsOf) -> Self {
        Self { of, known: RwLock::default(), refreshing: Mutex::default() }
    }

    /// Of `values` (field id → value), those the account has. Each one left out is named in
    /// the lead's history. Nothing is read when there is nothing to write.
    ///
    /// # Errors
    /// As for every call, when the list has to be read and cannot be.
    pub async fn keep_known(
        &self,
        client: &AmoCrmClient,
        values: BTreeMap<i64, String>,
        calls: &mut Calls,
    ) -> Result<BTreeMap<i64, String>, DeliveryError> {
        if values.is_empty() {
            return Ok(values);
        }
        let wanted: BTreeSet<i64> = values.keys().copied().collect();
        let known = self.covering(client, &wanted, calls).await?;
        let (kept, left_out): (BTreeMap<_, _>, BTreeMap<_, _>) =
            values.into_iter().partition(|(id, _)| known.contains(id));
        if !left_out.is_empty() {
            let ids: Vec<i64> = left_out.into_keys().collect();
            calls.push(HistoryEvent::now(
                "custom_fields_left_out",
                json!({
                    "record": self.of.record(),
                    "field_ids": ids,
                    "reason": "the account has no such field; the value stays in the lead's note and history",
                }),
            ));
        }
        Ok(kept)
    }

    /// The account's field ids, read now.
    ///
    /// # Errors
    /// As for every call.
    pub async fn read(&self, client: &AmoCrmClient, calls: &mut Calls) -> Result<BTreeSet<i64>, DeliveryError> {
        let pages: Vec<CustomFieldsEmbedded> = client.get_pages(calls, self.of.path()).await?;
        let ids: BTreeSet<i64> = pages.into_iter().flat_map(|page| page.custom_fields).map(|field| field.id).collect();
        *self.known.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((ids.clone(), Instant::now()));
        Ok(ids)
    }

    /// The ids as last read, read again first when one of `wanted` is missing and the list is
    /// older than `REREAD_AFTER` (a field may have been added since).
    async fn covering(
        &self,
        client: &AmoCrmClient,
        wanted: &BTreeSet<i64>,
        calls: &mut Calls,
    ) -> Result<BTreeSet<i64>, DeliveryError> {
        let fresh_enough = || match &*self.known.read().unwrap_or_else(std::sync::PoisonError::into_inner) {
            Some((ids, read_at)) if wanted.is_subset(ids) || read_at.elapsed() < REREAD_AFTER => Some(ids.clone()),
            _ => None,
        };
        if let Some(ids) = fresh_enough() {
            return Ok(ids);
        }
        let _refreshing = self.refreshing.lock().await;
        // Another lead may have read the list while this one waited.
        if let Some(ids) = fresh_enough() {
            return Ok(ids);
        }
        self.read(client, calls).await
    }
}
