//! The browser's part of an OAuth 2.0 authorization or reauthorization, and the wait for it.
//!
//! By default the service does not link an account at its OAuth callback: the callback page
//! tells the user to go back to the application, and the application (the orchestrator; here,
//! this tool) completes with `CompleteAuthorization` and the parameters in that page's address.
//! A deployment may opt in to linking at the callback (`callback_completes_authorizations`);
//! then the link shows up as an event. So after printing the URL, the tool waits for whichever
//! comes first: the address the browser ended on (given with `--complete-with-url`, or pasted
//! on standard input), an AUTHORIZED or REAUTHORIZED event for the connector on the account's
//! log, or the authorization's expiry.

use std::time::{Duration, SystemTime};

use connector_client::{ConnectorClient, pb};
use tokio::sync::mpsc;

use crate::{cli::BrowserArgs, failure::Failure, spinner::Spinner};

/// The event that means the authorization is done.
#[derive(Debug)]
pub(crate) enum Awaited {
    /// A new connector of this type (`connectorTypes/…`) was authorized.
    NewConnectorOfType(String),
    /// This connector (its resource name) was reauthorized.
    Reauthorized(String),
}

impl Awaited {
    fn is_met_by(&self, event: &pb::ConnectorEvent) -> bool {
        match self {
            Awaited::NewConnectorOfType(connector_type) => {
                event.kind() == pb::connector_event::Kind::Authorized
                    && &event.connector_type == connector_type
            }
            Awaited::Reauthorized(name) => {
                event.kind() == pb::connector_event::Kind::Reauthorized && &event.connector == name
            }
        }
    }
}

/// A started authorization: its URL, expiry, and the account's last event cursor before it.
#[derive(Debug)]
pub(crate) struct Started {
    /// The account, `accounts/{account}`.
    pub(crate) parent: String,
    /// The provider's URL for the user's browser.
    pub(crate) url: String,
    /// When the URL stops working.
    pub(crate) expire_time: Option<prost_types::Timestamp>,
    /// Events after this cursor are new.
    pub(crate) after_cursor: i64,
}

/// Shows the URL, then waits until the connector is linked; returns it.
pub(crate) async fn finish(
    client: &ConnectorClient,
    started: Started,
    awaited: Awaited,
    browser: &BrowserArgs,
) -> Result<pb::Connector, Failure> {
    eprintln!("Open this URL in a browser and sign in:");
    println!("{}", started.url);
    if browser.open
        && let Err(error) = std::process::Command::new("xdg-open")
            .arg(&started.url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
    {
        eprintln!("connectorctl: could not run xdg-open ({error}); open the URL yourself");
    }
    if let Some(address) = &browser.complete_with_url {
        return complete(client, address).await;
    }
    eprintln!(
        "Then paste the address the browser ends on here and press Enter (a service that links at its callback is noticed without it)."
    );
    let mut pasted = read_lines();
    let mut reading = true;
    let mut watch = client.watch_events(&started.parent, started.after_cursor);
    let expiry = tokio::time::sleep(remaining(&started.expire_time));
    tokio::pin!(expiry);
    let _spinner = Spinner::start("waiting for the authorization…");
    loop {
        tokio::select! {
            line = pasted.recv(), if reading => match line {
                Some(line) if line.trim().is_empty() => {}
                Some(line) => match complete(client, line.trim()).await {
                    Err(Failure::Usage(problem)) => eprintln!("\r\x1b[K{problem}; paste it again"),
                    done => return done,
                },
                // Standard input closed: the event log may still tell.
                None => reading = false,
            },
            event = watch.next() => match event {
                Some(Ok(event)) if awaited.is_met_by(&event) => {
                    return Ok(client
                        .get_connector(pb::GetConnectorRequest { name: event.connector.clone() })
                        .await?);
                }
                Some(Ok(_)) => {}
                Some(Err(status)) => return Err(status.into()),
                None => return Err(Failure::Other("the event watch ended".to_owned())),
            },
            () = &mut expiry => {
                return Err(Failure::Expired(
                    "the authorization expired before the connector was linked; start it again".to_owned(),
                ));
            }
        }
    }
}

/// Completes with the parameters in the address the provider sent the browser to.
async fn complete(client: &ConnectorClient, address: &str) -> Result<pb::Connector, Failure> {
    let request = completion(address)?;
    Ok(client.complete_authorization(request).await?)
}

/// The `CompleteAuthorization` request in a callback address (`…?state=…&code=…`).
fn completion(address: &str) -> Result<pb::CompleteAuthorizationRequest, Failure> {
    let url = url::Url::parse(address)
        .map_err(|_| Failure::Usage(format!("`{address}` is not an address")))?;
    let get = |name: &str| {
        url.query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default()
    };
    let request = pb::CompleteAuthorizationRequest {
        state: get("state"),
        code: get("code"),
        error: get("error"),
        error_description: get("error_description"),
        tenant: get("tenant"),
        admin_consent: get("admin_consent"),
        iss: get("iss"),
    };
    if request.state.is_empty() || (request.code.is_empty() && request.error.is_empty()) {
        return Err(Failure::Usage(
            "that address has no `state` and `code` (or `error`) parameters".to_owned(),
        ));
    }
    Ok(request)
}

/// Lines of standard input, read on a thread of their own: a blocking read must not keep the
/// process alive once the authorization is done some other way.
fn read_lines() -> mpsc::Receiver<String> {
    let (sender, lines) = mpsc::channel(4);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if sender.blocking_send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// Time left until `expire_time` (an hour when the server gave none).
fn remaining(expire_time: &Option<prost_types::Timestamp>) -> Duration {
    let Some(expire_time) = expire_time else {
        return Duration::from_secs(3600);
    };
    let expiry = SystemTime::UNIX_EPOCH
        + Duration::from_secs(u64::try_from(expire_time.seconds).unwrap_or_default());
    expiry.duration_since(SystemTime::now()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callback_address_becomes_a_completion() {
        let request = completion(
            "http://localhost/oauth/callback?code=c%2B1&state=s&iss=https%3A%2F%2Flogin",
        )
        .unwrap();
        assert_eq!(
            (
                request.code.as_str(),
                request.state.as_str(),
                request.iss.as_str()
            ),
            ("c+1", "s", "https://login")
        );
        assert!(completion("http://localhost/oauth/callback").is_err());
        assert!(completion("not a url").is_err());
    }
}
