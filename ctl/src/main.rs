//! `connectorctl`: the operators' command line for Connector Service, built on
//! `connector-client`. It lists and inspects connectors, creates credential connectors, walks an
//! OAuth 2.0 authorization through to the linked connector, deletes with a confirmation, shows
//! and follows the event log, prints live credentials, and makes API keys for the server's
//! configuration.
//!
//! Exit codes are stable, so scripts can branch on them (they are also in `--help`, and mapped
//! in one place, `failure.rs`):
//!
//! | Code | Meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | anything else: an internal error |
//! | 2 | usage: bad arguments or settings, a deletion not confirmed |
//! | 3 | not found |
//! | 4 | authentication or permission: the API key was refused or may not do this |
//! | 5 | the connector is deauthorized and needs reauthorization |
//! | 6 | invalid argument, rejected credentials, failed precondition |
//! | 7 | unavailable, unreachable or timed out: retry (the server is down or not there yet) |
//! | 8 | conflict: already exists, etag mismatch, aborted |

#![forbid(unsafe_code)]

mod authorize;
mod cli;
mod commands;
mod create;
mod delete;
mod events;
mod failure;
mod help;
mod keys;
mod render;
mod secret;
mod settings;
mod spinner;

use std::process::ExitCode;

use clap::Parser as _;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("connectorctl: {}", failure.message());
            ExitCode::from(failure.exit_code())
        }
    }
}
