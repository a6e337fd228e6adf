//! The real `connector-server` binary as a child process, for what only a process shows: signals,
//! exit codes, refused starts, logs, and two processes on one database.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::{ports::free_port, tools::workspace_binary};

/// The `connector-server` binary running in a working directory, its logs in files there.
#[derive(Debug)]
pub struct ServerBinary {
    /// The port it listens on.
    pub port: u16,
    child: Child,
    workdir: std::path::PathBuf,
}

impl ServerBinary {
    /// Starts the binary in `workdir`, listening on `127.0.0.1:port`, with `env` added and
    /// logs at `trace` in a file of `workdir`.
    pub fn start(workdir: &Path, port: u16, env: &[(&str, String)]) -> ServerBinary {
        Self::start_listening(workdir, &format!("127.0.0.1:{port}"), env)
    }

    /// Like [`Self::start`], listening on `listen` (`address:port`).
    pub fn start_listening(workdir: &Path, listen: &str, env: &[(&str, String)]) -> ServerBinary {
        let port = listen
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .expect("address:port");
        // Logs go to a file: at `trace` they would fill a pipe nobody reads and stall the server.
        let log =
            std::fs::File::create(workdir.join(format!("server-{}.log", uuid::Uuid::new_v4())))
                .expect("log file");
        let child = Command::new(workspace_binary("connector-server"))
            .current_dir(workdir)
            .env("CONNECTOR_LISTEN", listen)
            // The most verbose level: secrets must stay out of every log line.
            .env("RUST_LOG", "trace")
            .env_remove("DATABASE_URL")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start connector-server");
        ServerBinary {
            child,
            port,
            workdir: workdir.to_owned(),
        }
    }

    /// Waits until it serves (plaintext health check), for 30 s at most.
    pub async fn ready(self) -> Self {
        wait_until_serving(
            &format!("http://127.0.0.1:{}", self.port),
            Duration::from_secs(30),
        )
        .await;
        self
    }

    /// Sends a signal and waits for the process to end; returns its status and logs.
    pub fn signal(self, signal: &str) -> (std::process::ExitStatus, String) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        self.exit_within(Duration::from_secs(20))
    }

    /// Waits up to `limit` for the process to end by itself (a refused start); returns its
    /// status and logs.
    pub fn exit_within(mut self, limit: Duration) -> (std::process::ExitStatus, String) {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // Every log file of this working directory: the runs before this one too.
                let mut logs = String::new();
                for entry in std::fs::read_dir(&self.workdir).expect("workdir").flatten() {
                    if entry.file_name().to_string_lossy().ends_with(".log") {
                        logs += &std::fs::read_to_string(entry.path()).unwrap_or_default();
                    }
                }
                return (status, logs);
            }
            if std::time::Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("server did not stop within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Waits until a server at `endpoint` answers health checks: it is listening and done starting
/// (a process binds its port before it has created its files and opened its database).
pub async fn wait_until_serving(endpoint: &str, limit: Duration) {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let answered = async {
            let channel = tonic::transport::Endpoint::from_shared(endpoint.to_owned())
                .ok()?
                .connect()
                .await
                .ok()?;
            tonic_health::pb::health_client::HealthClient::new(channel)
                .check(tonic_health::pb::HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .ok()
        };
        if tokio::time::timeout(Duration::from_secs(2), answered)
            .await
            .ok()
            .flatten()
            .is_some()
        {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{endpoint} is not serving after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A second `connector-server` process (the real binary) started in `dir` with the config file
/// `config` (its database) and `master_key`, listening on a free loopback port, serving once
/// this returns; `stderr` gets its logs at `rust_log`. Kill it when done.
pub async fn start_second_process(
    dir: &Path,
    config: &Path,
    master_key: &str,
    rust_log: &str,
    stderr: Stdio,
) -> (Child, String) {
    let port = free_port();
    let second = Command::new(workspace_binary("connector-server"))
        .current_dir(dir)
        .env("CONNECTOR_CONFIG", config)
        .env("CONNECTOR_LISTEN", format!("127.0.0.1:{port}"))
        .env("CONNECTOR_MASTER_KEY", master_key)
        .env("CONNECTOR_MASTER_KEY_ID", "test-key")
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", rust_log)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start the second process");
    let endpoint = format!("http://127.0.0.1:{port}");
    wait_until_serving(&endpoint, Duration::from_secs(30)).await;
    (second, endpoint)
}
