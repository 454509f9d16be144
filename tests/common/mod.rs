//! A small harness for end-to-end tests: an in-process sandbox on an
//! ephemeral 127.0.0.1 port, a temporary directory with a config whose
//! secrets are files, and helpers to run invitesync in-process or as the
//! built binary ([`binary`], the one way every test runs it).

#![allow(dead_code)]

pub mod config;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use invitesync::job::{self, JobError, RunOptions, RunReport};
use invitesync::progress::ProgressMode;
use invitesync::sandbox::{Sandbox, SandboxOptions};
use invitesync::shutdown::Shutdown;

/// The built binary, with an environment that cannot change what it does:
/// no `INVITESYNC_*` variable (a developer's shell may export some), no
/// `RUST_LOG`, `NO_COLOR` or `JOB_COMPLETION_INDEX`, help text 100 columns
/// wide, and stdin closed (no terminal, as under cron). A test that wants a
/// variable sets it on the command.
pub fn binary() -> Command {
    clean(Command::new(env!("CARGO_BIN_EXE_invitesync")))
}

/// The built binary started by `wrapper` (`nohup`, say): `wrapper BINARY`,
/// in the same clean environment as [`binary`].
pub fn wrapped(wrapper: &str) -> Command {
    let mut cmd = clean(Command::new(wrapper));
    cmd.arg(env!("CARGO_BIN_EXE_invitesync"));
    cmd
}

fn clean(mut cmd: Command) -> Command {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("INVITESYNC_") {
            cmd.env_remove(&name);
        }
    }
    cmd.env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .env_remove("JOB_COMPLETION_INDEX")
        .env("COLUMNS", "100")
        .stdin(Stdio::null());
    cmd
}

/// The binary with no world (help, version, completions), output captured.
pub fn bare(args: &[&str]) -> Output {
    binary().args(args).output().expect("binary runs")
}

pub const HEADER: &str =
    "vendor,scope,invite_id,email,first_name,last_name,sender_id,status,roles,note";
pub const ORG: &str = "5f1a2b3c4d5e6f7a8b9c0d1e";

pub struct World {
    pub sandbox: Sandbox,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl World {
    /// A sandbox (seeded when `seed` is given) and a config with the accounts
    /// the tests' inputs name ([`config::account`]: mighty, gate, om, hub);
    /// `extra` is appended to the config.
    pub async fn start(seed: Option<&str>, extra: &str) -> World {
        let options = SandboxOptions::ephemeral();
        let sandbox = match seed {
            Some(s) => Sandbox::start_with_seed(&options, s)
                .await
                .expect("sandbox starts"),
            None => Sandbox::start(&options).await.expect("sandbox starts"),
        };
        let dir = tempfile::tempdir().expect("temp dir");
        config::write_secrets(dir.path(), sandbox.credentials()).expect("secret files");
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
        let text = format!(
            r#"[run]
concurrency = 16
max_attempts = 4
request_timeout = "5s"
backoff_base = "10ms"
backoff_cap = "200ms"
grace_period = "3s"

{}{extra}"#,
            config::vendor_tables(&self.base_url())
        );
        std::fs::write(&self.config, text).expect("config");
    }

    /// Replaces, in the config file, each `(text, with)`: every text must
    /// be there.
    pub fn edit_config(&self, edits: &[(&str, &str)]) {
        let mut text = std::fs::read_to_string(&self.config).expect("config");
        for (from, to) in edits {
            assert!(text.contains(from), "the config has no {from:?}");
            text = text.replace(from, to);
        }
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

    /// The built binary ([`binary`]) in the world's directory, with `args`.
    pub fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut cmd = binary();
        cmd.current_dir(self.dir.path()).args(args);
        cmd
    }

    /// Runs the built binary with `args` in the world's directory.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_env(args, &[])
    }

    /// Runs the built binary with `args` and the variables `env` set.
    pub fn cli_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("binary runs")
    }
}

/// A sandbox on a runtime of its own, for tests that drive the built binary
/// from plain `#[test]` functions. Other files add the helpers they need.
pub struct Setup {
    pub rt: tokio::runtime::Runtime,
    world: Option<World>,
}

impl Setup {
    /// A world whose config has `extra` appended (see [`World::start`]).
    pub fn with_config(extra: &str) -> Setup {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let world = rt.block_on(World::start(None, extra));
        Setup {
            rt,
            world: Some(world),
        }
    }

    pub fn world(&self) -> &World {
        self.world.as_ref().expect("world")
    }
}

impl Drop for Setup {
    /// The sandbox's tasks belong to the runtime: stop them inside it.
    fn drop(&mut self) {
        let world = self.world.take();
        self.rt.block_on(async move { drop(world) });
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
