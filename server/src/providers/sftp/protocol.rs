//! The first words of SFTP (version 3, draft-ietf-secsh-filexfer-02, what OpenSSH speaks):
//! enough to prove that a server really serves SFTP to this user.
//!
//! A subsystem request that succeeds proves nothing. An account restricted by `ForceCommand`
//! (rsync only, git-shell, a menu) is granted the `sftp` subsystem and then runs its own
//! command, whose text a client would read as a packet length ("this" is 1,952,999,795 bytes).
//! So the check sends `SSH_FXP_INIT`, expects `SSH_FXP_VERSION`, and asks `SSH_FXP_REALPATH` of
//! "." (harmless, and what OpenSSH's `sftp` asks first): only an `SSH_FXP_NAME` answer counts.

/// `SSH_FXP_INIT`: the client's version.
const FXP_INIT: u8 = 1;
/// `SSH_FXP_VERSION`: the server's version.
const FXP_VERSION: u8 = 2;
/// `SSH_FXP_REALPATH`: canonicalise a path.
const FXP_REALPATH: u8 = 16;
/// `SSH_FXP_STATUS`: a request failed (or succeeded without data).
const FXP_STATUS: u8 = 101;
/// `SSH_FXP_NAME`: the answer to `REALPATH`.
const FXP_NAME: u8 = 104;

/// The version this client speaks; servers answer with theirs, at most this for OpenSSH.
const VERSION: u32 = 3;
/// The request id of the one `REALPATH` sent.
const REALPATH_ID: u32 = 1;
/// The largest answer accepted. Answers to `INIT` and `REALPATH(".")` are a few hundred bytes
/// at most; a larger length is text that is not SFTP.
const MAX_PACKET: usize = 64 * 1024;

/// What the client sends first: `INIT` and, without waiting, `REALPATH(".")`. (Sending both at
/// once is what the protocol allows: the server reads them in order.)
pub(super) fn opening() -> Vec<u8> {
    let mut bytes = packet(FXP_INIT, &VERSION.to_be_bytes());
    let mut realpath = REALPATH_ID.to_be_bytes().to_vec();
    realpath.extend_from_slice(&1u32.to_be_bytes());
    realpath.push(b'.');
    bytes.extend(packet(FXP_REALPATH, &realpath));
    bytes
}

fn packet(kind: u8, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len() + 1).expect("a small packet");
    let mut bytes = length.to_be_bytes().to_vec();
    bytes.push(kind);
    bytes.extend_from_slice(payload);
    bytes
}

/// How far the server got: it reads bytes as they arrive and tells when the server has proved
/// it speaks SFTP, or that it does not.
#[derive(Debug, Default)]
pub(super) struct Exchange {
    received: Vec<u8>,
    version: Option<u32>,
}

/// The outcome once enough has arrived.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// `VERSION` then `NAME`: SFTP works for this user.
    Speaks,
    /// Anything else, with what was wrong (never the bytes themselves beyond a short prefix).
    DoesNotSpeak(String),
}

impl Exchange {
    /// Takes the next bytes from the server; `Some` once the exchange is decided.
    pub(super) fn receive(&mut self, bytes: &[u8]) -> Option<Outcome> {
        self.received.extend_from_slice(bytes);
        loop {
            let header = self.received.get(..4)?;
            let length = u32::from_be_bytes(header.try_into().expect("four bytes")) as usize;
            if length == 0 || length > MAX_PACKET {
                return Some(Outcome::DoesNotSpeak(format!(
                    "it answered {}, which is not an SFTP packet",
                    shown(&self.received)
                )));
            }
            let body = self.received.get(4..4 + length)?;
            let (kind, payload) = (body[0], body[1..].to_vec());
            self.received.drain(..4 + length);
            if let Some(outcome) = self.packet(kind, &payload) {
                return Some(outcome);
            }
        }
    }

    /// The channel closed: whatever was not decided is a refusal.
    pub(super) fn closed(&self) -> Outcome {
        let seen = if self.received.is_empty() {
            String::new()
        } else {
            format!(" after {}", shown(&self.received))
        };
        Outcome::DoesNotSpeak(match self.version {
            None => format!("the session ended before an SFTP version exchange{seen}"),
            Some(_) => format!("the session ended before it answered realpath(\".\"){seen}"),
        })
    }

    fn packet(&mut self, kind: u8, payload: &[u8]) -> Option<Outcome> {
        let id = payload
            .get(..4)
            .map(|id| u32::from_be_bytes(id.try_into().expect("4")));
        match (self.version, kind) {
            (None, FXP_VERSION) => {
                self.version = id;
                None
            }
            (None, other) => Some(Outcome::DoesNotSpeak(format!(
                "its first packet is of type {other}, not SSH_FXP_VERSION"
            ))),
            (Some(_), FXP_NAME) if id == Some(REALPATH_ID) => Some(Outcome::Speaks),
            (Some(_), FXP_STATUS) if id == Some(REALPATH_ID) => {
                let code = payload
                    .get(4..8)
                    .map_or(0, |code| u32::from_be_bytes(code.try_into().expect("4")));
                Some(Outcome::DoesNotSpeak(format!(
                    "it refused realpath(\".\") with status {code} (the user's directory is not usable)"
                )))
            }
            (Some(_), other) => Some(Outcome::DoesNotSpeak(format!(
                "it answered realpath(\".\") with a packet of type {other}"
            ))),
        }
    }
}

/// A short, printable prefix of what a server sent, for the error message.
fn shown(bytes: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(&bytes[..bytes.len().min(40)])
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("\"{}\"", text.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(version: u32) -> Vec<u8> {
        packet(FXP_VERSION, &version.to_be_bytes())
    }

    fn name(id: u32) -> Vec<u8> {
        let mut payload = id.to_be_bytes().to_vec();
        payload.extend_from_slice(&1u32.to_be_bytes());
        payload.extend_from_slice(&5u32.to_be_bytes());
        payload.extend_from_slice(b"/home");
        packet(FXP_NAME, &payload)
    }

    #[test]
    fn the_opening_is_init_version_3_then_realpath_of_dot() {
        assert_eq!(
            opening(),
            [
                &[0, 0, 0, 5, FXP_INIT, 0, 0, 0, 3][..],
                &[0, 0, 0, 10, FXP_REALPATH, 0, 0, 0, 1, 0, 0, 0, 1, b'.'][..],
            ]
            .concat()
        );
    }

    #[test]
    fn version_then_name_speaks_sftp_even_a_byte_at_a_time() {
        let answer = [version(3), name(REALPATH_ID)].concat();
        let mut exchange = Exchange::default();
        let outcomes: Vec<_> = answer
            .iter()
            .filter_map(|byte| exchange.receive(&[*byte]))
            .collect();
        assert_eq!(outcomes, [Outcome::Speaks]);
    }

    #[test]
    fn a_forced_command_s_text_is_not_sftp() {
        let mut exchange = Exchange::default();
        let outcome = exchange.receive(b"this-server-offers-no-sftp\n");
        assert!(
            matches!(&outcome, Some(Outcome::DoesNotSpeak(why)) if why.contains("this-server-offers-no-sftp")),
            "{outcome:?}"
        );
    }

    #[test]
    fn a_status_or_a_closed_session_is_a_refusal() {
        let mut status = REALPATH_ID.to_be_bytes().to_vec();
        status.extend_from_slice(&3u32.to_be_bytes());
        let mut exchange = Exchange::default();
        let outcome = exchange.receive(&[version(3), packet(FXP_STATUS, &status)].concat());
        assert!(matches!(outcome, Some(Outcome::DoesNotSpeak(why)) if why.contains("status 3")));

        let mut short = Exchange::default();
        assert_eq!(short.receive(b"no"), None);
        assert!(matches!(short.closed(), Outcome::DoesNotSpeak(why) if why.contains("\"no\"")));

        let mut silent = Exchange::default();
        assert_eq!(silent.receive(&version(3)), None);
        assert!(matches!(silent.closed(), Outcome::DoesNotSpeak(why) if why.contains("realpath")));
    }

    #[test]
    fn a_first_packet_that_is_not_version_is_a_refusal() {
        let mut exchange = Exchange::default();
        let outcome = exchange.receive(&name(REALPATH_ID));
        assert!(matches!(outcome, Some(Outcome::DoesNotSpeak(why)) if why.contains("type 104")));
    }
}
