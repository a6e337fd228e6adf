//! wsgidav (PyPI) as the WebDAV server of the `webdav` connector tests.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::{
    ports::{free_port, wait_for_port},
    tools::tool_env,
};

/// A WebDAV server (wsgidav, from PyPI) on a free loopback port, serving an empty directory
/// with HTTP Basic users. Stopped when dropped.
#[derive(Debug)]
pub struct WebDavServer {
    /// Its port.
    pub port: u16,
    process: Child,
    dir: tempfile::TempDir,
}

impl WebDavServer {
    /// Starts one accepting `users` (name, password).
    pub fn start(users: &[(&str, &str)]) -> WebDavServer {
        Self::start_on(free_port(), users, tempfile::tempdir().expect("temp dir"))
    }

    fn start_on(port: u16, users: &[(&str, &str)], dir: tempfile::TempDir) -> WebDavServer {
        let root = dir.path().join("root");
        // A collection below the root too (`/dav/`), for URLs with a path.
        std::fs::create_dir_all(root.join("dav")).expect("root");
        let users: String = users
            .iter()
            .map(|(name, password)| {
                format!("      \"{name}\":\n        password: \"{password}\"\n")
            })
            .collect();
        let config = dir.path().join("wsgidav.yaml");
        std::fs::write(
            &config,
            format!(
                "host: 127.0.0.1\nport: {port}\nverbose: 0\nprovider_mapping:\n  \"/\": \"{}\"\n\
                 http_authenticator:\n  domain_controller: null\n  accept_basic: true\n  \
                 accept_digest: false\n  default_to_digest: false\n\
                 simple_dc:\n  user_mapping:\n    \"*\":\n{users}",
                root.display()
            ),
        )
        .expect("wsgidav config");
        let process = Command::new(tool_env("WSGIDAV_BIN"))
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start wsgidav");
        wait_for_port(port, Duration::from_secs(30));
        WebDavServer { port, process, dir }
    }

    /// The base URL of its root collection.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Stops it and starts it again on the same port with other users (a password changed at
    /// the server).
    pub fn restart_with(mut self, users: &[(&str, &str)]) -> WebDavServer {
        let _ = self.process.kill();
        let _ = self.process.wait();
        let port = self.port;
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
        // Wait for the port to be free again.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            assert!(
                std::time::Instant::now() < deadline,
                "port {port} stays busy"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self::start_on(port, users, dir)
    }
}

impl Drop for WebDavServer {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}
