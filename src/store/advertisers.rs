//! Advertisers of a portal source (Grupo ZAP): the store contract.

use secrecy::SecretString;

use super::{Store, StoreError};
use crate::domain::SourceId;
use crate::domain::advertiser::{Advertiser, AdvertiserChange, AdvertiserId};

/// What became of one advertiser an operator added or changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Saved {
    Added(AdvertiserId),
    Updated(AdvertiserId),
    /// Nothing was written; the text says why.
    Refused(String),
}

impl Store {
    /// Adds the advertiser `change` describes, or changes the stored one with its id; its own
    /// Basic password is set (`Some(Some)`), removed (`Some(None)`) or kept (`None`). Refused when
    /// a new advertiser has no document, or a listing belongs to another advertiser.
    pub async fn save_advertiser(
        &self,
        source: &SourceId,
        change: AdvertiserChange,
        secret: Option<Option<SecretString>>,
    ) -> Result<Saved, StoreError> {
        let existing = self.find_advertiser(source, &change.id).await?;
        let is_new = existing.is_none();
        let Some(advertiser) = change.apply(source, existing) else {
            return Ok(Saved::Refused("a new advertiser needs a document (CPF or CNPJ)".to_owned()));
        };
        if let Some(problem) = advertiser.missing_lead_email() {
            return Ok(Saved::Refused(format!("advertiser {}: {problem}", advertiser.id)));
        }
        for listing in &advertiser.listings {
            if let Some(owner) = self.advertiser_for_listing(source, listing).await?
                && owner.id != advertiser.id
            {
                return Ok(Saved::Refused(format!(
                    "listing «{listing}» belongs to advertiser {} of source {source}",
                    owner.id
                )));
            }
        }
        self.upsert_advertisers(std::slice::from_ref(&advertiser)).await?;
        if let Some(secret) = secret {
            self.set_advertiser_secret(source, &advertiser.id, secret.as_ref()).await?;
        }
        Ok(if is_new { Saved::Added(advertiser.id) } else { Saved::Updated(advertiser.id) })
    }

    /// Adds or replaces every advertiser of `advertisers` in one transaction: all or nothing.
    /// An advertiser's listings become exactly `listings`.
    ///
    /// # Errors
    /// `Database` when a listing already belongs to another advertiser of the same source (the
    /// table's key enforces it): callers check ownership first to name the conflict.
    pub async fn upsert_advertisers(&self, advertisers: &[Advertiser]) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(store) => store.upsert_advertisers(advertisers).await,
            Self::Postgres(store) => store.upsert_advertisers(advertisers).await,
        }
    }

    /// The advertiser with this id, disabled or not: callers decide what a disabled one means.
    pub async fn find_advertiser(
        &self,
        source: &SourceId,
        id: &AdvertiserId,
    ) -> Result<Option<Advertiser>, StoreError> {
        match self {
            Self::Sqlite(store) => store.find_advertiser(source, id).await,
            Self::Postgres(store) => store.find_advertiser(source, id).await,
        }
    }

    /// The advertiser that owns the listing a lead names (its `clientListingId`), disabled or not.
    pub async fn advertiser_for_listing(
        &self,
        source: &SourceId,
        client_listing_id: &str,
    ) -> Result<Option<Advertiser>, StoreError> {
        match self {
            Self::Sqlite(store) => store.advertiser_for_listing(source, client_listing_id).await,
            Self::Postgres(store) => store.advertiser_for_listing(source, client_listing_id).await,
        }
    }

    /// Every advertiser (of `source`, if given) ordered by source and id, with its listings.
    pub async fn list_advertisers(
        &self,
        source: Option<&SourceId>,
        include_disabled: bool,
    ) -> Result<Vec<Advertiser>, StoreError> {
        match self {
            Self::Sqlite(store) => store.list_advertisers(source, include_disabled).await,
            Self::Postgres(store) => store.list_advertisers(source, include_disabled).await,
        }
    }

    /// Returns whether the advertiser exists.
    pub async fn set_advertiser_enabled(
        &self,
        source: &SourceId,
        id: &AdvertiserId,
        enabled: bool,
    ) -> Result<bool, StoreError> {
        match self {
            Self::Sqlite(store) => store.set_advertiser_enabled(source, id, enabled).await,
            Self::Postgres(store) => store.set_advertiser_enabled(source, id, enabled).await,
        }
    }

    /// Deletes the advertiser with its listings and its own password; returns whether it existed.
    pub async fn delete_advertiser(&self, source: &SourceId, id: &AdvertiserId) -> Result<bool, StoreError> {
        match self {
            Self::Sqlite(store) => store.delete_advertiser(source, id).await,
            Self::Postgres(store) => store.delete_advertiser(source, id).await,
        }
    }

    /// Sets (or, with `None`, removes) the advertiser's own Basic password.
    pub async fn set_advertiser_secret(
        &self,
        source: &SourceId,
        id: &AdvertiserId,
        secret: Option<&SecretString>,
    ) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(store) => store.set_advertiser_secret(source, id, secret).await,
            Self::Postgres(store) => store.set_advertiser_secret(source, id, secret).await,
        }
    }

    /// The advertiser's own Basic password, when it has one.
    pub async fn advertiser_secret(
        &self,
        source: &SourceId,
        id: &AdvertiserId,
    ) -> Result<Option<SecretString>, StoreError> {
        match self {
            Self::Sqlite(store) => store.advertiser_secret(source, id).await,
            Self::Postgres(store) => store.advertiser_secret(source, id).await,
        }
    }
}
