//! `events`: an account's event log, as an aligned table with a header for people or as JSON
//! lines for scripts; with `--follow`, new events as they happen.
//!
//! A listing knows every row before printing, so its columns are as wide as their widest cell.
//! A follower prints each row as it comes, so its widths are fixed up front from what the
//! values can be: the catalogue's type ids, the event kinds, the account's connector names.

use connector_client::{ConnectorClient, pb};
use prost_types::Timestamp;

use crate::{
    failure::{About as _, Failure},
    render,
    spinner::Spinner,
};

/// The largest page the service serves.
const PAGE_SIZE: i32 = 1000;

/// The columns, in order; the last one is not padded.
const HEADER: [&str; 6] = ["CURSOR", "TIME", "KIND", "CONNECTOR", "TYPE", "DETAIL"];

/// Widths a follower cannot learn from the catalogue: cursors up to ten digits, RFC 3339 times
/// to the second, and a connector id (a UUID).
const CURSOR_WIDTH: usize = 10;
const TIME_WIDTH: usize = "2026-01-01T00:00:00Z".len();
const CONNECTOR_ID_WIDTH: usize = 36;

/// `events`: the events after `after`, then with `follow` the ones still to come.
pub(crate) async fn run(
    client: &ConnectorClient,
    parent: &str,
    after: i64,
    follow: bool,
    json: bool,
) -> Result<(), Failure> {
    if follow {
        return follow_events(client, parent, after, json).await;
    }
    let mut page_token = String::new();
    let mut rows = Vec::new();
    loop {
        let page = client
            .list_connector_events(pb::ListConnectorEventsRequest {
                parent: parent.to_owned(),
                page_size: PAGE_SIZE,
                page_token,
            })
            .await
            .about(parent)?;
        for event in page.events.iter().filter(|event| event.cursor > after) {
            if json {
                println!("{}", render::event_json(event));
            } else {
                rows.push(cells(event));
            }
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    if !json {
        println!("{}", render::table(&HEADER, &rows));
    }
    Ok(())
}

/// `events --follow`: the watch replays what is after `after`, then follows, resuming over
/// reconnects; the header once, then a row per event above the spinner.
async fn follow_events(
    client: &ConnectorClient,
    parent: &str,
    after: i64,
    json: bool,
) -> Result<(), Failure> {
    let widths = if json {
        Vec::new()
    } else {
        let widths = follow_widths(client, parent).await?;
        println!("{}", render::pad(&HEADER.map(str::to_owned), &widths));
        widths
    };
    let mut watch = client.watch_events(parent, after);
    let spinner = Spinner::start("waiting for events…");
    while let Some(event) = watch.next().await {
        let event = event.about(parent)?;
        spinner.println(&if json {
            render::event_json(&event).to_string()
        } else {
            render::pad(&cells(&event), &widths)
        });
    }
    Err(Failure::Other("the event watch ended".to_owned()))
}

/// Column widths for rows not seen yet.
async fn follow_widths(client: &ConnectorClient, parent: &str) -> Result<Vec<usize>, Failure> {
    let types = client
        .list_connector_types(pb::ListConnectorTypesRequest {})
        .await?
        .connector_types;
    let type_width = types
        .iter()
        .map(|connector_type| render::id(&connector_type.name).len())
        .max()
        .unwrap_or_default();
    let kind_width = (0..64)
        .filter_map(|value| pb::connector_event::Kind::try_from(value).ok())
        .map(|kind| kind_name(kind).len())
        .max()
        .unwrap_or_default();
    let connector_width = format!("{parent}/connectors/").len() + CONNECTOR_ID_WIDTH;
    let widths = [
        CURSOR_WIDTH,
        TIME_WIDTH,
        kind_width,
        connector_width,
        type_width,
    ];
    Ok(HEADER
        .iter()
        .zip(widths)
        .map(|(header, width)| header.len().max(width))
        .collect())
}

fn kind_name(kind: pb::connector_event::Kind) -> &'static str {
    kind.as_str_name()
        .strip_prefix("KIND_")
        .unwrap_or(kind.as_str_name())
}

/// An event's cells, in [`HEADER`]'s order.
fn cells(event: &pb::ConnectorEvent) -> Vec<String> {
    let mut detail = Vec::new();
    if event.deauthorization_reason != 0 {
        detail.push(format!(
            "reason={}",
            lower(
                event.deauthorization_reason().as_str_name(),
                "DEAUTHORIZATION_REASON_"
            )
        ));
    }
    if event.revocation_outcome != 0 {
        detail.push(format!(
            "revocation={}",
            lower(
                event.revocation_outcome().as_str_name(),
                "REVOCATION_OUTCOME_"
            )
        ));
    }
    vec![
        event.cursor.to_string(),
        // To the second: every row the same width.
        event
            .create_time
            .as_ref()
            .map(|time| Timestamp {
                seconds: time.seconds,
                nanos: 0,
            })
            .map(|time| time.to_string())
            .unwrap_or_default(),
        kind_name(event.kind()).to_owned(),
        event.connector.clone(),
        render::id(&event.connector_type).to_owned(),
        detail.join(" "),
    ]
}

fn lower(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix).unwrap_or(name).to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_has_a_cell_per_column_and_times_to_the_second() {
        let event = pb::ConnectorEvent {
            cursor: 7,
            connector: "accounts/a/connectors/c".to_owned(),
            connector_type: "connectorTypes/azure-blob-storage".to_owned(),
            kind: pb::connector_event::Kind::Deauthorized.into(),
            deauthorization_reason: pb::connector::DeauthorizationReason::Inactivity.into(),
            create_time: Some(Timestamp {
                seconds: 1_800_000_000,
                nanos: 123_456_789,
            }),
            ..Default::default()
        };
        let row = cells(&event);
        assert_eq!(row.len(), HEADER.len());
        assert_eq!(row[1].len(), TIME_WIDTH, "{}", row[1]);
        assert_eq!(row[2], "DEAUTHORIZED");
        assert_eq!(row[4], "azure-blob-storage");
        assert_eq!(row[5], "reason=inactivity");
    }
}
