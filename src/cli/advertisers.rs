//! `leadgate advertisers add|list|enable|disable|import|export-zap`: a portal source's advertisers.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::builder::NonEmptyStringValueParser;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use url::Url;

use crate::config::Config;
use crate::domain::advertiser::{Advertiser, AdvertiserChange, AdvertiserId, parse_listings};
use crate::domain::document::Document;
use crate::domain::{Email, SourceId};
use crate::store::Store;

#[derive(Subcommand)]
pub enum AdvertisersAction {
    /// Add an advertiser, or update the one with this id: options not given keep their value.
    Add(AddArgs),
    /// The advertisers as a table, enabled ones only unless `--all`.
    List {
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
    /// Add or update advertisers from a CSV file: every row valid, or nothing is written.
    Import {
        #[arg(long, value_parser = NonEmptyStringValueParser::new())]
        source: String,
        /// Columns DOCUMENT, URL (or ID), SEND_LEAD_EMAIL; optional NAME, EMAIL, LISTINGS,
        /// DESTINATION, PIPELINE, STATUS, ENABLED. A column left out keeps what is stored.
        file: PathBuf,
    },
    /// Write the portal's batch file (DOCUMENT,URL,SEND_LEAD_EMAIL) of the enabled advertisers.
    ExportZap {
        #[arg(long, value_parser = NonEmptyStringValueParser::new())]
        source: Option<String>,
        /// The gateway's address as the portal reaches it, e.g. https://leads.example.com;
        /// overrides `[server] public_url`.
        #[arg(long)]
        public_url: Option<Url>,
        file: PathBuf,
    },
}

#[derive(Args)]
pub struct AddArgs {
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    source: String,
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
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = parse_flag)]
    send_lead_email: Option<bool>,
    /// "" returns to the source's own destination (likewise for pipeline and status).
    #[arg(long)]
    destination: Option<String>,
    #[arg(long)]
    pipeline: Option<String>,
    #[arg(long)]
    status: Option<String>,
}

#[derive(Args)]
pub struct Target {
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    source: String,
    #[arg(long)]
    id: String,
}

pub async fn run(action: AdvertisersAction, config: &Config) -> anyhow::Result<ExitCode> {
    let store = Store::open(&config.store).await?;
    // Only non-empty is checked: any source name may hold advertisers until sources have kinds.
    match action {
        AdvertisersAction::Add(args) => add(&store, args).await,
        AdvertisersAction::List { source, all } => list(&store, source.map(SourceId).as_ref(), all).await,
        AdvertisersAction::Enable(target) => set_enabled(&store, target, true).await,
        AdvertisersAction::Disable(target) => set_enabled(&store, target, false).await,
        AdvertisersAction::Import { source, file } => import(&store, &SourceId(source), &file).await,
        AdvertisersAction::ExportZap { source, public_url, file } => {
            let Some(public_url) = public_url.or_else(|| config.public_url.clone()) else {
                return Ok(refuse("the URLs need the gateway's address: set [server] public_url or pass --public-url"));
            };
            export_zap(&store, source.map(SourceId).as_ref(), &public_url, &file).await
        }
    }
}

async fn add(store: &Store, args: AddArgs) -> anyhow::Result<ExitCode> {
    let source = SourceId(args.source.clone());
    let change = match change_from_args(&args) {
        Ok(change) => change,
        Err(problem) => return Ok(refuse(problem)),
    };
    let existing = store.find_advertiser(&source, &change.id).await?;
    let is_new = existing.is_none();
    let Some(advertiser) = change.apply(&source, existing) else {
        return Ok(refuse("a new advertiser needs --document"));
    };
    for listing in &advertiser.listings {
        if let Some(owner) = store.advertiser_for_listing(&source, listing).await?
            && owner.id != advertiser.id
        {
            return Ok(refuse(format_args!(
                "listing «{listing}» belongs to advertiser {} of source {source}",
                owner.id
            )));
        }
    }
    store.upsert_advertisers(std::slice::from_ref(&advertiser)).await?;
    let verb = if is_new { "added" } else { "updated" };
    println!("advertiser {} of source {source} {verb}", advertiser.id);
    Ok(ExitCode::SUCCESS)
}

fn change_from_args(args: &AddArgs) -> Result<AdvertiserChange, String> {
    let document = args.document.as_deref().map(Document::parse).transpose().map_err(|error| error.to_string())?;
    Ok(AdvertiserChange {
        document,
        name: args.name.as_deref().and_then(blank_to_none),
        email: args.email.as_deref().map(parse_optional_email).transpose()?,
        send_lead_email: args.send_lead_email,
        destination: args.destination.as_deref().map(blank_to_none),
        pipeline: args.pipeline.as_deref().map(blank_to_none),
        status: args.status.as_deref().map(blank_to_none),
        listings: (!args.listings.is_empty()).then(|| parse_listings(&args.listings.join(";"))),
        ..AdvertiserChange::new(AdvertiserId::parse(&args.id).map_err(|error| error.to_string())?)
    })
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

/// Reads and checks the whole file before writing anything, so an operator fixes every bad row
/// in one pass and a half-imported file never reaches the portal.
async fn import(store: &Store, source: &SourceId, file: &Path) -> anyhow::Result<ExitCode> {
    let size = std::fs::metadata(file).with_context(|| format!("reading {}", file.display()))?.len();
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(File::open(file).with_context(|| format!("reading {}", file.display()))?);
    let header = match Header::read(&mut reader) {
        Ok(header) => header,
        Err(problem) => return Ok(refuse(format_args!("{}: {problem}", file.display()))),
    };
    let Rows { changes, bad: mut bad_rows } = read_rows(reader, &header, size)?;
    let mut stored: HashMap<AdvertiserId, Advertiser> = HashMap::new();
    for advertiser in store.list_advertisers(Some(source), true).await? {
        stored.insert(advertiser.id.clone(), advertiser);
    }
    let mut advertisers = Vec::with_capacity(changes.len());
    let mut new = 0;
    for (line, change) in changes {
        let existing = stored.remove(&change.id);
        new += usize::from(existing.is_none());
        // DOCUMENT is a required column, so every row carries one.
        if let Some(advertiser) = change.apply(source, existing) {
            advertisers.push((line, advertiser));
        }
    }
    bad_rows.extend(listing_conflicts(stored.values(), &advertisers));
    if !bad_rows.is_empty() {
        bad_rows.sort_by_key(|(line, _)| *line);
        for (line, problem) in &bad_rows {
            eprintln!("{}:{line}: {problem}", file.display());
        }
        return Ok(refuse(format_args!("{} bad row(s); nothing was written", bad_rows.len())));
    }
    let advertisers: Vec<Advertiser> = advertisers.into_iter().map(|(_, advertiser)| advertiser).collect();
    store.upsert_advertisers(&advertisers).await?;
    println!(
        "{} advertiser(s) of source {source} imported: {new} new, {} updated",
        advertisers.len(),
        advertisers.len() - new
    );
    Ok(ExitCode::SUCCESS)
}

/// A file's rows by line: the good ones as changes, the bad ones with what is wrong.
struct Rows {
    changes: Vec<(u64, AdvertiserChange)>,
    bad: Vec<(u64, String)>,
}

/// Reads every row, each id once, with a progress bar (on a terminal only) for large files.
fn read_rows(mut reader: csv::Reader<File>, header: &Header, size: u64) -> anyhow::Result<Rows> {
    let progress = ProgressBar::new(size).with_style(
        ProgressStyle::with_template("checking {wide_bar} {bytes}/{total_bytes}").context("the progress template")?,
    );
    let mut changes = Vec::new();
    let mut bad_rows: Vec<(u64, String)> = Vec::new();
    let mut seen: HashMap<AdvertiserId, u64> = HashMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let line = error.position().map_or(0, csv::Position::line);
                bad_rows.push((line, format!("cannot be read: {error}")));
                continue;
            }
        };
        let line = record.position().map_or(0, csv::Position::line);
        progress.set_position(record.position().map_or(0, csv::Position::byte));
        match header.change(&record) {
            Ok(change) => match seen.insert(change.id.clone(), line) {
                Some(first) => bad_rows.push((line, format!("id {} is on line {first} too", change.id))),
                None => changes.push((line, change)),
            },
            Err(problems) => bad_rows.push((line, problems.join("; "))),
        }
    }
    progress.finish_and_clear();
    Ok(Rows { changes, bad: bad_rows })
}

/// Listings that two advertisers would own once the file is written: claimed on two lines, or by
/// a row and a stored advertiser the file leaves alone.
fn listing_conflicts<'a>(
    untouched: impl Iterator<Item = &'a Advertiser>,
    imported: &[(u64, Advertiser)],
) -> Vec<(u64, String)> {
    let mut owners: HashMap<&str, (&AdvertiserId, Option<u64>)> = HashMap::new();
    for advertiser in untouched {
        for listing in &advertiser.listings {
            owners.insert(listing, (&advertiser.id, None));
        }
    }
    let mut conflicts = Vec::new();
    for (line, advertiser) in imported {
        for listing in &advertiser.listings {
            match owners.get(listing.as_str()) {
                Some((owner, Some(other_line))) => conflicts
                    .push((*line, format!("listing «{listing}» is claimed on line {other_line} too (id {owner})"))),
                Some((owner, None)) => {
                    conflicts.push((*line, format!("listing «{listing}» belongs to advertiser {owner}")));
                }
                None => {
                    owners.insert(listing, (&advertiser.id, Some(*line)));
                }
            }
        }
    }
    conflicts
}

/// The file's columns, by upper-case name.
struct Header(HashMap<&'static str, usize>);

const COLUMNS: [&str; 11] = [
    "DOCUMENT",
    "URL",
    "SEND_LEAD_EMAIL",
    "ID",
    "NAME",
    "EMAIL",
    "LISTINGS",
    "DESTINATION",
    "PIPELINE",
    "STATUS",
    "ENABLED",
];

impl Header {
    fn read(reader: &mut csv::Reader<File>) -> Result<Self, String> {
        let names = reader.headers().map_err(|error| format!("the header row cannot be read: {error}"))?;
        let mut columns = HashMap::new();
        for (index, name) in names.iter().enumerate() {
            let Some(known) = COLUMNS.iter().find(|known| known.eq_ignore_ascii_case(name)) else {
                return Err(format!("unknown column «{name}»; the columns are {}", COLUMNS.join(", ")));
            };
            if columns.insert(*known, index).is_some() {
                return Err(format!("the column {known} appears twice"));
            }
        }
        let missing: Vec<&str> =
            ["DOCUMENT", "SEND_LEAD_EMAIL"].into_iter().filter(|name| !columns.contains_key(name)).collect();
        if !missing.is_empty() {
            return Err(format!("the header row lacks {}", missing.join(" and ")));
        }
        if !columns.contains_key("URL") && !columns.contains_key("ID") {
            return Err("the header row lacks URL (or ID)".to_owned());
        }
        Ok(Self(columns))
    }

    /// A row as a change, or every problem it has.
    fn change(&self, record: &csv::StringRecord) -> Result<AdvertiserChange, Vec<String>> {
        if record.len() != self.0.len() {
            return Err(vec![format!("{} fields, but the header has {}", record.len(), self.0.len())]);
        }
        let cell = |name: &str| self.0.get(name).map(|&index| &record[index]);
        let mut problems = Vec::new();
        let mut check = |column: &str, problem: String| problems.push(format!("{column}: {problem}"));
        let document = Document::parse(cell("DOCUMENT").unwrap_or_default())
            .map_err(|error| check("DOCUMENT", error.to_string()))
            .ok();
        let id = match cell("ID").filter(|text| !text.is_empty()) {
            Some(text) => AdvertiserId::parse(text).map_err(|error| check("ID", error.to_string())).ok(),
            None => id_from_url(cell("URL").unwrap_or_default()).map_err(|problem| check("URL", problem)).ok(),
        };
        let send_lead_email = parse_flag(cell("SEND_LEAD_EMAIL").unwrap_or_default())
            .map_err(|problem| check("SEND_LEAD_EMAIL", problem))
            .ok();
        let enabled = cell("ENABLED")
            .filter(|text| !text.is_empty())
            .map(parse_flag)
            .transpose()
            .map_err(|problem| check("ENABLED", problem))
            .ok();
        let email = cell("EMAIL").map(parse_optional_email).transpose().map_err(|problem| check("EMAIL", problem)).ok();
        let (Some(id), Some(document), Some(send_lead_email), Some(enabled), Some(email)) =
            (id, document, send_lead_email, enabled, email)
        else {
            return Err(problems);
        };
        Ok(AdvertiserChange {
            id,
            document: Some(document),
            name: cell("NAME").and_then(blank_to_none),
            email,
            send_lead_email: Some(send_lead_email),
            destination: cell("DESTINATION").map(blank_to_none),
            pipeline: cell("PIPELINE").map(blank_to_none),
            status: cell("STATUS").map(blank_to_none),
            listings: cell("LISTINGS").map(parse_listings),
            enabled,
        })
    }
}

fn id_from_url(text: &str) -> Result<AdvertiserId, String> {
    if text.is_empty() {
        return Err("empty, and there is no ID either".to_owned());
    }
    let url = Url::parse(text).map_err(|error| format!("«{text}» is not a URL ({error})"))?;
    AdvertiserId::from_lead_url(&url).map_err(|error| format!("{error}; give an ID column"))
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

fn parse_flag(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("«{text}» is not a boolean (true/false, 1/0, yes/no)")),
    }
}

fn parse_optional_email(text: &str) -> Result<Option<Email>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    Email::parse(text).map(Some).map_err(|error| error.to_string())
}

fn blank_to_none(text: &str) -> Option<String> {
    let trimmed = text.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// Reports a problem with what the operator gave; exit code 2 as for a bad configuration.
fn refuse(problem: impl std::fmt::Display) -> ExitCode {
    eprintln!("{problem}");
    ExitCode::from(2)
}

fn yes_no(flag: bool) -> &'static str {
    if flag { "yes" } else { "no" }
}
