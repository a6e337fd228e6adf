//! SeaORM entities: the tables as the code sees them. Only `persistence` uses them; the rest of
//! the server sees plain rows (`ConnectorRow`).

pub(crate) mod authorization_attempt;
pub(crate) mod connector;
pub(crate) mod connector_event;
pub(crate) mod connector_secret;
pub(crate) mod revocation;
pub(crate) mod sealing_key_check;
