//! `leadgate leads list|show|route|retry|purge|erase`: operators' view of the queue, straight from the database.

use std::process::ExitCode;

use clap::Subcommand;

use crate::config::{Config, Retention};
use crate::domain::advertiser::AdvertiserId;
use crate::domain::{Email, LeadId, LeadStatus, Phone, Routing, SourceId};
use crate::lifecycle::Erased;
use crate::store::lifecycle::Person;
use crate::store::{FileStore, Requeue, Store};

#[derive(Subcommand)]
pub enum LeadsAction {
    /// The newest leads first.
    List {
        /// pending, processing, approved, rejected, skipped, dead or unrouted.
        #[arg(long)]
        status: Option<String>,
        /// Only the leads of this source (its name in the configuration).
        #[arg(long)]
        source: Option<String>,
        /// At most this many leads, the newest.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// One lead with its whole history, as JSON.
    Show {
        /// The lead's id, as the intake answered it and `leads list` shows it.
        id: i64,
    },
    /// Give an unrouted portal lead its advertiser, and queue it.
    Route {
        /// The unrouted lead's id.
        id: i64,
        /// The id of an advertiser of the lead's source (as `advertisers list` shows it).
        #[arg(long)]
        advertiser: String,
    },
    /// Send leads now: dead ones back into the queue, pending ones without waiting for their next
    /// attempt; a running `serve` picks them up within `[worker] interval`.
    Retry {
        /// The lead to send now (dead or pending).
        #[arg(required_unless_present_any = ["dead", "all_waiting"], conflicts_with_all = ["dead", "all_waiting"])]
        id: Option<i64>,
        /// Every dead lead.
        #[arg(long, conflicts_with = "all_waiting")]
        dead: bool,
        /// Every pending lead waiting for its next attempt, e.g. once the CRM is back after an outage.
        #[arg(long)]
        all_waiting: bool,
        /// Only the leads of this source (its name in the configuration).
        #[arg(long)]
        source: Option<String>,
    },
    /// Remove settled leads (with their history, files and calls) received longer ago than this,
    /// as `[retention] leads` does in the background; prints what was removed.
    Purge {
        /// An age such as "365d" or "26weeks".
        #[arg(long, value_parser = humantime::parse_duration)]
        older_than: std::time::Duration,
    },
    /// Erase every lead of one person (152-FZ, LGPD): their data goes, an anonymous tombstone of
    /// each lead stays. Leads not yet delivered are cancelled; one being delivered refuses it.
    Erase {
        /// Their phone, in any spelling: it is normalized as intake does.
        #[arg(long, required_unless_present = "email")]
        phone: Option<String>,
        /// Their e-mail address, in any letter case.
        #[arg(long)]
        email: Option<String>,
    },
}

pub async fn run(action: LeadsAction, config: &Config) -> anyhow::Result<ExitCode> {
    let store = Store::open_existing(&config.store).await?;
    match action {
        LeadsAction::List { status, source, limit } => {
            let status = match status.as_deref().map(|text| LeadStatus::parse(text).ok_or(text)).transpose() {
                Ok(status) => status,
                Err(text) => {
                    eprintln!(
                        "«{text}» is not a status (pending, processing, approved, rejected, skipped, dead, unrouted)"
                    );
                    return Ok(ExitCode::from(2));
                }
            };
            let source = source.map(SourceId);
            let leads = store.list_leads(status, source.as_ref(), limit).await?;
            println!(
                "{:>8}  {:<10}  {:<14}  {:<16}  {:<20}  last error",
                "id", "status", "source", "phone", "received"
            );
            for lead in leads {
                if lead.erased_at.is_some() {
                    let received = lead.created_at.format("%Y-%m-%d %H:%M:%S").to_string();
                    let (status, source) = (lead.status.as_str(), &lead.fields.source.0);
                    println!("{:>8}  {status:<10}  {source:<14}  {:<16}  {received:<20}", lead.id, "(erased)");
                    continue;
                }
                let received = lead.created_at.format("%Y-%m-%d %H:%M:%S").to_string();
                let error = lead.last_error.unwrap_or_default();
                let phone = lead.fields.phone.e164().to_owned();
                println!(
                    "{:>8}  {:<10}  {:<14}  {:<16}  {:<20}  {}",
                    lead.id,
                    lead.status.as_str(),
                    lead.fields.source.0,
                    phone,
                    received,
                    error.chars().take(80).collect::<String>()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        LeadsAction::Show { id } => {
            let Some(lead) = store.find_lead(LeadId(id)).await? else {
                eprintln!("lead {id} does not exist");
                return Ok(ExitCode::from(1));
            };
            let history = store.history(LeadId(id)).await?;
            println!("{:#}", crate::http::lead_status::report(&lead, &history));
            Ok(ExitCode::SUCCESS)
        }
        LeadsAction::Route { id, advertiser } => route(&store, LeadId(id), &advertiser).await,
        LeadsAction::Purge { older_than } => {
            let files = FileStore::for_upkeep(&config.files_dir);
            let retention = Retention { leads: Some(older_than), history: None, files: None };
            let purged = crate::lifecycle::purge(&store, &files, retention, chrono::Utc::now()).await?;
            println!("removed {} settled lead(s) and {} file(s)", purged.leads, purged.files);
            Ok(ExitCode::SUCCESS)
        }
        LeadsAction::Erase { phone, email } => erase(&store, config, phone.as_deref(), email.as_deref()).await,
        LeadsAction::Retry { id: Some(id), .. } => {
            let result = store.resend(LeadId(id), "cli").await?;
            Ok(report(result, LeadId(id), "is due now", "only dead and pending leads are sent again"))
        }
        LeadsAction::Retry { id: None, source, all_waiting, .. } => {
            let source = source.map(SourceId);
            let (leads, what) = if all_waiting {
                (store.waiting_leads(source.as_ref()).await?, "waiting lead(s) due now")
            } else {
                (store.dead_leads(source.as_ref()).await?, "dead lead(s) queued again")
            };
            let mut queued = 0;
            for id in leads {
                if store.resend(id, "cli").await? == Requeue::Queued {
                    queued += 1;
                }
            }
            println!("{queued} {what}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn erase(store: &Store, config: &Config, phone: Option<&str>, email: Option<&str>) -> anyhow::Result<ExitCode> {
    // Parsed as intake parses them, so any spelling of the number finds what intake stored.
    let e164 = match phone.map(|phone| Phone::parse(phone, config.phone_region)).transpose() {
        Ok(phone) => phone.map(|phone| phone.e164().to_owned()),
        Err(error) => {
            eprintln!("{error}");
            return Ok(ExitCode::from(2));
        }
    };
    let email = match email.map(Email::parse).transpose() {
        Ok(email) => email.map(|email| email.as_str().to_owned()),
        Err(error) => {
            eprintln!("{error}");
            return Ok(ExitCode::from(2));
        }
    };
    let files = FileStore::for_upkeep(&config.files_dir);
    match crate::lifecycle::erase(store, &files, &Person { e164, email }, "cli").await? {
        Erased::Leads { leads, files } => {
            println!("erased {leads} lead(s) of this person and {files} file(s); their tombstones stay");
            Ok(ExitCode::SUCCESS)
        }
        Erased::InDelivery(count) => {
            eprintln!(
                "{count} lead(s) of this person are being delivered to the CRM right now; nothing was erased. \
                 Run the command again in a minute, once the delivery has settled."
            );
            Ok(ExitCode::from(1))
        }
    }
}

async fn route(store: &Store, id: LeadId, advertiser: &str) -> anyhow::Result<ExitCode> {
    let Some(lead) = store.find_lead(id).await? else {
        eprintln!("lead {id} does not exist");
        return Ok(ExitCode::from(1));
    };
    let found = match AdvertiserId::parse(advertiser) {
        Ok(advertiser_id) => store.find_advertiser(&lead.fields.source, &advertiser_id).await?,
        Err(_) => None,
    };
    let Some(found) = found else {
        eprintln!("source {} has no advertiser «{advertiser}»", lead.fields.source);
        return Ok(ExitCode::from(1));
    };
    let result = store.route_lead(id, &Routing::from(found), "cli").await?;
    Ok(report(
        result,
        id,
        &format!("is routed to advertiser {advertiser} and queued"),
        "only unrouted leads are routed",
    ))
}

fn report(result: Requeue, id: LeadId, done: &str, only: &str) -> ExitCode {
    match result {
        Requeue::Queued => {
            println!("lead {id} {done}");
            ExitCode::SUCCESS
        }
        Requeue::WrongStatus(status) => {
            eprintln!("lead {id} is {}; {only}", status.as_str());
            ExitCode::from(1)
        }
        Requeue::NotFound => {
            eprintln!("lead {id} does not exist");
            ExitCode::from(1)
        }
    }
}
