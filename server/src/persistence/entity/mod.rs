//! SeaORM entities: the tables as the code sees them. The domain reads and writes connector and
//! event rows as these models (`persistence::ConnectorRow`, `persistence::EventRow`), with the
//! typed values of `values`; it converts them to its own model in one place (`domain/rows.rs`).

pub(crate) mod authorization_attempt;
pub(crate) mod connector;
pub(crate) mod connector_event;
pub(crate) mod connector_secret;
pub(crate) mod revocation;
pub(crate) mod sealing_key_check;
pub(crate) mod values;
