//! Secrets an operator hands a command (an account key, a password): from a file, from
//! standard input, or typed at a prompt on the terminal that does not show them. Never from
//! the command line, where `ps` would show them.

use std::io::{IsTerminal as _, Read as _};

use crate::{cli::KeySource, failure::Failure, settings};

/// Whether a command asks on the terminal when no source was named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Missing {
    /// The command needs the secret: ask for it on a terminal.
    Ask,
    /// The secret is optional: none.
    Skip,
}

/// The secret, without its trailing line end: from `--key-file`; from `--key-stdin`, or
/// asked for when `missing` says so, at a prompt that does not echo if standard input is a
/// terminal (read whole from a pipe); `None` when none was named or asked for.
pub(crate) fn read(
    source: &KeySource,
    what: &str,
    missing: Missing,
) -> Result<Option<String>, Failure> {
    let on_terminal = std::io::stdin().is_terminal();
    let text = if let Some(path) = &source.key_file {
        String::from_utf8(settings::read(path)?)
            .map_err(|_| Failure::Usage(format!("{} is not text", path.display())))?
    } else if on_terminal && (source.key_stdin || missing == Missing::Ask) {
        rpassword::prompt_password(format!("{} (not shown as you type): ", capitalized(what)))
            .map_err(|error| Failure::Other(format!("cannot read the {what}: {error}")))?
    } else if source.key_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|error| Failure::Other(format!("cannot read standard input: {error}")))?;
        text
    } else {
        return Ok(None);
    };
    let secret = text.trim().to_owned();
    if secret.is_empty() {
        return Err(Failure::Usage(format!("the {what} is empty")));
    }
    Ok(Some(secret))
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
