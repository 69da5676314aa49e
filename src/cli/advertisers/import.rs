//! `leadgate advertisers import`: the portal's CSV, every row checked before anything is written.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use url::Url;

use super::{blank_to_none, parse_flag, parse_optional_email, refuse};
use crate::domain::SourceId;
use crate::domain::advertiser::{Advertiser, AdvertiserChange, AdvertiserId, parse_listings};
use crate::domain::document::Document;
use crate::store::Store;

/// Reads and checks the whole file before writing anything, so an operator fixes every bad row
/// in one pass and a half-imported file never reaches the portal.
pub(super) async fn import(store: &Store, source: &SourceId, file: &Path) -> anyhow::Result<ExitCode> {
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
