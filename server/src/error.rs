//! Why the server did not start or stopped.

use crate::{config, crypto, persistence, transport};

/// Why the server did not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// A key or data file could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A master key is malformed.
    #[error(transparent)]
    MasterKey(#[from] crypto::Error),
    /// The database could not be opened or migrated, or does not fit the master keys.
    #[error(transparent)]
    Store(#[from] persistence::Error),
    /// Serving failed.
    #[error(transparent)]
    Transport(#[from] transport::Error),
}

pub(crate) fn io_error(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}
