//! What intake leaves on disk: the SQLite WAL a burst of leads grew is given back once it ends.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::helpers::{lead, spawn_app};

/// What the store keeps of its WAL file when the WAL starts over.
const WAL_SIZE_KEPT: u64 = 64 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_a_burst_of_leads_grew_shrinks_once_the_burst_is_over() {
    let app = spawn_app().await;
    let wal = PathBuf::from(format!("{}-wal", app.store_url.trim_start_matches("sqlite://")));
    let wal_size = || std::fs::metadata(&wal).map_or(0, |metadata| metadata.len());
    // While commits follow each other with no pause, SQLite cannot start its WAL over: it grows.
    let burst_until = Instant::now() + Duration::from_secs(120);
    let mut sent = 0_u32;
    while wal_size() <= 2 * WAL_SIZE_KEPT {
        assert!(Instant::now() < burst_until, "{sent} leads grew the WAL to {} bytes only", wal_size());
        futures::stream::iter(sent..sent + 500)
            .for_each_concurrent(64, |n| {
                let app = &app;
                async move {
                    app.accept(lead("Всплеск", &format!("+7916{n:07}"))).await;
                }
            })
            .await;
        sent += 500;
    }
    let after_burst = wal_size();
    // A quiet trickle: the WAL starts over at its next write and the file gives the rest back.
    let quiet_until = Instant::now() + Duration::from_secs(20);
    let mut trickle = 0;
    while wal_size() > WAL_SIZE_KEPT && Instant::now() < quiet_until {
        app.accept(lead("После", &format!("+7917{trickle:07}"))).await;
        trickle += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(wal_size() <= WAL_SIZE_KEPT, "the WAL stayed at {} bytes after the burst ({after_burst})", wal_size());
    app.stop().await;
}
