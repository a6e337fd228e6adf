//! Debian's OpenSSH server on a free loopback port, for the `sftp` connector tests.
//!
//! Each server has its own host key and configuration in a temporary directory and lets in
//! only the test user (`SFTP_TEST_USER`, created by `scripts/tools.sh` with the password
//! `SFTP_TEST_PASSWORD` and no login shell), by password or by a client key the server
//! generated, and only to its SFTP subsystem.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::{
    ports::{free_port, wait_for_port},
    tools::tool_env,
};

/// A running `sshd`. Stopped when dropped.
#[derive(Debug)]
pub struct SshServer {
    /// Its port.
    pub port: u16,
    /// The user it lets in.
    pub user: String,
    /// That user's password.
    pub password: String,
    process: Child,
    dir: tempfile::TempDir,
}

/// Runs `ssh-keygen` with `args`, failing the test if it fails.
fn ssh_keygen(args: &[&str]) -> String {
    let output = Command::new("ssh-keygen")
        .args(args)
        .output()
        .expect("run ssh-keygen");
    assert!(
        output.status.success(),
        "ssh-keygen {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("ssh-keygen prints text")
}

/// Generates an ed25519 key pair at `path` (and `path.pub`), protected by `passphrase` when
/// it is not empty.
fn generate_key(path: &Path, passphrase: &str) {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(path.with_extension("pub"));
    ssh_keygen(&[
        "-q",
        "-t",
        "ed25519",
        "-N",
        passphrase,
        "-C",
        "",
        "-f",
        path.to_str().expect("a UTF-8 temp path"),
    ]);
}

/// What the server runs for the test user: its SFTP, or a forced command instead (an account
/// restricted to rsync, git-shell or a menu: it lets the user in and grants the `sftp`
/// subsystem, then runs its own command).
const SFTP: &str = "internal-sftp";
const NO_SFTP: &str = "/bin/echo this-server-offers-no-sftp";

impl SshServer {
    /// Starts one with a new host key.
    pub fn start() -> SshServer {
        Self::start_running(SFTP)
    }

    /// Starts one that logs the test user in but runs `echo` instead of SFTP for every session
    /// (`ForceCommand`), as OpenSSH does for restricted accounts.
    pub fn start_without_sftp() -> SshServer {
        Self::start_running(NO_SFTP)
    }

    fn start_running(command: &str) -> SshServer {
        let dir = tempfile::tempdir().expect("temp dir");
        generate_key(&dir.path().join("host_key"), "");
        generate_key(&dir.path().join("client_key"), "");
        generate_key(&dir.path().join("locked_client_key"), "correct horse");
        let authorized: String = ["client_key.pub", "locked_client_key.pub"]
            .iter()
            .map(|name| std::fs::read_to_string(dir.path().join(name)).expect("public key"))
            .collect();
        std::fs::write(dir.path().join("authorized_keys"), authorized).expect("authorized_keys");
        std::fs::write(dir.path().join("command"), command).expect("command");
        Self::start_on(free_port(), dir)
    }

    fn start_on(port: u16, dir: tempfile::TempDir) -> SshServer {
        let command = std::fs::read_to_string(dir.path().join("command")).expect("command");
        let path = |name: &str| dir.path().join(name).display().to_string();
        let user = tool_env("SFTP_TEST_USER");
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile {pid}\n\
             UsePAM no\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\nAuthorizedKeysFile {authorized}\nStrictModes no\n\
             AllowUsers {user}\nMaxStartups 100\nSubsystem sftp internal-sftp\n\
             ForceCommand {command}\n",
            host_key = path("host_key"),
            pid = path("sshd.pid"),
            authorized = path("authorized_keys"),
        );
        std::fs::write(dir.path().join("sshd_config"), config).expect("sshd_config");
        let process = Command::new(tool_env("SSHD_BIN"))
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(dir.path().join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sshd");
        wait_for_port(port, Duration::from_secs(30));
        SshServer {
            port,
            user,
            password: tool_env("SFTP_TEST_PASSWORD"),
            process,
            dir,
        }
    }

    /// The client private key the server accepts (OpenSSH format, no passphrase).
    pub fn client_key(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("client_key")).expect("client key")
    }

    /// A client private key the server accepts, protected by the passphrase `correct horse`.
    pub fn locked_client_key(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("locked_client_key")).expect("client key")
    }

    /// The host key's fingerprint as `ssh-keygen -l` prints it (`SHA256:…`).
    pub fn host_key_fingerprint(&self) -> String {
        let listed = ssh_keygen(&[
            "-l",
            "-E",
            "sha256",
            "-f",
            self.host_key_path().to_str().expect("a UTF-8 temp path"),
        ]);
        listed
            .split_whitespace()
            .nth(1)
            .expect("ssh-keygen -l prints the fingerprint second")
            .to_owned()
    }

    fn host_key_path(&self) -> PathBuf {
        self.dir.path().join("host_key")
    }

    /// Stops it and starts it again on the same port with a new host key (a rebuilt server, or
    /// someone in the middle).
    pub fn restart_with_new_host_key(mut self) -> SshServer {
        let _ = self.process.kill();
        let _ = self.process.wait();
        let port = self.port;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            assert!(
                std::time::Instant::now() < deadline,
                "port {port} stays busy"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        generate_key(&self.host_key_path(), "");
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
        Self::start_on(port, dir)
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}
