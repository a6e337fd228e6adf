//! Prometheus metrics: what the process counts as it works (calls, refreshes, provider calls,
//! sweeps, revocations, watches), and what is read at scrape time (connectors by type and
//! state, the revocation outbox, the database pool). Served on their own listen address
//! (`metrics_listen`, off by default) by [`serve`], never on the gRPC port.
//!
//! Every label value is from a closed set (method names, status codes, connector types,
//! outcomes): nothing a caller sends becomes a label, so a client cannot grow the series. And
//! every series of those sets exists from start-up, at zero, so a dashboard or an alert rule
//! has data from the first scrape. Beside our own `connector_*` families (and
//! `connector_build_info`), the calls are counted under the gRPC names dashboards expect
//! ([`grpc`]) and the process under the Prometheus `process_*` names ([`process`]).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use prometheus_client::{
    encoding::text::encode,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};
use tokio::net::TcpListener;

use crate::{domain::connector_type::Catalogue, persistence::Store};

mod grpc;
mod observer;
mod process;

use grpc::GrpcMetrics;
pub(crate) use grpc::{RpcMethod, method as rpc_method};

/// Two fixed labels, e.g. `type` and `outcome`.
type Pair = [(&'static str, &'static str); 2];
/// One fixed label.
type Single = [(&'static str, &'static str); 1];
/// The connector gauge's labels: a type id and a state.
type TypeState = [(&'static str, String); 2];

/// How long values read from the database at scrape time are reused: a scrape every second
/// from several Prometheus servers costs the database one pair of counts per interval.
const SCRAPE_REFRESH: Duration = Duration::from_secs(5);

/// Longest a scrape waits for the database; a scrape of a server whose database is gone
/// answers with the process's own counters and the last values read.
const SCRAPE_DATABASE_TIMEOUT: Duration = Duration::from_secs(2);

/// The process's metrics. Cheap to share (`Arc`); recording is a few atomic operations.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    grpc: GrpcMetrics,
    token_refreshes: Family<Pair, Counter>,
    provider_duration: Family<Pair, Histogram, fn() -> Histogram>,
    sweeps: Family<Single, Counter>,
    deauthorizations: Family<Single, Counter>,
    revocations: Family<Single, Counter>,
    watch_streams: Gauge,
    database_up: Gauge,
    connectors: Family<TypeState, Gauge>,
    connector_series: std::sync::Mutex<std::collections::HashSet<TypeState>>,
    outbox_depth: Gauge,
    outbox_oldest_age: Gauge<f64, AtomicU64>,
    pool_connections: Family<Single, Gauge>,
    pool_max: Gauge,
    pool_timeouts: Counter,
    scraped: tokio::sync::Mutex<Option<Instant>>,
}

fn latency_histogram() -> Histogram {
    // 1 ms to about 33 s: a cached token is well under a millisecond (the first bucket), a
    // provider round trip tens to hundreds of milliseconds, a hung provider the timeout.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

// The closed label sets of the counters, each series created at zero at start-up: a
// dashboard or an alert rule sees 0 from the first scrape, not "no data" until the first
// event (a refresh-failure ratio would otherwise be blind until a refresh fails).

/// `connector_token_refreshes_total{outcome}`.
const REFRESH_OUTCOMES: [&str; 3] = ["refreshed", "grant_lost", "failed"];
/// `connector_sweeps_total{outcome}`.
const SWEEP_OUTCOMES: [&str; 2] = ["ok", "failed"];
/// `connector_deauthorizations_total{reason}`.
const DEAUTHORIZATION_REASONS: [&str; 3] = ["inactivity", "revoked", "expired"];
/// `connector_revocations_total{outcome}`.
const REVOCATION_OUTCOMES: [&str; 4] = ["revoked", "not_supported", "failed", "retry"];
/// `connector_connectors{state}`.
const CONNECTOR_STATES: [&str; 2] = ["authorized", "deauthorized"];

impl Metrics {
    /// Every metric, registered, and every series of a closed label set at zero.
    pub fn new() -> Arc<Self> {
        // The gRPC and process families keep the names dashboards know; ours are prefixed.
        let mut registry = Registry::default();
        let grpc = GrpcMetrics::register(&mut registry, latency_histogram);
        registry.register_collector(Box::new(process::ProcessCollector));
        let metrics = Metrics {
            grpc,
            token_refreshes: Family::default(),
            provider_duration: Family::new_with_constructor(latency_histogram),
            sweeps: Family::default(),
            deauthorizations: Family::default(),
            revocations: Family::default(),
            watch_streams: Gauge::default(),
            database_up: Gauge::default(),
            connectors: Family::default(),
            connector_series: Default::default(),
            outbox_depth: Gauge::default(),
            outbox_oldest_age: Gauge::default(),
            pool_connections: Family::default(),
            pool_max: Gauge::default(),
            pool_timeouts: Counter::default(),
            scraped: tokio::sync::Mutex::new(None),
            registry: Registry::default(),
        };
        metrics.database_up.set(1);
        metrics.register(registry.sub_registry_with_prefix("connector"));
        metrics.zero_closed_label_sets();
        Arc::new(Metrics {
            registry,
            ..metrics
        })
    }

    /// Registers the `connector_` families in `registry`.
    fn register(&self, registry: &mut Registry) {
        let build_info = Family::<Pair, Gauge>::default();
        build_info
            .get_or_create(&[
                ("version", env!("CARGO_PKG_VERSION")),
                ("commit", env!("CONNECTOR_GIT_COMMIT")),
            ])
            .set(1);
        registry.register(
            "build_info",
            "Always 1; labelled with the server's version and the git commit it was built from",
            build_info,
        );
        registry.register(
            "token_refreshes",
            "OAuth 2.0 access token refreshes at the provider, by connector type and outcome \
             (refreshed, grant_lost, failed)",
            self.token_refreshes.clone(),
        );
        registry.register(
            "provider_request_duration_seconds",
            "Calls to providers, by connector type and operation",
            self.provider_duration.clone(),
        );
        registry.register(
            "sweeps",
            "Inactivity sweeper runs, by outcome (ok, failed)",
            self.sweeps.clone(),
        );
        registry.register(
            "deauthorizations",
            "Connectors deauthorized by this process, by reason",
            self.deauthorizations.clone(),
        );
        registry.register(
            "revocations",
            "Revocation tries, by outcome (revoked, not_supported, failed, retry)",
            self.revocations.clone(),
        );
        registry.register(
            "watch_streams_open",
            "WatchConnectorEvents streams open in this process",
            self.watch_streams.clone(),
        );
        registry.register(
            "database_up",
            "1 while the database answers the health check, 0 while it does not",
            self.database_up.clone(),
        );
        registry.register(
            "connectors",
            "Connectors by type and state (read at scrape time, at most every 5 s)",
            self.connectors.clone(),
        );
        registry.register(
            "revocation_outbox_depth",
            "Tokens waiting in the revocation outbox",
            self.outbox_depth.clone(),
        );
        registry.register(
            "revocation_outbox_oldest_age_seconds",
            "Age of the oldest token waiting in the revocation outbox (0 when empty)",
            self.outbox_oldest_age.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Database pool connections, by state (in_use, idle)",
            self.pool_connections.clone(),
        );
        registry.register(
            "db_pool_max_connections",
            "Database pool size limit",
            self.pool_max.clone(),
        );
        registry.register(
            "db_pool_timeouts",
            "Waits for a pooled database connection that timed out (answered DATABASE_UNAVAILABLE)",
            self.pool_timeouts.clone(),
        );
    }

    /// Creates every connector type's series at zero, so a dashboard's per-type panel starts at
    /// 0 too. Called once the catalogue is known.
    pub fn zero_connector_types(&self, catalogue: &Catalogue) {
        for connector_type in catalogue.iter() {
            let id = connector_type.as_str();
            if !connector_type.info().auth_method.uses_credentials() {
                for outcome in REFRESH_OUTCOMES {
                    drop(
                        self.token_refreshes
                            .get_or_create(&[("type", id), ("outcome", outcome)]),
                    );
                }
            }
            let mut series = self
                .connector_series
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for state in CONNECTOR_STATES {
                let labels: TypeState = [("type", id.to_owned()), ("state", state.to_owned())];
                drop(self.connectors.get_or_create(&labels));
                series.insert(labels);
            }
        }
    }

    /// Creates every series of the other closed label sets, at zero. (`get_or_create` hands
    /// back a read guard on the family: dropped at once.)
    fn zero_closed_label_sets(&self) {
        for outcome in SWEEP_OUTCOMES {
            drop(self.sweeps.get_or_create(&[("outcome", outcome)]));
        }
        for reason in DEAUTHORIZATION_REASONS {
            drop(self.deauthorizations.get_or_create(&[("reason", reason)]));
        }
        for outcome in REVOCATION_OUTCOMES {
            drop(self.revocations.get_or_create(&[("outcome", outcome)]));
        }
        for state in ["in_use", "idle"] {
            drop(self.pool_connections.get_or_create(&[("state", state)]));
        }
    }

    /// A ConnectorService call begins.
    pub(crate) fn rpc_started(&self, method: &'static RpcMethod) {
        self.grpc.started(method);
    }

    /// A ConnectorService call ended.
    pub(crate) fn rpc_handled(
        &self,
        method: &'static RpcMethod,
        code: tonic::Code,
        elapsed: Duration,
    ) {
        self.grpc.handled(method, code, elapsed);
    }

    /// A provider of `connector_type` is served: its latency histograms for `operations`
    /// start empty rather than absent.
    pub(crate) fn provider_served(
        &self,
        connector_type: &'static str,
        operations: &[&'static str],
    ) {
        for operation in operations {
            drop(
                self.provider_duration
                    .get_or_create(&[("type", connector_type), ("operation", operation)]),
            );
        }
    }

    /// A token refresh at the provider: `refreshed`, `grant_lost` or `failed`.
    pub(crate) fn token_refresh(&self, connector_type: &'static str, outcome: &'static str) {
        debug_assert!(REFRESH_OUTCOMES.contains(&outcome), "{outcome}");
        self.token_refreshes
            .get_or_create(&[("type", connector_type), ("outcome", outcome)])
            .inc();
    }

    /// A call to a provider (whatever its outcome).
    pub(crate) fn provider_call(
        &self,
        connector_type: &'static str,
        operation: &'static str,
        elapsed: Duration,
    ) {
        self.provider_duration
            .get_or_create(&[("type", connector_type), ("operation", operation)])
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a watch stream open until the guard drops.
    pub(crate) fn watch_opened(self: &Arc<Self>) -> WatchGuard {
        self.watch_streams.inc();
        WatchGuard(self.clone())
    }

    /// The database health check's latest answer.
    pub(crate) fn set_database_up(&self, up: bool) {
        self.database_up.set(i64::from(up));
    }

    /// The text exposition, after reading the scrape-time values if they are older than
    /// [`SCRAPE_REFRESH`].
    pub async fn render(&self, store: &Store, now_micros: i64) -> String {
        {
            let mut scraped = self.scraped.lock().await;
            if scraped.is_none_or(|at| at.elapsed() >= SCRAPE_REFRESH)
                && tokio::time::timeout(SCRAPE_DATABASE_TIMEOUT, self.read_store(store, now_micros))
                    .await
                    .is_ok_and(|read| read.is_ok())
            {
                *scraped = Some(Instant::now());
            }
        }
        let pool = store.pool_status();
        self.pool_connections
            .get_or_create(&[("state", "in_use")])
            .set(i64::from(pool.size.saturating_sub(pool.idle)));
        self.pool_connections
            .get_or_create(&[("state", "idle")])
            .set(i64::from(pool.idle));
        self.pool_max.set(i64::from(pool.max));
        let timeouts = crate::persistence::POOL_TIMEOUTS.load(Ordering::Relaxed);
        self.pool_timeouts
            .inc_by(timeouts.saturating_sub(self.pool_timeouts.get()));
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }

    async fn read_store(&self, store: &Store, now_micros: i64) -> crate::persistence::Result<()> {
        let counts = store.connector_counts(now_micros).await?;
        // Series seen before and absent now go to zero rather than keep their last value.
        let mut seen = std::collections::HashSet::new();
        for (connector_type, state, count) in counts {
            let labels: TypeState = [("type", connector_type), ("state", state.to_owned())];
            self.connectors.get_or_create(&labels).set(count);
            seen.insert(labels);
        }
        // A family cannot be iterated: the label sets ever set are kept beside it.
        {
            let mut series = self
                .connector_series
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for labels in series.iter().filter(|labels| !seen.contains(*labels)) {
                self.connectors.get_or_create(labels).set(0);
            }
            series.extend(seen);
        }
        let (depth, oldest) = store.outbox_status().await?;
        self.outbox_depth.set(depth);
        self.outbox_oldest_age.set(
            oldest
                .map(|created| (now_micros - created).max(0) as f64 / 1e6)
                .unwrap_or(0.0),
        );
        Ok(())
    }
}

/// Decrements the open-watch gauge when the watch ends.
#[derive(Debug)]
pub(crate) struct WatchGuard(Arc<Metrics>);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.watch_streams.dec();
    }
}

/// What the scrape handler reads.
#[derive(Clone)]
struct Scrape {
    metrics: Arc<Metrics>,
    store: Store,
    clock: Arc<dyn crate::clock::Clock>,
}

async fn scrape(
    axum::extract::State(scrape): axum::extract::State<Scrape>,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let text = scrape
        .metrics
        .render(&scrape.store, scrape.clock.now().timestamp_micros())
        .await;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Serves `GET /metrics` on `listener` (until the task is aborted).
pub(crate) async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    store: Store,
    clock: Arc<dyn crate::clock::Clock>,
) {
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .with_state(Scrape {
            metrics,
            store,
            clock,
        });
    if let Err(error) = axum::serve(listener, app).await {
        tracing::error!(%error, "the metrics endpoint stopped");
    }
}
