//! moto (PyPI) as AWS STS and IAM for the S3 connector tests.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::{
    ports::{free_port, wait_for_port},
    tools::tool_env,
};

/// An AWS access key of an IAM user at [`Moto`].
#[derive(Debug, Clone)]
pub struct AwsKey {
    /// The user's ARN.
    pub arn: String,
    /// Access key id.
    pub id: String,
    /// Secret access key.
    pub secret: String,
}

/// moto's server mode (PyPI) as STS and IAM on a free loopback port, with request signing
/// enforced: users `alice` and `bob` (one account, `123456789012`) are created while moto still
/// accepts unsigned calls, each with an access key and a policy allowing
/// `sts:GetSessionToken`; every later call must be signed with a real key. Stopped when dropped.
#[derive(Debug)]
pub struct Moto {
    /// Its base URL.
    pub url: String,
    /// Alice's key.
    pub alice: AwsKey,
    /// Bob's key (same account).
    pub bob: AwsKey,
    process: Child,
}

/// The calls `Moto::start` makes before moto starts checking signatures.
const MOTO_SETUP_CALLS: usize = 6;

const MOTO_SETUP: &str = r#"
import json, sys, boto3
iam = boto3.client("iam", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="setup", aws_secret_access_key="setup")
policy = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["sts:GetSessionToken", "sts:GetCallerIdentity"], "Resource": "*"}]})
keys = {}
for name in ("alice", "bob"):
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    key = iam.create_access_key(UserName=name)["AccessKey"]
    iam.put_user_policy(UserName=name, PolicyName="sessions", PolicyDocument=policy)
    keys[name] = {"arn": arn, "id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
print(json.dumps(keys))
"#;

impl Moto {
    /// Starts moto and creates the users.
    pub fn start() -> Moto {
        let port = free_port();
        let process = Command::new(tool_env("MOTO_SERVER_BIN"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", MOTO_SETUP_CALLS.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        wait_for_port(port, Duration::from_secs(60));
        let url = format!("http://127.0.0.1:{port}");
        let output = Command::new(tool_env("TEST_PYTHON"))
            .args(["-c", MOTO_SETUP, &url])
            .output()
            .expect("run the moto setup");
        assert!(
            output.status.success(),
            "moto setup failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let keys: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("the keys as JSON");
        let key = |name: &str| AwsKey {
            arn: keys[name]["arn"].as_str().expect("arn").to_owned(),
            id: keys[name]["id"].as_str().expect("id").to_owned(),
            secret: keys[name]["secret"].as_str().expect("secret").to_owned(),
        };
        Moto {
            alice: key("alice"),
            bob: key("bob"),
            url,
            process,
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}
