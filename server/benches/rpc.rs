//! The RPC benchmark harness (issue 9): the release `connector-server` against a bare tonic
//! echo built from the same lockfile (this binary, re-run with `--echo-server`: a tonic health
//! service and nothing else), each pinned to its own core when `taskset` exists, with this
//! process as the closed-loop load generator on the other core. Every case runs alternately
//! with the echo, three rounds; the table gives the median (and range) of req/s and of the
//! ratio to the echo run next to it, and p50/p99 latencies, at 16 calls in flight on one
//! HTTP/2 connection. Every answer is checked: a call counts only if its gRPC status is OK,
//! and errors are reported per case.
//!
//! Cases: Health; GetConnector; ListConnectors (50 per page) first page and a deep page of an
//! account with 100,000 connectors; GetAccessToken for Azure (SAS) and OAuth (a cached token);
//! RecordTransfer with all 16 callers on one connector. On SQLite, and on PostgreSQL when
//! `TEST_POSTGRES_URL` is set.
//!
//! Run: `eval "$(scripts/tools.sh)"; cargo bench -p connector-server --bench rpc`.
//! `RPC_BENCH_SECS` sets each run's length (default 2), `RPC_BENCH_CONNECTORS` the deep
//! account's size (default 100000), `RPC_BENCH_RUST_LOG` the servers' log level (default
//! `warn`; `info` adds a log line per call).

use std::{
    future::Future,
    pin::Pin,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use base64::Engine as _;
use connector_client::{ConnectorClient, pb};
use connector_server::{
    access::ApiKey,
    crypto::{MasterKey, Sealer},
};
use sea_orm::{ConnectionTrait as _, Database};
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

const KEY: &str = "rpc-bench-key";
const IN_FLIGHT: usize = 16;
const ROUNDS: usize = 3;

type Answer = Pin<Box<dyn Future<Output = bool> + Send>>;
type Call = Arc<dyn Fn() -> Answer + Send + Sync>;
type MakeCall = fn(ConnectorClient, Arc<Seeded>) -> Answer;

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|arg| arg == "--echo-server") {
        echo_server(args[at + 1].parse().expect("a port")).await;
        return;
    }
    let seconds: u64 = env_number("RPC_BENCH_SECS", 2);
    let deep: usize = env_number("RPC_BENCH_CONNECTORS", 100_000);
    let pinned = pin_self(1);
    println!(
        "rpc bench: {seconds} s per run, {IN_FLIGHT} in flight, {ROUNDS} rounds; cores pinned: {pinned}"
    );
    run_backend("SQLite", None, seconds, deep, pinned).await;
    match std::env::var("TEST_POSTGRES_URL") {
        Ok(admin_url) => {
            let name = format!("rpc_bench_{}", std::process::id());
            let admin = Database::connect(admin_url.as_str())
                .await
                .expect("connect");
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create database");
            let (base, _) = admin_url.rsplit_once('/').expect("a database path");
            run_backend(
                "PostgreSQL",
                Some(format!("{base}/{name}")),
                seconds,
                deep,
                pinned,
            )
            .await;
            admin
                .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
                .await
                .ok();
        }
        Err(_) => println!("PostgreSQL: skipped (TEST_POSTGRES_URL not set)"),
    }
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// The servers' `RUST_LOG`: `warn` unless `RPC_BENCH_RUST_LOG` says otherwise (`info` measures
/// the per-call log lines; `CONNECTOR_LOG_FORMAT` passes through to choose their format).
fn server_log_level() -> String {
    std::env::var("RPC_BENCH_RUST_LOG").unwrap_or_else(|_| "warn".to_owned())
}

/// Pins this process to `core` with `taskset`; whether that worked.
fn pin_self(core: usize) -> bool {
    Command::new("taskset")
        .args(["-acp", &core.to_string(), &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// `program args`, on core 0 when pinning works.
fn spawn_pinned(pinned: bool, program: &str, args: &[&str], env: &[(&str, String)]) -> Child {
    let mut command = if pinned {
        let mut command = Command::new("taskset");
        command.args(["-c", "0", program]);
        command
    } else {
        Command::new(program)
    };
    command
        .args(args)
        .envs(env.iter().map(|(name, value)| (*name, value.as_str())))
        .env("RUST_LOG", server_log_level())
        .stdout(Stdio::null())
        // Per-call log lines (RPC_BENCH_RUST_LOG=info) are written, and thrown away.
        .stderr(if server_log_level() == "warn" {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .spawn()
        .expect("spawn")
}

async fn echo_server(port: u16) {
    let (_, health) = tonic_health::server::health_reporter();
    tonic::transport::Server::builder()
        .add_service(health)
        .serve(([127, 0, 0, 1], port).into())
        .await
        .expect("echo server");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

async fn channel(port: u16) -> Channel {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        match Channel::from_shared(format!("http://127.0.0.1:{port}"))
            .expect("endpoint")
            .connect()
            .await
        {
            Ok(channel) => {
                let mut health = HealthClient::new(channel.clone());
                if health
                    .check(HealthCheckRequest::default())
                    .await
                    .is_ok_and(|answer| answer.into_inner().status == 1)
                {
                    return channel;
                }
            }
            Err(_) if Instant::now() < deadline => {}
            Err(error) => panic!("port {port} never served: {error}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct Run {
    ok: u64,
    errors: u64,
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

/// `IN_FLIGHT` closed-loop callers of `call` for `seconds`.
async fn measure(call: &Call, seconds: u64) -> Run {
    // Warm up.
    for _ in 0..50 {
        call().await;
    }
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut callers = Vec::new();
    for _ in 0..IN_FLIGHT {
        let call = call.clone();
        callers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            while Instant::now() < until {
                let began = Instant::now();
                if call().await {
                    latencies.push(began.elapsed());
                } else {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for caller in callers {
        let (some, failed) = caller.await.expect("caller");
        latencies.extend(some);
        errors += failed;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or_default()
    };
    Run {
        ok: latencies.len() as u64,
        errors,
        per_second: latencies.len() as f64 / elapsed,
        p50: at(0.50),
        p99: at(0.99),
    }
}

fn median_and_range(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (
        values[values.len() / 2],
        values[0],
        values[values.len() - 1],
    )
}

async fn run_backend(
    backend: &str,
    database_url: Option<String>,
    seconds: u64,
    deep: usize,
    pinned: bool,
) {
    let workdir = tempfile::tempdir().expect("temp dir");
    let master = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
    let port = free_port();
    let config = workdir.path().join("connector.toml");
    let mut text = format!(
        "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n\
         azure_blob_endpoint = \"http://127.0.0.1:9/{{account}}\"\n\
         microsoft_login = \"http://127.0.0.1:9\"\nmicrosoft_graph = \"http://127.0.0.1:9\"\n\
         [master_key]\nid = \"bench\"\nkey = \"{master}\"\n\
         [[api_keys]]\nid = \"bench\"\nsha256 = \"{}\"\n\
         [oauth.onedrive-consumer]\nclient_id = \"bench\"\nclient_secret = \"bench\"\n",
        workdir.path().join("data").display(),
        hex::encode(ApiKey::hash(KEY)),
    );
    if let Some(url) = &database_url {
        text = format!("database_url = \"{url}\"\n{text}");
    }
    // The same server with the row cache off, for the instruction counts of the database path.
    let uncached_config = workdir.path().join("connector-uncached.toml");
    std::fs::write(&uncached_config, format!("row_cache_ttl_ms = 0\n{text}")).expect("config");
    std::fs::write(&config, text).expect("config");
    let mut server = spawn_pinned(
        pinned,
        env!("CARGO_BIN_EXE_connector-server"),
        &["--config", &config.display().to_string()],
        &[],
    );
    let echo_port = free_port();
    let me = std::env::current_exe().expect("this binary");
    let mut echo = spawn_pinned(
        pinned,
        &me.display().to_string(),
        &["--echo-server", &echo_port.to_string()],
        &[],
    );
    let server_channel = channel(port).await;
    let echo_channel = channel(echo_port).await;

    let url = database_url.unwrap_or_else(|| {
        connector_server::persistence::Store::sqlite_url(&workdir.path().join("data"))
    });
    let sealer = Sealer::new(
        &MasterKey::from_base64("bench", &master).expect("master key"),
        &[],
    );
    let seeded = seed(&url, &sealer, deep).await;
    let client = ConnectorClient::connect(format!("http://127.0.0.1:{port}"), KEY)
        .await
        .expect("client");
    // A token to a deep page: page through to the last thousand.
    let mut deep_token = String::new();
    for _ in 0..deep.saturating_sub(1000) / 1000 {
        deep_token = client
            .list_connectors(pb::ListConnectorsRequest {
                parent: "accounts/deep".into(),
                page_size: 1000,
                page_token: deep_token,
                ..Default::default()
            })
            .await
            .expect("page")
            .next_page_token;
    }

    let echo_call: Call = {
        let channel = echo_channel.clone();
        Arc::new(move || {
            let mut health = HealthClient::new(channel.clone());
            Box::pin(async move { health.check(HealthCheckRequest::default()).await.is_ok() })
        })
    };
    let cases = make_cases(&server_channel, &client, &seeded, &deep_token);

    println!("\n{backend} ({deep} connectors in the deep account)");
    println!(
        "| call | req/s (median, range) | ratio to echo (median, range) | p50 | p99 | errors |"
    );
    println!("|---|---|---|---|---|---|");
    let mut echo_runs = Vec::new();
    for (name, call) in &cases {
        let mut rates = Vec::new();
        let mut ratios = Vec::new();
        let mut last = None;
        let mut errors = 0;
        for _ in 0..ROUNDS {
            let baseline = measure(&echo_call, seconds).await;
            let run = measure(call, seconds).await;
            ratios.push(run.per_second / baseline.per_second);
            rates.push(run.per_second);
            errors += run.errors + baseline.errors;
            echo_runs.push(baseline);
            last = Some(run);
        }
        let last = last.expect("a run");
        let (rate, rate_low, rate_high) = median_and_range(rates);
        let (ratio, ratio_low, ratio_high) = median_and_range(ratios);
        println!(
            "| {name} | {rate:.0} ({rate_low:.0}–{rate_high:.0}) | {ratio:.3} ({ratio_low:.3}–{ratio_high:.3}) | {:.2} ms | {:.2} ms | {errors} of {} |",
            last.p50.as_secs_f64() * 1000.0,
            last.p99.as_secs_f64() * 1000.0,
            last.ok + last.errors
        );
    }
    let (echo_rate, low, high) =
        median_and_range(echo_runs.iter().map(|run| run.per_second).collect());
    let echo_p99 = median_and_range(
        echo_runs
            .iter()
            .map(|run| run.p99.as_secs_f64() * 1000.0)
            .collect(),
    );
    println!(
        "| (echo) | {echo_rate:.0} ({low:.0}–{high:.0}) | 1 | | {:.2} ms (median of runs) | |",
        echo_p99.0
    );
    let _ = server.kill();
    let _ = echo.kill();
    let _ = server.wait();
    let _ = echo.wait();

    if std::env::var("RPC_BENCH_CALLGRIND").as_deref() == Ok("0") {
        return;
    }
    if Command::new("valgrind").arg("--version").output().is_err() {
        println!("instructions per call: skipped (no valgrind)");
        return;
    }
    println!(
        "\n{backend}: instructions per call under callgrind (one call at a time, {CALLGRIND_CALLS} calls)"
    );
    println!("| call | instructions per call | ratio to echo |");
    println!("|---|---|---|");
    let echo_port = free_port();
    let echo_cost = callgrind(
        &me.display().to_string(),
        &["--echo-server", &echo_port.to_string()],
        echo_port,
        |channel, _| vec![("(echo) Health", health_call(channel))],
    )
    .await[0]
        .1;
    let costs = callgrind(
        env!("CARGO_BIN_EXE_connector-server"),
        &["--config", &config.display().to_string()],
        port,
        |channel, client| {
            make_cases(channel, client, &seeded, &deep_token)
                .into_iter()
                .filter(|(name, _)| !name.starts_with("RecordTransfer"))
                .collect()
        },
    )
    .await;
    let uncached = callgrind(
        env!("CARGO_BIN_EXE_connector-server"),
        &["--config", &uncached_config.display().to_string()],
        port,
        |channel, client| {
            make_cases(channel, client, &seeded, &deep_token)
                .into_iter()
                .filter(|(name, _)| name.starts_with("Get"))
                .collect()
        },
    )
    .await;
    for (name, cost) in costs {
        println!(
            "| {name} | {:.0}k | {:.2} |",
            cost / 1000.0,
            echo_cost / cost
        );
    }
    for (name, cost) in uncached {
        println!(
            "| {name}, row cache off (`row_cache_ttl_ms = 0`) | {:.0}k | {:.2} |",
            cost / 1000.0,
            echo_cost / cost
        );
    }
    println!("| (echo) Health | {:.0}k | 1 |", echo_cost / 1000.0);
}

const CALLGRIND_CALLS: usize = 300;

fn health_call(channel: &Channel) -> Call {
    let channel = channel.clone();
    Arc::new(move || {
        let mut health = HealthClient::new(channel.clone());
        Box::pin(async move { health.check(HealthCheckRequest::default()).await.is_ok() })
    })
}

/// Runs `program` under callgrind and, for each case `make_cases` gives, the instructions the
/// whole process (every thread) executed per call: counters are dumped (and so zeroed) after a
/// warm-up and after each case's `CALLGRIND_CALLS` calls, one at a time.
async fn callgrind(
    program: &str,
    args: &[&str],
    port: u16,
    make_cases: impl FnOnce(&Channel, &ConnectorClient) -> Vec<(&'static str, Call)>,
) -> Vec<(&'static str, f64)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("callgrind.out");
    let mut child = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(program)
        .args(args)
        .env("RUST_LOG", server_log_level())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("valgrind");
    let channel = channel(port).await;
    let client = ConnectorClient::connect(format!("http://127.0.0.1:{port}"), KEY)
        .await
        .expect("client");
    let cases = make_cases(&channel, &client);
    let dump = |dumps: &mut usize| {
        let status = Command::new("callgrind_control")
            .args(["-d", &child.id().to_string()])
            .stdout(Stdio::null())
            .status()
            .expect("callgrind_control");
        assert!(status.success(), "callgrind_control -d failed");
        *dumps += 1;
        read_totals(dir.path(), *dumps)
    };
    let mut dumps = 0;
    for (_, call) in &cases {
        for _ in 0..50 {
            assert!(call().await, "warm-up call failed");
        }
    }
    dump(&mut dumps);
    let mut costs = Vec::new();
    for (name, call) in &cases {
        for _ in 0..CALLGRIND_CALLS {
            assert!(call().await, "{name} failed under callgrind");
        }
        costs.push((*name, dump(&mut dumps) as f64 / CALLGRIND_CALLS as f64));
    }
    let _ = child.kill();
    let _ = child.wait();
    costs
}

/// The instruction total of callgrind's `number`th dump in `dir`.
fn read_totals(dir: &std::path::Path, number: usize) -> u64 {
    let suffix = format!(".{number}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = std::fs::read_dir(dir)
            .expect("callgrind dir")
            .filter_map(Result::ok)
            .find(|entry| entry.file_name().to_string_lossy().ends_with(&suffix));
        if let Some(text) = found.and_then(|entry| std::fs::read_to_string(entry.path()).ok())
            && let Some(total) = text
                .lines()
                .find_map(|line| {
                    line.strip_prefix("totals:")
                        .or(line.strip_prefix("summary:"))
                })
                .and_then(|value| value.trim().split(' ').next()?.parse().ok())
        {
            return total;
        }
        assert!(
            Instant::now() < deadline,
            "no callgrind dump {number} in {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The cases, each a call against the server behind `channel`/`client`.
fn make_cases(
    channel: &Channel,
    client: &ConnectorClient,
    seeded: &Arc<Seeded>,
    deep_token: &str,
) -> Vec<(&'static str, Call)> {
    let mut cases: Vec<(&str, Call)> = Vec::new();
    {
        let channel = channel.clone();
        cases.push((
            "Health",
            Arc::new(move || {
                let mut health = HealthClient::new(channel.clone());
                Box::pin(async move { health.check(HealthCheckRequest::default()).await.is_ok() })
            }),
        ));
    }
    let rpc = |make: MakeCall| -> Call {
        let client = client.clone();
        let seeded = seeded.clone();
        Arc::new(move || make(client.clone(), seeded.clone()))
    };
    cases.push((
        "GetConnector",
        rpc(|client, seeded| {
            Box::pin(async move {
                client
                    .get_connector(pb::GetConnectorRequest {
                        name: seeded.azure.clone(),
                    })
                    .await
                    .is_ok()
            })
        }),
    ));
    cases.push((
        "ListConnectors, first page of 50",
        rpc(|client, _| {
            Box::pin(async move {
                client
                    .list_connectors(pb::ListConnectorsRequest {
                        parent: "accounts/deep".into(),
                        page_size: 50,
                        ..Default::default()
                    })
                    .await
                    .is_ok_and(|page| page.connectors.len() == 50)
            })
        }),
    ));
    {
        let client = client.clone();
        let token = deep_token.to_owned();
        cases.push((
            "ListConnectors, deep page of 50",
            Arc::new(move || {
                let client = client.clone();
                let token = token.clone();
                Box::pin(async move {
                    client
                        .list_connectors(pb::ListConnectorsRequest {
                            parent: "accounts/deep".into(),
                            page_size: 50,
                            page_token: token,
                            ..Default::default()
                        })
                        .await
                        .is_ok_and(|page| page.connectors.len() == 50)
                })
            }),
        ));
    }
    cases.push((
        "GetAccessToken, Azure SAS",
        rpc(|client, seeded| {
            Box::pin(async move {
                client
                    .get_access_token(pb::GetAccessTokenRequest {
                        name: seeded.azure.clone(),
                    })
                    .await
                    .is_ok()
            })
        }),
    ));
    cases.push((
        "GetAccessToken, OAuth (cached)",
        rpc(|client, seeded| {
            Box::pin(async move {
                client
                    .get_access_token(pb::GetAccessTokenRequest {
                        name: seeded.oauth.clone(),
                    })
                    .await
                    .is_ok()
            })
        }),
    ));
    cases.push((
        "RecordTransfer, 16 on one connector",
        rpc(|client, seeded| {
            Box::pin(async move {
                client
                    .record_transfer(pb::RecordTransferRequest {
                        name: seeded.hot.clone(),
                        bytes_transferred: 1 << 20,
                    })
                    .await
                    .is_ok()
            })
        }),
    ));

    cases
}

/// The connectors the cases use.
struct Seeded {
    azure: String,
    oauth: String,
    hot: String,
}

/// `deep` Azure connectors in account `deep` (no secrets: only listed), and in account `bench`
/// an Azure connector with a sealed account key, a OneDrive connector with a sealed refresh
/// token and a cached access token valid for a day, and a connector for transfer reports.
async fn seed(url: &str, sealer: &Sealer, deep: usize) -> Arc<Seeded> {
    let db = Database::connect(url).await.expect("connect");
    let postgres = url.starts_with("postgres");
    let blob = |bytes: &[u8]| {
        if postgres {
            format!("'\\x{}'::bytea", hex::encode(bytes))
        } else {
            format!("x'{}'", hex::encode(bytes))
        }
    };
    let far = 4_000_000_000_000_000i64;
    let now = chrono::Utc::now().timestamp_micros();
    let row = |id: &str, account: &str, connector_type: &str, n: usize| {
        format!(
            "('{id}', '{account}', '{connector_type}', 'c{n}', 'AUTHORIZED', NULL, NULL, \
             'x{n:07}', 'x{n:07}', '{{}}', {now}, {now}, {now}, NULL, 1, {far})"
        )
    };
    let insert = |rows: Vec<String>| {
        format!(
            "INSERT INTO connector (id, account, connector_type, display_name, state, \
             deauthorization_reason, deauthorize_time, external_account_id, \
             external_account_label, labels, create_time, update_time, authorize_time, \
             last_transfer_time, revision, inactivity_deadline) VALUES {}",
            rows.join(", ")
        )
    };
    for chunk in 0..deep.div_ceil(1000) {
        let rows = (chunk * 1000..((chunk + 1) * 1000).min(deep))
            .map(|n| {
                row(
                    &uuid::Uuid::now_v7().to_string(),
                    "deep",
                    "azure-blob-storage",
                    n,
                )
            })
            .collect();
        db.execute_unprepared(&insert(rows))
            .await
            .expect("seed the deep account");
    }
    let ids: Vec<String> = (0..3).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    db.execute_unprepared(&insert(vec![
        row(&ids[0], "bench", "azure-blob-storage", 1),
        row(&ids[1], "bench", "onedrive-consumer", 2),
        row(&ids[2], "bench", "azure-blob-storage", 3),
    ]))
    .await
    .expect("seed connectors");
    let account_key = base64::engine::general_purpose::STANDARD.encode([7u8; 64]);
    let access_token = serde_json::json!({
        "token": "cached-access-token",
        "expire_time": now + 86_400_000_000i64,
        "scopes": ["Files.ReadWrite.All"],
    })
    .to_string();
    let secrets = [
        (&ids[0], "account_key", account_key.clone()),
        (&ids[1], "refresh_token", "bench-refresh-token".to_owned()),
        (&ids[1], "access_token", access_token),
        (&ids[2], "account_key", account_key),
    ];
    let values: Vec<String> = secrets
        .iter()
        .map(|(id, field, value)| {
            let sealed = sealer.seal(
                value.as_bytes(),
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
        "INSERT INTO connector_secret (connector_id, field, key_id, nonce, ciphertext) VALUES {}",
        values.join(", ")
    ))
    .await
    .expect("seed secrets");
    db.close().await.ok();
    Arc::new(Seeded {
        azure: format!("accounts/bench/connectors/{}", ids[0]),
        oauth: format!("accounts/bench/connectors/{}", ids[1]),
        hot: format!("accounts/bench/connectors/{}", ids[2]),
    })
}
