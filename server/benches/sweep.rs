//! Benchmark of the inactivity sweeper and the revocation outbox: time and peak memory to
//! deauthorize 100,000 connectors past their deadline (half Azure, half OneDrive), on SQLite and
//! (when `TEST_POSTGRES_URL` is set) on PostgreSQL. Each one: state written, secrets erased, a
//! `DEAUTHORIZED` event, and its revocation (an outbox row for a refresh token, a `NOT_SUPPORTED`
//! outcome event for a key). Then the outbox worker revokes the queued refresh tokens at the
//! identity emulator (in this process, over loopback HTTP) until the outbox is empty.
//!
//! Run: `scripts/tools.sh` (for PostgreSQL), then
//! `TEST_POSTGRES_URL=… cargo bench -p connector-server --bench sweep`.
//! `SWEEP_BENCH_CONNECTORS` changes the count (default 100000).

use std::{sync::Arc, time::Instant};

use connector_server::{
    clock::ManualClock,
    crypto::{MasterKey, Sealer},
    domain::{Dependencies, LifecycleSettings, OAuthSettings, RevocationSettings, Unobserved},
    persistence::Store,
    providers::{
        azure_blob::AzureBlob,
        microsoft::{Microsoft, MicrosoftApp, OAuthApp},
    },
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
    let sealer = Arc::new(Sealer::new(&MasterKey::generate("bench"), &[]));
    seed(url, count, &sealer).await;
    let emulator = identity_emulator::Emulator::start()
        .await
        .expect("the identity emulator");
    let http = reqwest::Client::new();
    let catalogue = connector_server::connector_types::catalogue();
    let type_of = |id: &str| catalogue.parse(id).expect("a type of this build");
    let (azure, onedrive) = (type_of("azure-blob-storage"), type_of("onedrive-consumer"));
    let services = connector_server::domain::compose(Dependencies {
        store,
        sealer,
        catalogue: catalogue.clone(),
        credential_providers: [(
            azure,
            Arc::new(AzureBlob::new(
                http.clone(),
                "http://127.0.0.1:9/{account}",
                std::time::Duration::from_secs(3600),
            )) as Arc<dyn connector_server::providers::credentials::CredentialProvider>,
        )]
        .into(),
        oauth: OAuthSettings {
            // OneDrive tokens are revocable: sweeping them fills the revocation outbox.
            providers: [(
                onedrive,
                Arc::new(MicrosoftApp::new(
                    Microsoft::new(http, "http://127.0.0.1:9", "http://127.0.0.1:9"),
                    OAuthApp {
                        client_id: identity_emulator::fixtures::CLIENT_ID.into(),
                        client_secret: identity_emulator::fixtures::CLIENT_SECRET.to_owned().into(),
                        tenant: "consumers".into(),
                        scopes: Vec::new(),
                        revocation_url: Some(emulator.revoke_url()),
                    },
                    false,
                    "http://127.0.0.1:9",
                )) as Arc<dyn connector_server::providers::oauth::OAuthProvider>,
            )]
            .into(),
            redirect_uri: "http://127.0.0.1:9/oauth/callback".into(),
            return_urls: Vec::new(),
            attempt_lifetime: chrono::Duration::minutes(10),
            refresh_skew: chrono::Duration::minutes(5),
            callback_completes: false,
        },
        lifecycle: LifecycleSettings {
            inactivity_period: chrono::Duration::days(90),
            revocation: RevocationSettings::default(),
            credential_check_interval: chrono::Duration::minutes(15),
        },
        clock: Arc::new(ManualClock::new(chrono::Utc::now())),
        observer: Arc::new(Unobserved),
    });
    // Peak memory of the sweep alone: reset the process's high-water mark first.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = peak_rss_kib();
    let started = Instant::now();
    let swept = services
        .lifecycle
        .sweep_inactive(1000)
        .await
        .expect("sweep");
    let elapsed = started.elapsed();
    let peak = peak_rss_kib();
    assert_eq!(swept as usize, count, "every due connector swept");
    let queued = Database::connect(url)
        .await
        .expect("connect")
        .query_one_raw(sea_orm::Statement::from_string(
            if url.starts_with("postgres") {
                sea_orm::DbBackend::Postgres
            } else {
                sea_orm::DbBackend::Sqlite
            },
            "SELECT COUNT(*) FROM revocation",
        ))
        .await
        .expect("count")
        .and_then(|row| row.try_get_by_index::<i64>(0).ok())
        .unwrap_or(0);
    assert_eq!(queued as usize, count / 2, "every refresh token queued");
    println!(
        "{backend}: swept {swept} connectors in {:.2} s ({:.0}/s); peak RSS {} MiB (was {} MiB before the sweep)",
        elapsed.as_secs_f64(),
        swept as f64 / elapsed.as_secs_f64(),
        peak / 1024,
        before / 1024,
    );

    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = peak_rss_kib();
    let started = Instant::now();
    let revoked = services.revocations.process().await.expect("revocations");
    let elapsed = started.elapsed();
    let peak = peak_rss_kib();
    assert_eq!(revoked as usize, count / 2, "every queued token revoked");
    assert_eq!(emulator.counters().revoke as usize, count / 2);
    println!(
        "{backend}: revoked {revoked} queued refresh tokens in {:.2} s ({:.0}/s, {} at a time); peak RSS {} MiB (was {} MiB before)",
        elapsed.as_secs_f64(),
        revoked as f64 / elapsed.as_secs_f64(),
        RevocationSettings::default().concurrency,
        peak / 1024,
        before / 1024,
    );
}

/// Writes `count` authorized connectors whose deadline has passed: half Azure connectors with a
/// (dummy) sealed account key, half OneDrive connectors with a sealed refresh token, for the sweep
/// to erase (and, for the tokens, queue for revocation).
async fn seed(url: &str, count: usize, sealer: &Sealer) {
    let db = Database::connect(url).await.expect("connect");
    let blob = |bytes: &[u8]| {
        if url.starts_with("postgres") {
            format!("'\\x{}'::bytea", hex::encode(bytes))
        } else {
            format!("x'{}'", hex::encode(bytes))
        }
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
                let connector_type = connector_type_of(n);
                format!(
                    "('{id}', 'bench', '{connector_type}', 'c{n}', 'AUTHORIZED', NULL, NULL, \
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
            .enumerate()
            .map(|(i, id)| {
                let field = match connector_type_of(chunk * 1000 + i) {
                    "azure-blob-storage" => "account_key",
                    _ => "refresh_token",
                };
                let sealed = sealer.seal(
                    format!("token-of-{id}").as_bytes(),
                    format!("connector/{id}/{field}").as_bytes(),
                );
                format!(
                    "('{id}', '{field}', '{}', {}, {})",
                    sealed.key_id,
                    blob(&sealed.nonce),
                    blob(&sealed.ciphertext)
                )
            })
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

fn connector_type_of(n: usize) -> &'static str {
    if n.is_multiple_of(2) {
        "azure-blob-storage"
    } else {
        "onedrive-consumer"
    }
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
