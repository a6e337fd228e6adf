//! How results look: aligned tables for people, JSON for scripts. The JSON is mapped by hand
//! from the proto fields (their snake_case names, full enum names, RFC 3339 times, empty fields
//! left out), so it is deterministic and does not change with the generated code.

use connector_client::pb;
use prost_types::Timestamp;
use serde_json::{Map, Value, json};

/// Columns padded to their widest cell, two spaces apart.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let headers: Vec<String> = headers.iter().map(|&header| header.to_owned()).collect();
    let mut out = vec![pad(&headers, &widths)];
    out.extend(rows.iter().map(|row| pad(row, &widths)));
    out.join("\n")
}

/// One row: each cell padded to its column's width, two spaces apart; a cell wider than its
/// column pushes the rest along, and cells past the last width are not padded.
pub(crate) fn pad(cells: &[String], widths: &[usize]) -> String {
    let padded: Vec<String> = cells
        .iter()
        .enumerate()
        .map(|(i, cell)| {
            let width = widths.get(i).copied().unwrap_or_default();
            format!("{cell:width$}")
        })
        .collect();
    padded.join("  ").trim_end().to_owned()
}

/// Pretty JSON for a value (one document).
pub(crate) fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// An enum's name without its prefix: `STATE_AUTHORIZED` → `AUTHORIZED`.
fn short<'a>(name: &'a str, prefix: &str) -> &'a str {
    name.strip_prefix(prefix).unwrap_or(name)
}

/// RFC 3339, or empty when unset.
fn time(timestamp: &Option<Timestamp>) -> String {
    timestamp
        .as_ref()
        .map(Timestamp::to_string)
        .unwrap_or_default()
}

/// Adds `key` unless `value` is empty.
fn put(object: &mut Map<String, Value>, key: &str, value: impl Into<String>) {
    let value = value.into();
    if !value.is_empty() {
        object.insert(key.to_owned(), Value::String(value));
    }
}

/// The id at the end of a resource name.
pub(crate) fn id(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

fn state(connector: &pb::Connector) -> String {
    let state = short(connector.state().as_str_name(), "STATE_").to_owned();
    match connector.deauthorization_reason() {
        pb::connector::DeauthorizationReason::Unspecified => state,
        reason => format!(
            "{state} ({})",
            short(reason.as_str_name(), "DEAUTHORIZATION_REASON_").to_lowercase()
        ),
    }
}

fn external_account(connector: &pb::Connector) -> String {
    connector
        .external_account
        .as_ref()
        .map(|account| {
            if account.label.is_empty() || account.label == account.id {
                account.id.clone()
            } else {
                format!("{} ({})", account.label, account.id)
            }
        })
        .unwrap_or_default()
}

/// The `list` table.
pub(crate) fn connectors_table(connectors: &[pb::Connector]) -> String {
    let rows: Vec<Vec<String>> = connectors
        .iter()
        .map(|connector| {
            let last_transfer = time(&connector.last_transfer_time);
            vec![
                id(&connector.name).to_owned(),
                id(&connector.connector_type).to_owned(),
                connector.display_name.clone(),
                state(connector),
                external_account(connector),
                if last_transfer.is_empty() {
                    "never".to_owned()
                } else {
                    last_transfer
                },
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "TYPE",
            "DISPLAY NAME",
            "STATE",
            "EXTERNAL ACCOUNT",
            "LAST TRANSFER",
        ],
        &rows,
    )
}

/// One connector, a field per line.
pub(crate) fn connector_details(connector: &pb::Connector) -> String {
    let mut fields = vec![
        ("Name", connector.name.clone()),
        ("Type", connector.connector_type.clone()),
        ("Display name", connector.display_name.clone()),
        ("State", state(connector)),
        ("External account", external_account(connector)),
        (
            "Auth method",
            short(connector.auth_method().as_str_name(), "AUTH_METHOD_").to_owned(),
        ),
        ("Created", time(&connector.create_time)),
        ("Authorized", time(&connector.authorize_time)),
        ("Last transfer", time(&connector.last_transfer_time)),
        ("Inactivity deadline", time(&connector.inactivity_deadline)),
        ("Deauthorized", time(&connector.deauthorize_time)),
    ];
    let mut labels: Vec<_> = connector.labels.iter().collect();
    labels.sort();
    fields.push((
        "Labels",
        labels
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect::<Vec<_>>()
            .join(", "),
    ));
    fields
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(key, value)| format!("{:<20} {value}", format!("{key}:")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A connector as JSON.
pub(crate) fn connector_json(connector: &pb::Connector) -> Value {
    let mut object = Map::new();
    put(&mut object, "name", &connector.name);
    put(&mut object, "connector_type", &connector.connector_type);
    put(&mut object, "display_name", &connector.display_name);
    put(&mut object, "state", connector.state().as_str_name());
    if connector.deauthorization_reason != 0 {
        put(
            &mut object,
            "deauthorization_reason",
            connector.deauthorization_reason().as_str_name(),
        );
    }
    if let Some(account) = &connector.external_account {
        let mut external = Map::new();
        put(&mut external, "id", &account.id);
        put(&mut external, "label", &account.label);
        put(
            &mut external,
            "host_key_fingerprint",
            &account.host_key_fingerprint,
        );
        object.insert("external_account".to_owned(), Value::Object(external));
    }
    put(
        &mut object,
        "auth_method",
        connector.auth_method().as_str_name(),
    );
    for (key, value) in [
        ("create_time", &connector.create_time),
        ("authorize_time", &connector.authorize_time),
        ("last_transfer_time", &connector.last_transfer_time),
        ("update_time", &connector.update_time),
        ("deauthorize_time", &connector.deauthorize_time),
        ("inactivity_deadline", &connector.inactivity_deadline),
    ] {
        put(&mut object, key, time(value));
    }
    if !connector.labels.is_empty() {
        // serde_json's map is ordered by key: deterministic output.
        let labels: Map<String, Value> = connector
            .labels
            .iter()
            .map(|(key, value)| (key.clone(), Value::String(value.clone())))
            .collect();
        object.insert("labels".to_owned(), Value::Object(labels));
    }
    put(&mut object, "etag", &connector.etag);
    Value::Object(object)
}

fn services(connector_type: &pb::ConnectorType) -> String {
    if connector_type.services.is_empty() {
        connector_type
            .microsoft_services()
            .map(|service| short(service.as_str_name(), "MICROSOFT_SERVICE_").to_owned())
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        connector_type.services.join(", ")
    }
}

/// The `types` (and `resolve`) table.
pub(crate) fn types_table(types: &[pb::ConnectorType]) -> String {
    let rows: Vec<Vec<String>> = types
        .iter()
        .map(|connector_type| {
            vec![
                id(&connector_type.name).to_owned(),
                connector_type.display_name.clone(),
                short(connector_type.auth_method().as_str_name(), "AUTH_METHOD_").to_owned(),
                services(connector_type),
            ]
        })
        .collect();
    table(&["ID", "DISPLAY NAME", "AUTH METHOD", "SERVICES"], &rows)
}

/// A connector type as JSON.
pub(crate) fn connector_type_json(connector_type: &pb::ConnectorType) -> Value {
    json!({
        "name": connector_type.name,
        "display_name": connector_type.display_name,
        "auth_method": connector_type.auth_method().as_str_name(),
        "microsoft_services": connector_type
            .microsoft_services()
            .map(|service| service.as_str_name())
            .collect::<Vec<_>>(),
        "services": connector_type.services,
        "description": connector_type.description,
        "configured": connector_type.configured,
        "identity_provider": connector_type.identity_provider,
        "deletion": connector_type.deletion.as_ref().map(|deletion| json!({
            "revokes_access": deletion.revokes_access,
            "access": deletion.access,
            "check": deletion.check,
        })),
        "credential_fields": connector_type
            .credential_fields
            .iter()
            .map(|field| json!({
                "name": field.name,
                "display_name": field.display_name,
                "secret": field.secret,
                "required": field.required,
                "identifies_account": field.identifies_account,
            }))
            .collect::<Vec<_>>(),
    })
}

/// An event as JSON (one line of `--json` output).
pub(crate) fn event_json(event: &pb::ConnectorEvent) -> Value {
    let mut object = Map::new();
    object.insert("cursor".to_owned(), json!(event.cursor));
    put(&mut object, "connector", &event.connector);
    put(&mut object, "connector_type", &event.connector_type);
    put(&mut object, "kind", event.kind().as_str_name());
    if event.deauthorization_reason != 0 {
        put(
            &mut object,
            "deauthorization_reason",
            event.deauthorization_reason().as_str_name(),
        );
    }
    if event.revocation_outcome != 0 {
        put(
            &mut object,
            "revocation_outcome",
            event.revocation_outcome().as_str_name(),
        );
    }
    put(&mut object, "create_time", time(&event.create_time));
    Value::Object(object)
}

/// An access token response as JSON.
pub(crate) fn token_json(token: &pb::GetAccessTokenResponse) -> Value {
    let mut object = Map::new();
    put(&mut object, "access_token", &token.access_token);
    put(&mut object, "token_type", token.token_type().as_str_name());
    put(&mut object, "expire_time", time(&token.expire_time));
    if !token.scopes.is_empty() {
        object.insert("scopes".to_owned(), json!(token.scopes));
    }
    put(&mut object, "resource_url", &token.resource_url);
    if let Some(aws) = &token.aws_session_credentials {
        object.insert(
            "aws_session_credentials".to_owned(),
            json!({
                "access_key_id": aws.access_key_id,
                "secret_access_key": aws.secret_access_key,
            }),
        );
    }
    Value::Object(object)
}
