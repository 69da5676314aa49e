//! `leadgate advertisers import`: the portal's CSV, every row checked before anything is written.

use std::fs::File;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use super::refuse;
use crate::domain::SourceId;
use crate::domain::advertiser_file::{self, FileProblems};
use crate::store::Store;

pub(super) async fn import(store: &Store, source: &SourceId, file: &Path) -> anyhow::Result<ExitCode> {
    let size = std::fs::metadata(file).with_context(|| format!("reading {}", file.display()))?.len();
    let reader = File::open(file).with_context(|| format!("reading {}", file.display()))?;
    let stored = store.list_advertisers(Some(source), true).await?;
    // A progress bar (on a terminal only) for large files.
    let progress = ProgressBar::new(size).with_style(
        ProgressStyle::with_template("checking {wide_bar} {bytes}/{total_bytes}").context("the progress template")?,
    );
    let checked = advertiser_file::check(reader, source, stored, &mut |at| progress.set_position(at));
    progress.finish_and_clear();
    let checked = match checked {
        Ok(checked) => checked,
        Err(FileProblems::Header(problem)) => return Ok(refuse(format_args!("{}: {problem}", file.display()))),
        Err(FileProblems::Rows(bad_rows)) => {
            for (line, problem) in &bad_rows {
                eprintln!("{}:{line}: {problem}", file.display());
            }
            return Ok(refuse(format_args!("{} bad row(s); nothing was written", bad_rows.len())));
        }
    };
    store.upsert_advertisers(&checked.advertisers).await?;
    println!(
        "{} advertiser(s) of source {source} imported: {} new, {} updated",
        checked.advertisers.len(),
        checked.new,
        checked.advertisers.len() - checked.new
    );
    Ok(ExitCode::SUCCESS)
}
