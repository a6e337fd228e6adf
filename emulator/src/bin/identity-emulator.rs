//! `identity-emulator`: the emulator as a process, for tests written in any language.
//!
//! ```text
//! identity-emulator [--config FILE] [--listen ADDR] [--redirect-uri URI]...
//!                   [--no-default-fixtures] [--url-file PATH]
//! ```
//!
//! Prints the base URL as the first line on stdout (and writes it to `--url-file`), then
//! serves until SIGINT or SIGTERM. Flags override the file. Everything else is in the library.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::process::ExitCode;

use identity_emulator::{EmulatorBuilder, EmulatorConfig};

const USAGE: &str = "usage: identity-emulator [--config FILE.toml|FILE.json] [--listen ADDR] \
[--redirect-uri URI]... [--no-default-fixtures] [--url-file PATH]";

/// Parsed command line.
#[derive(Default)]
struct Args {
    config: Option<String>,
    listen: Option<SocketAddr>,
    redirect_uris: Vec<String>,
    no_default_fixtures: bool,
    url_file: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args::default();
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        let mut value = |name: &str| argv.next().ok_or_else(|| format!("{name} needs a value"));
        match flag.as_str() {
            "--config" => args.config = Some(value("--config")?),
            "--listen" => {
                let addr = value("--listen")?;
                args.listen = Some(addr.parse().map_err(|_| format!("bad --listen '{addr}'"))?);
            }
            "--redirect-uri" => args.redirect_uris.push(value("--redirect-uri")?),
            "--no-default-fixtures" => args.no_default_fixtures = true,
            "--url-file" => args.url_file = Some(value("--url-file")?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    Ok(args)
}

async fn run(args: Args) -> Result<(), String> {
    let mut config = match &args.config {
        Some(path) => EmulatorConfig::from_file(path).map_err(|error| error.to_string())?,
        None => EmulatorConfig::default(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if args.no_default_fixtures {
        config.default_fixtures = false;
    }
    config.redirect_uris.extend(args.redirect_uris);
    let emulator = EmulatorBuilder::from_config(config)
        .start()
        .await
        .map_err(|error| error.to_string())?;
    if let Some(path) = &args.url_file {
        std::fs::write(path, format!("{}\n", emulator.base_url()))
            .map_err(|error| format!("cannot write {path}: {error}"))?;
    }
    // The one line a parent process waits for.
    println!("{}", emulator.base_url());
    eprintln!(
        "identity-emulator listening on {} (admin API under /_emulator)",
        emulator.base_url()
    );
    stopped().await;
    emulator.shutdown().await;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn stopped() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("identity-emulator: {message}");
            }
            eprintln!("{USAGE}");
            return if message.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("identity-emulator: {message}");
            ExitCode::FAILURE
        }
    }
}
