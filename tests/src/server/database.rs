//! A test server's database, inspected and changed behind the server's back: what is at rest,
//! tampering, and rows seeded faster than the API could create them.

use sea_orm::{ConnectionTrait as _, Database};

use super::TestServer;

impl TestServer {
    /// Runs a SQL query that returns one integer (test inspection of what is at rest).
    pub async fn query_i64(&self, sql: &str) -> i64 {
        let db = Database::connect(self.database_url.as_str())
            .await
            .expect("connect");
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                sql,
            ))
            .await
            .expect("query")
            .expect("one row");
        let value: i64 = row.try_get_by_index(0).expect("an integer");
        db.close().await.ok();
        value
    }

    /// Runs a SQL query that returns one text value.
    pub async fn query_string(&self, sql: &str) -> String {
        let db = Database::connect(self.database_url.as_str())
            .await
            .expect("connect");
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                sql,
            ))
            .await
            .expect("query")
            .expect("one row");
        let value: String = row.try_get_by_index(0).expect("a text value");
        db.close().await.ok();
        value
    }

    /// Runs a SQL query and returns the first column of every row as bytes.
    pub async fn query_blobs(&self, sql: &str) -> Vec<Vec<u8>> {
        let db = Database::connect(self.database_url.as_str())
            .await
            .expect("connect");
        let rows = db
            .query_all_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                sql,
            ))
            .await
            .expect("query");
        db.close().await.ok();
        rows.iter()
            .map(|row| row.try_get_by_index::<Vec<u8>>(0).expect("a blob"))
            .collect()
    }

    /// Marks a connector deauthorized (reason REVOKED) directly in the database, as the lifecycle
    /// rules of a later issue will.
    pub async fn deauthorize_in_database(&self, name: &str) {
        use connector_server::clock::Clock as _;
        let id = name.rsplit('/').next().expect("a connector name");
        self.execute_sql(&format!(
            "UPDATE connector SET state = 'DEAUTHORIZED', deauthorization_reason = 'REVOKED', \
             deauthorize_time = {}, revision = revision + 1 WHERE id = '{id}'",
            self.clock.now().timestamp_micros()
        ))
        .await;
    }

    /// Writes `count` authorized Azure connectors straight into the database (more than
    /// Azurite's few storage accounts could link), with the given inactivity deadline, in
    /// statements of 1000 rows.
    pub async fn seed_connectors(&self, account: &str, count: usize, inactivity_deadline: i64) {
        let db = Database::connect(self.database_url.as_str())
            .await
            .expect("connect");
        let ids: Vec<String> = (0..count)
            .map(|_| uuid::Uuid::new_v4().to_string())
            .collect();
        for (chunk_number, chunk) in ids.chunks(1000).enumerate() {
            let rows: Vec<String> = chunk
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    let n = chunk_number * 1000 + i;
                    format!(
                        "('{id}', '{account}', 'azure-blob-storage', 'seeded {n}', 'AUTHORIZED', \
                         NULL, NULL, 'seeded{n:06}', 'seeded{n:06}', '{{}}', 1, 1, 1, NULL, 1, \
                         {inactivity_deadline})"
                    )
                })
                .collect();
            db.execute_unprepared(&format!(
                "INSERT INTO connector (id, account, connector_type, display_name, state, \
                 deauthorization_reason, deauthorize_time, external_account_id, \
                 external_account_label, labels, create_time, update_time, authorize_time, \
                 last_transfer_time, revision, inactivity_deadline) VALUES {}",
                rows.join(", ")
            ))
            .await
            .expect("seed connectors");
        }
        db.close().await.ok();
    }

    /// Runs SQL statements against the server's database (for tampering tests).
    pub async fn execute_sql(&self, sql: &str) {
        let db = Database::connect(self.database_url.as_str())
            .await
            .expect("connect");
        db.execute_unprepared(sql).await.expect("execute");
        db.close().await.ok();
    }
}
