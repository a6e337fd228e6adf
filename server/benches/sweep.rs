//! Benchmark of the inactivity sweeper: time and peak memory to deauthorize 100,000 connectors
//! past their deadline, on SQLite and (when `TEST_POSTGRES_URL` is set) on PostgreSQL.
//!
//! Run: `scripts/tools.sh` (for PostgreSQL), then
//! `TEST_POSTGRES_URL=… cargo bench -p connector-server --bench sweep`.
//! `SWEEP_BENCH_CONNECTORS` changes the count (default 100000).

use std::{sync::Arc, time::Instant};

use connector_server::{
    clock::ManualClock,
    crypto::{MasterKey, Sealer},
    domain::{Connectors, Lifecycle, OAuthSettings, RevocationSettings},
    persistence::Store,
    providers::{azure_blob::AzureBlob, microsoft::Microsoft},
};
use sea_orm::{ConnectionTrait as _, Database};

#[tokio::main]
async fn main() {
    let count: usize = std::env::var("SWEEP_BENCH_CONNECTORS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(100_000);
    let data = tempfile::tempdir().expect("temp dir");
    run("SQLite", &Store::sqlite_url(data.path()), count).await;
    match std::env::var("TEST_POSTGRES_URL") {
        Ok(admin_url) => {
            let name = format!("sweep_bench_{}", std::process::id());
            let admin = Database::connect(admin_url.as_str())
                .await
                .expect("connect");
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create database");
            let (base, _) = admin_url.rsplit_once('/').expect("a database path");
            run("PostgreSQL", &format!("{base}/{name}"), count).await;
            admin
                .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
                .await
                .ok();
        }
        Err(_) => println!("PostgreSQL: skipped (TEST_POSTGRES_URL not set)"),
    }
}

async fn run(backend: &str, url: &str, count: usize) {
    let store = Store::open(url, 10).await.expect("open the store");
    seed(url, count).await;
    let http = reqwest::Client::new();
    let connectors = Connectors::new(
        store,
        Arc::new(Sealer::new(&MasterKey::generate("bench"), &[])),
        AzureBlob::new(
            http.clone(),
            "http://127.0.0.1:9/{account}",
            std::time::Duration::from_secs(3600),
        ),
        Microsoft::new(http, "http://127.0.0.1:9", "http://127.0.0.1:9"),
        OAuthSettings {
            apps: Default::default(),
            redirect_uri: "http://127.0.0.1:9/oauth/callback".into(),
            return_urls: Vec::new(),
            attempt_lifetime: chrono::Duration::minutes(10),
            refresh_skew: chrono::Duration::minutes(5),
            resource_url: "http://127.0.0.1:9".into(),
        },
        Lifecycle {
            inactivity_period: chrono::Duration::days(90),
            revocation: RevocationSettings::default(),
            azure_key_check_interval: chrono::Duration::minutes(15),
        },
        Arc::new(ManualClock::new(chrono::Utc::now())),
    );
    // Peak memory of the sweep alone: reset the process's high-water mark first.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = peak_rss_kib();
    let started = Instant::now();
    let swept = connectors.sweep_inactive(1000).await.expect("sweep");
    let elapsed = started.elapsed();
    let peak = peak_rss_kib();
    assert_eq!(swept as usize, count, "every due connector swept");
    println!(
        "{backend}: swept {swept} connectors in {:.2} s ({:.0}/s); peak RSS {} MiB (was {} MiB before the sweep)",
        elapsed.as_secs_f64(),
        swept as f64 / elapsed.as_secs_f64(),
        peak / 1024,
        before / 1024,
    );
}

/// Writes `count` authorized connectors whose deadline has passed, each with a (dummy) sealed
/// account key for the sweep to erase.
async fn seed(url: &str, count: usize) {
    let db = Database::connect(url).await.expect("connect");
    let blob = if url.starts_with("postgres") {
        "'\\x00'::bytea"
    } else {
        "x'00'"
    };
    for chunk in 0..count.div_ceil(1000) {
        let ids: Vec<String> = (chunk * 1000..((chunk + 1) * 1000).min(count))
            .map(|_| uuid::Uuid::new_v4().to_string())
            .collect();
        let rows: Vec<String> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let n = chunk * 1000 + i;
                format!(
                    "('{id}', 'bench', 'azure-blob-storage', 'c{n}', 'AUTHORIZED', NULL, NULL, \
                     'a{n:07}', 'a{n:07}', '{{}}', 1, 1, 1, NULL, 1, 1)"
                )
            })
            .collect();
        db.execute_unprepared(&format!(
            "INSERT INTO connector (id, account, connector_type, display_name, state, \
             deauthorization_reason, deauthorize_time, external_account_id, \
             external_account_label, labels, create_time, update_time, authorize_time, \
             last_transfer_time, revision, inactivity_deadline) VALUES {}",
            rows.join(", ")
        ))
        .await
        .expect("seed");
        let secrets: Vec<String> = ids
            .iter()
            .map(|id| format!("('{id}', 'account_key', 'bench', {blob}, {blob})"))
            .collect();
        db.execute_unprepared(&format!(
            "INSERT INTO connector_secret (connector_id, field, key_id, nonce, ciphertext) \
             VALUES {}",
            secrets.join(", ")
        ))
        .await
        .expect("seed secrets");
    }
    db.close().await.ok();
}

/// The process's peak resident set size (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|value| value.parse().ok())
        })
        .unwrap_or(0)
}
