//! The PostgreSQL backend, continued: advertisers and their listings.

use std::collections::HashMap;

use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use sqlx::{FromRow, Postgres, Transaction};

use super::postgres::PostgresStore;
use super::{StoreError, to_millis};
use crate::domain::advertiser::{Advertiser, AdvertiserId, AdvertiserRoute};
use crate::domain::document::Document;
use crate::domain::{Email, SourceId};

#[derive(FromRow)]
struct AdvertiserRow {
    source_id: String,
    id: String,
    document: String,
    name: String,
    email: Option<String>,
    send_lead_email: bool,
    destination: Option<String>,
    pipeline: Option<String>,
    status: Option<String>,
    enabled: bool,
}

impl AdvertiserRow {
    fn into_advertiser(self, listings: Vec<String>) -> Advertiser {
        Advertiser {
            source: SourceId(self.source_id),
            id: AdvertiserId::from_stored(self.id),
            document: Document::from_stored(self.document),
            name: self.name,
            email: self.email.map(Email::from_stored),
            send_lead_email: self.send_lead_email,
            route: AdvertiserRoute { destination: self.destination, pipeline: self.pipeline, status: self.status },
            listings,
            enabled: self.enabled,
        }
    }
}

const ADVERTISER_COLUMNS: &str =
    "source_id, id, document, name, email, send_lead_email, destination, pipeline, status, enabled";

impl PostgresStore {
    pub async fn set_advertiser_secret(
        &self,
        source: &SourceId,
        id: &AdvertiserId,
        secret: Option<&SecretString>,
    ) -> Result<(), StoreError> {
        match secret {
            Some(secret) => {
                sqlx::query(
                    "insert into advertiser_secrets (source_id, advertiser_id, secret_key) values ($1, $2, $3)
                     on conflict (source_id, advertiser_id) do update set secret_key = excluded.secret_key",
                )
                .bind(&source.0)
                .bind(id.as_str())
                .bind(secret.expose_secret())
                .execute(self.pool())
                .await?;
            }
            None => {
                sqlx::query("delete from advertiser_secrets where source_id = $1 and advertiser_id = $2")
                    .bind(&source.0)
                    .bind(id.as_str())
                    .execute(self.pool())
                    .await?;
            }
        }
        Ok(())
    }

    pub async fn advertiser_secret(
        &self,
        source: &SourceId,
        id: &AdvertiserId,
    ) -> Result<Option<SecretString>, StoreError> {
        let secret: Option<String> =
            sqlx::query_scalar("select secret_key from advertiser_secrets where source_id = $1 and advertiser_id = $2")
                .bind(&source.0)
                .bind(id.as_str())
                .fetch_optional(self.pool())
                .await?;
        Ok(secret.map(SecretString::from))
    }

    pub async fn upsert_advertisers(&self, advertisers: &[Advertiser]) -> Result<(), StoreError> {
        let now = to_millis(Utc::now());
        let mut tx = self.pool().begin().await?;
        for advertiser in advertisers {
            upsert_advertiser(&mut tx, advertiser, now).await?;
        }
        // Every old listing of the batch goes before any new one is inserted, so that a listing
        // moving between two advertisers of one batch never meets its old owner's row.
        for advertiser in advertisers {
            sqlx::query("delete from advertiser_listings where source_id = $1 and advertiser_id = $2")
                .bind(&advertiser.source.0)
                .bind(advertiser.id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        for advertiser in advertisers {
            for listing in &advertiser.listings {
                sqlx::query(
                    "insert into advertiser_listings (source_id, client_listing_id, advertiser_id) values ($1, $2, $3)",
                )
                .bind(&advertiser.source.0)
                .bind(listing)
                .bind(advertiser.id.as_str())
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn find_advertiser(
        &self,
        source: &SourceId,
        id: &AdvertiserId,
    ) -> Result<Option<Advertiser>, StoreError> {
        let row: Option<AdvertiserRow> =
            sqlx::query_as(&format!("select {ADVERTISER_COLUMNS} from advertisers where source_id = $1 and id = $2"))
                .bind(&source.0)
                .bind(id.as_str())
                .fetch_optional(self.pool())
                .await?;
        self.with_listings(row).await
    }

    pub async fn advertiser_for_listing(
        &self,
        source: &SourceId,
        client_listing_id: &str,
    ) -> Result<Option<Advertiser>, StoreError> {
        let row: Option<AdvertiserRow> = sqlx::query_as(&format!(
            "select {ADVERTISER_COLUMNS} from advertisers
             where (source_id, id) = (select source_id, advertiser_id from advertiser_listings
                                      where source_id = $1 and client_listing_id = $2)"
        ))
        .bind(&source.0)
        .bind(client_listing_id)
        .fetch_optional(self.pool())
        .await?;
        self.with_listings(row).await
    }

    pub async fn list_advertisers(
        &self,
        source: Option<&SourceId>,
        include_disabled: bool,
    ) -> Result<Vec<Advertiser>, StoreError> {
        let source = source.map(|source| source.0.as_str());
        let rows: Vec<AdvertiserRow> = sqlx::query_as(&format!(
            "select {ADVERTISER_COLUMNS} from advertisers
             where ($1 is null or source_id = $1) and ($2 or enabled)
             order by source_id, id"
        ))
        .bind(source)
        .bind(include_disabled)
        .fetch_all(self.pool())
        .await?;
        // Two queries for any number of advertisers, instead of one per advertiser.
        let listed: Vec<(String, String, String)> = sqlx::query_as(
            "select source_id, advertiser_id, client_listing_id from advertiser_listings
             where $1 is null or source_id = $1
             order by client_listing_id",
        )
        .bind(source)
        .fetch_all(self.pool())
        .await?;
        let mut listings: HashMap<(String, String), Vec<String>> = HashMap::new();
        for (source_id, advertiser_id, listing) in listed {
            listings.entry((source_id, advertiser_id)).or_default().push(listing);
        }
        Ok(rows
            .into_iter()
            .map(|row| {
                let own = listings.remove(&(row.source_id.clone(), row.id.clone())).unwrap_or_default();
                row.into_advertiser(own)
            })
            .collect())
    }

    pub async fn set_advertiser_enabled(
        &self,
        source: &SourceId,
        id: &AdvertiserId,
        enabled: bool,
    ) -> Result<bool, StoreError> {
        let updated =
            sqlx::query("update advertisers set enabled = $1, updated_at = $2 where source_id = $3 and id = $4")
                .bind(enabled)
                .bind(to_millis(Utc::now()))
                .bind(&source.0)
                .bind(id.as_str())
                .execute(self.pool())
                .await?;
        Ok(updated.rows_affected() > 0)
    }

    async fn with_listings(&self, row: Option<AdvertiserRow>) -> Result<Option<Advertiser>, StoreError> {
        let Some(row) = row else {
            return Ok(None);
        };
        let listings = sqlx::query_scalar(
            "select client_listing_id from advertiser_listings
             where source_id = $1 and advertiser_id = $2
             order by client_listing_id",
        )
        .bind(&row.source_id)
        .bind(&row.id)
        .fetch_all(self.pool())
        .await?;
        Ok(Some(row.into_advertiser(listings)))
    }
}

async fn upsert_advertiser(
    tx: &mut Transaction<'_, Postgres>,
    advertiser: &Advertiser,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "insert into advertisers (source_id, id, document, name, email, send_lead_email,
                                  destination, pipeline, status, enabled, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
         on conflict (source_id, id) do update set document = excluded.document, name = excluded.name,
             email = excluded.email, send_lead_email = excluded.send_lead_email,
             destination = excluded.destination, pipeline = excluded.pipeline, status = excluded.status,
             enabled = excluded.enabled, updated_at = excluded.updated_at",
    )
    .bind(&advertiser.source.0)
    .bind(advertiser.id.as_str())
    .bind(advertiser.document.as_str())
    .bind(&advertiser.name)
    .bind(advertiser.email.as_ref().map(Email::as_str))
    .bind(advertiser.send_lead_email)
    .bind(&advertiser.route.destination)
    .bind(&advertiser.route.pipeline)
    .bind(&advertiser.route.status)
    .bind(advertiser.enabled)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
