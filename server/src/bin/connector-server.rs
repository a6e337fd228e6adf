//! `connector-server`: reads the configuration, binds the listen address and runs the server
//! until SIGTERM or SIGINT.
//!
//! Usage: `connector-server [--config FILE]` (or `CONNECTOR_CONFIG=FILE`). With no
//! configuration it serves on 127.0.0.1:50051 with SQLite in `./data`.
//!
//! `connector-server rewrap [--config FILE] [--batch N]` seals every stored secret again under
//! the current master key (while servers keep running), then exits: afterwards the previous
//! master keys can be removed from the configuration.
//!
//! `connector-server check-config [--config FILE]` validates the configuration as start-up
//! does, without opening the database or writing a file, and exits 0 when it is sound.
//! `connector-server --version` prints the version and the git commit it was built from.

use std::{path::PathBuf, process::ExitCode};

use connector_server::config::LogFormat;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    match serve().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("connector-server: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr at the level RUST_LOG asks for (info): text lines, coloured only on a
/// terminal, or one JSON object per line with `log_format = "json"` (CONNECTOR_LOG_FORMAT).
/// Every ConnectorService call is logged once on `connector_server::rpc`; audit records are
/// on the `audit` target (see connector_server::audit).
fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}

async fn serve() -> Result<(), String> {
    let mut args = std::env::args().skip(1).peekable();
    if args
        .next_if(|arg| arg == "--version" || arg == "-V")
        .is_some()
    {
        println!(
            "connector-server {} (commit {})",
            env!("CARGO_PKG_VERSION"),
            env!("CONNECTOR_GIT_COMMIT")
        );
        return Ok(());
    }
    let rewrap = args.next_if(|arg| arg == "rewrap").is_some();
    let check = !rewrap && args.next_if(|arg| arg == "check-config").is_some();
    let mut batch = 500u64;
    let mut config_file = std::env::var_os("CONNECTOR_CONFIG").map(PathBuf::from);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => config_file = Some(args.next().ok_or("--config needs a file")?.into()),
            "--batch" if rewrap => {
                batch = args
                    .next()
                    .and_then(|value| value.parse().ok())
                    .filter(|batch| *batch > 0)
                    .ok_or("--batch needs a positive number")?;
            }
            "--help" | "-h" => {
                println!(
                    "usage: connector-server [--config FILE]\n       connector-server rewrap [--config FILE] [--batch N]\n       connector-server check-config [--config FILE]\n       connector-server --version\nSee the README for the configuration reference."
                );
                return Ok(());
            }
            other => return Err(format!("unknown argument `{other}`; try --help")),
        }
    }
    let (config, listen) =
        connector_server::config::load(config_file.as_deref(), |name| std::env::var(name).ok())
            .map_err(|error| error.to_string())?;
    init_logs(config.log_format);
    if check {
        let checked =
            connector_server::check_config(&config, listen).map_err(|error| error.to_string())?;
        println!("{checked}");
        return Ok(());
    }
    if rewrap {
        let report = connector_server::rewrap(&config, batch)
            .await
            .map_err(|error| error.to_string())?;
        tracing::info!(
            resealed = report.resealed,
            already_current = report.current,
            changed_meanwhile = report.changed_meanwhile,
            unopenable = report.unopenable,
            "rewrap finished"
        );
        println!(
            "rewrap: {} resealed, {} already current, {} rewritten by a server meanwhile, {} unopenable",
            report.resealed, report.current, report.changed_meanwhile, report.unopenable
        );
        if report.unopenable > 0 {
            return Err(format!(
                "{} stored secrets do not open with the configured keys; keep the previous keys configured",
                report.unopenable
            ));
        }
        return Ok(());
    }
    // Start-up binds `listen` only once everything that can refuse the start has been checked.
    connector_server::start(
        connector_server::Listen::Address(listen),
        config,
        shutdown_signal(),
    )
    .await
    .map_err(|error| error.to_string())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(terminate) => terminate,
        Err(error) => {
            tracing::error!(%error, "cannot listen for SIGTERM; stopping on SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM: shutting down gracefully"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down gracefully"),
    }
}
