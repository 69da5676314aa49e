//! The portal's advertisers CSV: every row checked into an advertiser before anything is written,
//! for `leadgate advertisers import` and the console's upload alike.

use std::collections::HashMap;
use std::io::Read;

use url::Url;

use super::advertiser::{Advertiser, AdvertiserChange, AdvertiserId, parse_listings};
use super::document::Document;
use super::{Email, SourceId};

/// A file whose every row is good: the advertisers to write, and how many of them are new.
#[derive(Debug)]
pub struct CheckedFile {
    pub advertisers: Vec<Advertiser>,
    pub new: usize,
}

/// Why nothing of a file may be written.
#[derive(Debug, PartialEq, Eq)]
pub enum FileProblems {
    /// The header row: a column unknown, twice, or missing.
    Header(String),
    /// Each bad row by its line, in line order.
    Rows(Vec<(u64, String)>),
}

/// Checks the whole file against the source's `stored` advertisers (disabled ones too), so an
/// operator fixes every bad row in one pass and a half-imported file never reaches the portal.
///
/// # Errors
/// The header's problem, or every bad row: unreadable, invalid, an id twice, a listing that
/// two advertisers would own.
pub fn check<R: Read>(
    reader: R,
    source: &SourceId,
    stored: Vec<Advertiser>,
    progress: &mut dyn FnMut(u64),
) -> Result<CheckedFile, FileProblems> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(reader);
    let header = Header::read(&mut reader).map_err(FileProblems::Header)?;
    let Rows { changes, bad: mut bad_rows } = read_rows(reader, &header, progress);
    let mut stored: HashMap<AdvertiserId, Advertiser> =
        stored.into_iter().map(|advertiser| (advertiser.id.clone(), advertiser)).collect();
    let mut advertisers = Vec::with_capacity(changes.len());
    let mut new = 0;
    for (line, change) in changes {
        let existing = stored.remove(&change.id);
        new += usize::from(existing.is_none());
        // DOCUMENT is a required column, so every row carries one.
        if let Some(advertiser) = change.apply(source, existing) {
            match advertiser.missing_lead_email() {
                Some(problem) => bad_rows.push((line, format!("advertiser {}: {problem} (EMAIL)", advertiser.id))),
                None => advertisers.push((line, advertiser)),
            }
        }
    }
    bad_rows.extend(listing_conflicts(stored.values(), &advertisers));
    if !bad_rows.is_empty() {
        bad_rows.sort_by_key(|(line, _)| *line);
        return Err(FileProblems::Rows(bad_rows));
    }
    Ok(CheckedFile { advertisers: advertisers.into_iter().map(|(_, advertiser)| advertiser).collect(), new })
}

pub fn parse_flag(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("«{text}» is not a boolean (true/false, 1/0, yes/no)")),
    }
}

pub fn parse_optional_email(text: &str) -> Result<Option<Email>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    Email::parse(text).map(Some).map_err(|error| error.to_string())
}

pub fn blank_to_none(text: &str) -> Option<String> {
    let trimmed = text.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// A file's rows by line: the good ones as changes, the bad ones with what is wrong.
struct Rows {
    changes: Vec<(u64, AdvertiserChange)>,
    bad: Vec<(u64, String)>,
}

/// Reads every row, each id once, telling `progress` how many bytes are read.
fn read_rows<R: Read>(mut reader: csv::Reader<R>, header: &Header, progress: &mut dyn FnMut(u64)) -> Rows {
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
        progress(record.position().map_or(0, csv::Position::byte));
        match header.change(&record) {
            Ok(change) => match seen.insert(change.id.clone(), line) {
                Some(first) => bad_rows.push((line, format!("id {} is on line {first} too", change.id))),
                None => changes.push((line, change)),
            },
            Err(problems) => bad_rows.push((line, problems.join("; "))),
        }
    }
    Rows { changes, bad: bad_rows }
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
    fn read<R: Read>(reader: &mut csv::Reader<R>) -> Result<Self, String> {
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
