//! `leadgate leads list|show|retry`: operators' view of the queue, straight from the database.

use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Config;
use crate::domain::advertiser::AdvertiserId;
use crate::domain::{LeadId, LeadStatus, Routing, SourceId};
use crate::store::{Requeue, Store};

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
}

pub async fn run(action: LeadsAction, config: &Config) -> anyhow::Result<ExitCode> {
    let store = Store::open(&config.store).await?;
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
