//! PostgreSQL: fresh databases on the shared server named by `TEST_POSTGRES_URL`, and private
//! clusters a test may stop and start (a database outage).

use std::{
    path::PathBuf,
    process::{Command, Stdio},
};

use sea_orm::{ConnectionTrait as _, Database};

use crate::{ports::free_port, tools::tool_env};

/// Creates an empty PostgreSQL database and returns its URL.
pub async fn fresh_postgres_database() -> String {
    let admin_url = tool_env("TEST_POSTGRES_URL");
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(admin_url.as_str())
        .await
        .expect("connect to TEST_POSTGRES_URL");
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create test database");
    admin.close().await.ok();
    let (base, _) = admin_url.rsplit_once('/').expect("URL has a database path");
    format!("{base}/{name}")
}

/// Drops a PostgreSQL database, disconnecting its users first.
pub async fn drop_postgres_database(url: &str) {
    let admin_url = tool_env("TEST_POSTGRES_URL");
    let name = url.rsplit_once('/').expect("URL has a database path").1;
    let admin = Database::connect(admin_url.as_str())
        .await
        .expect("connect to TEST_POSTGRES_URL");
    admin
        .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .expect("drop test database");
    admin.close().await.ok();
}

/// A PostgreSQL cluster of a test's own, which the test may stop and start (a database
/// outage) without disturbing the shared one. Run as the `postgres` OS user when the tests run
/// as root, as `scripts/tools.sh` does. Stopped and removed when dropped.
#[derive(Debug)]
pub struct PrivatePostgres {
    dir: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl PrivatePostgres {
    /// Creates and starts a cluster (`PG_BINDIR` from `scripts/test`).
    pub fn start() -> PrivatePostgres {
        let dir = std::env::temp_dir().join(format!("connector-outage-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("cluster directory");
        let cluster = PrivatePostgres {
            port: free_port(),
            dir,
        };
        if Self::as_root() {
            cluster.run(
                "chown",
                &[
                    "-R",
                    "postgres:postgres",
                    &cluster.dir.display().to_string(),
                ],
            );
        }
        let data = cluster.data();
        cluster.pg(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "--no-instructions",
            ],
        );
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\nfsync = off\n",
            cluster.port,
            cluster.dir.display()
        );
        cluster.run(
            "sh",
            &[
                "-c",
                &format!("printf \"{conf}\" >> {data}/postgresql.conf"),
            ],
        );
        cluster.start_again();
        cluster
    }

    /// `postgres://…` of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the cluster at once (`pg_ctl stop -m immediate`): clients lose their connections.
    pub fn stop(&self) {
        self.pg(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }

    /// Starts the stopped cluster again.
    pub fn start_again(&self) {
        let log = format!("{}/postgres.log", self.dir.display());
        self.pg(
            "pg_ctl",
            &["-D", &self.data(), "-l", &log, "-w", "-t", "60", "start"],
        );
    }

    fn data(&self) -> String {
        format!("{}/data", self.dir.display())
    }

    fn as_root() -> bool {
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
    }

    fn pg(&self, program: &str, args: &[&str]) {
        let program = format!("{}/{program}", tool_env("PG_BINDIR"));
        if Self::as_root() {
            let mut all = vec!["-u", "postgres", "--", program.as_str()];
            all.extend(args);
            self.run("runuser", &all);
        } else {
            self.run(&program, args);
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let output = Command::new(program)
            .args(args)
            .current_dir("/")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|error| panic!("{program}: {error}"));
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data();
        let program = format!("{}/pg_ctl", tool_env("PG_BINDIR"));
        let mut command = if Self::as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--", &program]);
            command
        } else {
            Command::new(&program)
        };
        let _ = command
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .current_dir("/")
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
