//! A small harness for end-to-end tests: an in-process sandbox on an
//! ephemeral 127.0.0.1 port, a temporary directory with a config whose
//! secrets are files, and helpers to run invitesync in-process or as the
//! built binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use invitesync::job::{self, JobError, RunOptions, RunReport};
use invitesync::progress::ProgressMode;
use invitesync::sandbox::{Sandbox, SandboxOptions};
use invitesync::shutdown::Shutdown;

pub const HEADER: &str =
    "vendor,scope,invite_id,email,first_name,last_name,sender_id,status,roles,note";
pub const ORG: &str = "5f1a2b3c4d5e6f7a8b9c0d1e";

pub struct World {
    pub sandbox: Sandbox,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl World {
    /// A sandbox (seeded when `seed` is given) and a config for its four vendors
    /// named mighty, gate, om and hub; `extra` is appended to the config.
    pub async fn start(seed: Option<&str>, extra: &str) -> World {
        let options = SandboxOptions::ephemeral();
        let sandbox = match seed {
            Some(s) => Sandbox::start_with_seed(&options, s)
                .await
                .expect("sandbox starts"),
            None => Sandbox::start(&options).await.expect("sandbox starts"),
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let secrets = dir.path().join("secrets");
        std::fs::create_dir(&secrets).expect("secrets dir");
        let c = sandbox.credentials().clone();
        for (name, value) in [
            ("mighty", c.mighty_token.as_str()),
            ("gate", c.securegate_api_key.as_str()),
            ("om-public", c.om_public_key.as_str()),
            ("om-private", c.om_private_key.as_str()),
            ("hub", c.ctrl_hub_token.as_str()),
        ] {
            let file = secrets.join(name);
            std::fs::write(&file, format!("{value}\n")).expect("secret file");
            // As a credential file should be: readable by its owner alone.
            #[cfg(unix)]
            std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .expect("secret file mode");
        }
        let world = World {
            config: dir.path().join("invitesync.toml"),
            sandbox,
            dir,
        };
        world.write_config(extra);
        world
    }

    pub fn base_url(&self) -> String {
        self.sandbox.base_url()
    }

    pub fn write_config(&self, extra: &str) {
        let base = self.base_url();
        let text = format!(
            r#"[run]
concurrency = 16
max_attempts = 4
request_timeout = "5s"
backoff_base = "10ms"
backoff_cap = "200ms"
grace_period = "3s"

[vendors.mighty]
kind = "mighty_networks"
base_url = "{base}"
token = {{ file = "secrets/mighty" }}

[vendors.gate]
kind = "securegate"
base_url = "{base}"
api_key = {{ file = "secrets/gate" }}

[vendors.om]
kind = "ops_manager"
base_url = "{base}"
public_key = {{ file = "secrets/om-public" }}
private_key = {{ file = "secrets/om-private" }}

[vendors.hub]
kind = "ctrl_hub"
base_url = "{base}"
session_token = {{ file = "secrets/hub" }}
{extra}"#
        );
        std::fs::write(&self.config, text).expect("config");
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write file");
        p
    }

    pub fn options(&self, input: &Path) -> RunOptions {
        RunOptions {
            input: input.to_path_buf(),
            config: self.config.clone(),
            // In the world's directory, as the binary run there would keep it.
            state: Some(self.path("invitesync.db")),
            progress: ProgressMode::Quiet,
            ..RunOptions::default()
        }
    }

    /// Runs in-process with `opts`.
    pub async fn run_with(&self, opts: RunOptions) -> Result<RunReport, JobError> {
        job::run(opts, Shutdown::new()).await
    }

    pub async fn run(&self, input: &Path) -> RunReport {
        self.run_with(self.options(input))
            .await
            .expect("run completes")
    }

    /// Runs the built binary with `args` in the world's directory.
    pub fn cli(&self, args: &[&str]) -> Output {
        assert_cmd::Command::cargo_bin("invitesync")
            .expect("binary built")
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG")
            .args(args)
            .output()
            .expect("binary runs")
    }
}

/// The results file as rows of cells (header first).
pub fn read_csv(path: &Path) -> Vec<Vec<String>> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(path)
        .expect("results readable");
    r.byte_records()
        .map(|rec| {
            rec.expect("record")
                .iter()
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect()
        })
        .collect()
}

/// The value of `column` in each data row of a CSV read with [`read_csv`].
pub fn column(rows: &[Vec<String>], column: &str) -> Vec<String> {
    let i = rows[0]
        .iter()
        .position(|c| c == column)
        .expect("column exists");
    rows[1..]
        .iter()
        .map(|r| r.get(i).cloned().unwrap_or_default())
        .collect()
}
