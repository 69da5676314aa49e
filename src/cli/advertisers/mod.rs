//! `leadgate advertisers add|list|enable|disable|remove|import|export-zap`: a portal source's advertisers.

mod import;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::builder::NonEmptyStringValueParser;
use clap::{Args, Subcommand};
use secrecy::SecretString;
use url::Url;

use crate::config::{Config, SourceKind};
use crate::domain::advertiser::AdvertiserId;
use crate::domain::advertiser_file::parse_flag;
use crate::domain::advertiser_form::AdvertiserFields;
use crate::domain::{Email, SourceId};
use crate::store::Store;
use crate::store::advertisers::Saved;

#[derive(Subcommand)]
pub enum AdvertisersAction {
    /// Add an advertiser, or update the one with this id: options not given keep their value.
    Add(AddArgs),
    /// The advertisers as a table, enabled ones only unless `--all`.
    List {
        /// Only the advertisers of this portal source (a `[sources.NAME]` of `kind = "zap"`).
        #[arg(long, value_parser = NonEmptyStringValueParser::new())]
        source: Option<String>,
        /// Include disabled advertisers.
        #[arg(long)]
        all: bool,
    },
    /// Receive leads for the advertiser again and list it in `export-zap`.
    Enable(Target),
    /// Keep the advertiser and its listings, but answer its leads with 404 (the portal then stops
    /// sending them for good) and leave it out of `export-zap`.
    Disable(Target),
    /// Delete the advertiser with its listings and its own password. Its leads keep their history;
    /// a later lead for it is answered 404 (the portal then stops sending them for good).
    Remove(Target),
    /// Add or update advertisers from a CSV file: every row valid, or nothing is written.
    Import {
        /// The portal source (a `[sources.NAME]` of `kind = "zap"`) the advertisers belong to.
        #[arg(long, value_parser = NonEmptyStringValueParser::new())]
        source: String,
        /// Columns DOCUMENT, URL (or ID), SEND_LEAD_EMAIL; optional NAME, EMAIL, LISTINGS,
        /// DESTINATION, PIPELINE, STATUS, ENABLED. A column left out keeps what is stored.
        file: PathBuf,
    },
    /// Write the portal's batch file (DOCUMENT,URL,SEND_LEAD_EMAIL) of the enabled advertisers.
    ExportZap {
        /// Only the advertisers of this portal source; every portal source's when left out.
        #[arg(long, value_parser = NonEmptyStringValueParser::new())]
        source: Option<String>,
        /// The gateway's address as the portal reaches it, e.g. https://leads.example.com;
        /// overrides `[server] public_url`.
        #[arg(long)]
        public_url: Option<Url>,
        /// The CSV file to write (replaced if it exists).
        file: PathBuf,
    },
}

#[derive(Args)]
pub struct AddArgs {
    /// The portal source (a `[sources.NAME]` of `kind = "zap"`) the advertiser belongs to.
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    source: String,
    /// The advertiser id: the last segment of its lead URL, e.g. 123456.
    #[arg(long)]
    id: String,
    /// CPF or CNPJ, with or without its mask; required for a new advertiser.
    #[arg(long)]
    document: Option<String>,
    /// Defaults to the document for a new advertiser.
    #[arg(long)]
    name: Option<String>,
    /// Where a copy of each lead goes when SEND_LEAD_EMAIL is set; "" removes it.
    #[arg(long)]
    email: Option<String>,
    /// A clientListingId of the advertiser (repeat it); the given ones replace the stored ones,
    /// and "" removes them all.
    #[arg(long = "listing")]
    listings: Vec<String>,
    /// The portal's SEND_LEAD_EMAIL: send a copy of each lead to --email (which it then needs);
    /// `--send-lead-email false` turns it off.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = parse_flag)]
    send_lead_email: Option<bool>,
    /// The `[destinations.NAME]` its leads go to; "" returns to the source's own.
    #[arg(long)]
    destination: Option<String>,
    /// The CRM pipeline of its deals, by its name exactly as the CRM shows it (not its id); "" returns to
    /// the source's own.
    #[arg(long)]
    pipeline: Option<String>,
    /// The stage of its new deals in that pipeline, by its name exactly as the CRM shows it (not its id);
    /// "" returns to the source's own.
    #[arg(long)]
    status: Option<String>,
    /// A Basic password of the advertiser's own, replacing the source's `secret_key` on this
    /// advertiser's URL (for portals that issue one per advertiser); "" removes it.
    #[arg(long)]
    secret_key: Option<String>,
}

#[derive(Args)]
pub struct Target {
    /// The portal source (a `[sources.NAME]` of `kind = "zap"`) the advertiser belongs to.
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    source: String,
    /// The advertiser id: the last segment of its lead URL.
    #[arg(long)]
    id: String,
}

pub async fn run(action: AdvertisersAction, config: &Config) -> anyhow::Result<ExitCode> {
    // A typo in --source would otherwise file advertisers under a name no endpoint serves.
    let named = match &action {
        AdvertisersAction::Add(AddArgs { source, .. })
        | AdvertisersAction::Enable(Target { source, .. })
        | AdvertisersAction::Disable(Target { source, .. })
        | AdvertisersAction::Remove(Target { source, .. })
        | AdvertisersAction::Import { source, .. } => Some(source),
        AdvertisersAction::List { source, .. } | AdvertisersAction::ExportZap { source, .. } => source.as_ref(),
    };
    if let Some(problem) = named.and_then(|name| not_a_portal(config, name)) {
        return Ok(refuse(problem));
    }
    let store = Store::open_existing(&config.store).await?;
    match action {
        AdvertisersAction::Add(args) => add(&store, args).await,
        AdvertisersAction::List { source, all } => list(&store, source.map(SourceId).as_ref(), all).await,
        AdvertisersAction::Enable(target) => set_enabled(&store, target, true).await,
        AdvertisersAction::Disable(target) => set_enabled(&store, target, false).await,
        AdvertisersAction::Remove(target) => remove(&store, target).await,
        AdvertisersAction::Import { source, file } => import::import(&store, &SourceId(source), &file).await,
        AdvertisersAction::ExportZap { source, public_url, file } => {
            let Some(public_url) = public_url.or_else(|| config.public_url.clone()) else {
                return Ok(refuse("the URLs need the gateway's address: set [server] public_url or pass --public-url"));
            };
            export_zap(&store, source.map(SourceId).as_ref(), &public_url, &file).await
        }
    }
}

/// Why `name` cannot hold advertisers, naming the sources that can; `None` when it is a portal source.
fn not_a_portal(config: &Config, name: &str) -> Option<String> {
    let problem = match config.sources.get(&SourceId(name.to_owned())).map(|source| &source.kind) {
        Some(SourceKind::Zap(_)) => return None,
        Some(_) => format!("source «{name}» is not a portal source (kind = \"zap\")"),
        None => format!("source «{name}» is not configured"),
    };
    let portals: Vec<&str> = config
        .sources
        .values()
        .filter(|source| matches!(source.kind, SourceKind::Zap(_)))
        .map(|source| source.id.0.as_str())
        .collect();
    Some(if portals.is_empty() {
        format!("{problem}; no portal source is configured: add a [sources.NAME] with kind = \"zap\"")
    } else {
        format!("{problem}; the portal sources are: {}", portals.join(", "))
    })
}

async fn add(store: &Store, args: AddArgs) -> anyhow::Result<ExitCode> {
    let source = SourceId(args.source.clone());
    let fields = AdvertiserFields {
        id: args.id,
        document: args.document,
        name: args.name,
        email: args.email,
        listings: args.listings,
        send_lead_email: args.send_lead_email,
        destination: args.destination,
        pipeline: args.pipeline,
        status: args.status,
    };
    let change = match fields.change() {
        Ok(change) => change,
        Err(problem) => return Ok(refuse(problem)),
    };
    let secret = args.secret_key.map(|secret| Some(secret).filter(|secret| !secret.is_empty()).map(SecretString::from));
    match store.save_advertiser(&source, change, secret).await? {
        Saved::Added(id) => println!("advertiser {id} of source {source} added"),
        Saved::Updated(id) => println!("advertiser {id} of source {source} updated"),
        Saved::Refused(problem) => return Ok(refuse(problem)),
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(store: &Store, source: Option<&SourceId>, all: bool) -> anyhow::Result<ExitCode> {
    let advertisers = store.list_advertisers(source, all).await?;
    println!(
        "{:<12}  {:<20}  {:<14}  {:<8}  {:<10}  {:>8}  {:<30}  name",
        "source", "id", "document", "enabled", "lead email", "listings", "email"
    );
    for advertiser in &advertisers {
        println!(
            "{:<12}  {:<20}  {:<14}  {:<8}  {:<10}  {:>8}  {:<30}  {}",
            advertiser.source.0,
            advertiser.id,
            advertiser.document,
            yes_no(advertiser.enabled),
            yes_no(advertiser.send_lead_email),
            advertiser.listings.len(),
            advertiser.email.as_ref().map(Email::as_str).unwrap_or("-"),
            advertiser.name
        );
    }
    println!("{} advertiser(s)", advertisers.len());
    Ok(ExitCode::SUCCESS)
}

async fn set_enabled(store: &Store, target: Target, enabled: bool) -> anyhow::Result<ExitCode> {
    let source = SourceId(target.source);
    let id = match AdvertiserId::parse(&target.id) {
        Ok(id) => id,
        Err(error) => return Ok(refuse(error)),
    };
    if !store.set_advertiser_enabled(&source, &id, enabled).await? {
        eprintln!("advertiser {id} of source {source} does not exist");
        return Ok(ExitCode::from(1));
    }
    println!("advertiser {id} of source {source} is {}", if enabled { "enabled" } else { "disabled" });
    Ok(ExitCode::SUCCESS)
}

async fn remove(store: &Store, target: Target) -> anyhow::Result<ExitCode> {
    let source = SourceId(target.source);
    let id = match AdvertiserId::parse(&target.id) {
        Ok(id) => id,
        Err(error) => return Ok(refuse(error)),
    };
    if !store.delete_advertiser(&source, &id).await? {
        eprintln!("advertiser {id} of source {source} does not exist");
        return Ok(ExitCode::from(1));
    }
    println!(
        "advertiser {id} of source {source} removed with its listings; its leads keep their history, \
         and a later lead for it is answered 404"
    );
    Ok(ExitCode::SUCCESS)
}

async fn export_zap(
    store: &Store,
    source: Option<&SourceId>,
    public_url: &Url,
    file: &Path,
) -> anyhow::Result<ExitCode> {
    let advertisers = store.list_advertisers(source, false).await?;
    let mut writer = csv::Writer::from_path(file).with_context(|| format!("writing {}", file.display()))?;
    writer.write_record(["DOCUMENT", "URL", "SEND_LEAD_EMAIL"])?;
    for advertiser in &advertisers {
        let url = advertiser.id.lead_url(public_url);
        let flag = if advertiser.send_lead_email { "true" } else { "false" };
        writer.write_record([advertiser.document.as_str(), url.as_str(), flag])?;
    }
    writer.flush().with_context(|| format!("writing {}", file.display()))?;
    println!("{} enabled advertiser(s) written to {}", advertisers.len(), file.display());
    Ok(ExitCode::SUCCESS)
}

/// Reports a problem with what the operator gave; exit code 2 as for a bad configuration.
pub(super) fn refuse(problem: impl std::fmt::Display) -> ExitCode {
    eprintln!("{problem}");
    ExitCode::from(2)
}

fn yes_no(flag: bool) -> &'static str {
    if flag { "yes" } else { "no" }
}
