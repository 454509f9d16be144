//! No credential in any log line at any level, nor in the files a run
//! leaves, even when a vendor echoes it; credentials that could not travel
//! in a header, or cannot be read, stop the run before anything is sent.

use crate::common::{HEADER, ORG, World, column, read_csv};
use crate::echo::EchoServer;
use crate::{Setup, cli, error_message, stderr};

#[test]
fn no_secret_in_any_log_line_even_at_trace_level() {
    let s = Setup::new(None, "");
    let w = s.world();
    let c = w.sandbox.credentials().clone();
    let secrets: &[&str] = &c.iter().map(|(_, value)| value).collect::<Vec<_>>();
    let mut text = String::from(HEADER) + "\n";
    for i in 0..5 {
        text.push_str(&format!(
            "mighty,acme,{},a{i}@example.com,A,B,7,,,\n",
            i + 1
        ));
        text.push_str(&format!("gate,ev1,inv{i},,,,,accepted,,\n"));
        text.push_str(&format!("om,{ORG},,u{i}@example.com,,,,,ORG_MEMBER,\n"));
        text.push_str(&format!("hub,,uuid-{i},,,,,accepted,,\n"));
    }
    w.write("in.csv", &text);
    for format in ["text", "json"] {
        let o = cli(
            w,
            &[
                "run",
                "in.csv",
                "-c",
                "invitesync.toml",
                "--new-run",
                "--force",
                "--log-format",
                format,
            ],
            &[("RUST_LOG", "trace")],
        );
        let err = stderr(&o);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{format}: {}",
            &err[err.len().saturating_sub(2000)..]
        );
        assert!(
            err.lines().filter(|l| l.contains("TRACE")).count() > 50,
            "{format}: trace logs of the HTTP stack were on"
        );
        for secret in secrets {
            assert!(!err.contains(secret), "{format}: `{secret}` in the logs");
        }
    }
    // Nor in the files the run leaves.
    for file in ["in.results.csv", "invitesync.db", "invitesync.db-wal"] {
        let Ok(bytes) = std::fs::read(w.path(file)) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        for secret in secrets {
            assert!(!text.contains(secret), "`{secret}` in {file}");
        }
    }
}

/// Writes a secret file readable by its owner alone.
fn secret_file(w: &World, name: &str, value: &str) {
    let path = w.path(name);
    std::fs::write(&path, value).expect("secret file");
    #[cfg(unix)]
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("secret mode");
}

/// Every file the run left in the world's directory (the config and the
/// secrets excepted), as bytes, with its name.
fn files_written(w: &World) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(w.dir.path()).expect("dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "secrets" || name == "invitesync.toml" || !entry.path().is_file() {
            continue;
        }
        out.push((name, std::fs::read(entry.path()).expect("read")));
    }
    out
}

#[test]
fn credentials_a_vendor_echoes_are_in_no_file_and_no_log() {
    let s = Setup::new(None, "");
    let w = s.world();
    let echo = EchoServer::start();
    // Each secret holds a core of letters and digits that every encoding
    // keeps as it is: finding the core anywhere means some form leaked.
    let cores = [
        "Q7zXgate",
        "K2mMighty",
        "N3pHubTok",
        "J9qOmPub",
        "H8wOmPriv",
    ];
    secret_file(w, "secrets/gate", "gate-Q7zXgate/with+plus&\"quote\"\n");
    secret_file(w, "secrets/mighty", "K2mMighty.tok~en\n");
    secret_file(w, "secrets/hub", "hub N3pHubTok=\n");
    secret_file(w, "secrets/om-public", "J9qOmPub\n");
    secret_file(w, "secrets/om-private", "H8wOmPriv\n");
    let base = echo.base_url();
    std::fs::write(
        &w.config,
        format!(
            r#"[run]
max_attempts = 1
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
"#
        ),
    )
    .expect("config");
    let mut text = String::from(HEADER) + "\n";
    text.push_str("mighty,acme,1,a@example.com,,,,,,\n");
    text.push_str("gate,ev1,json,,,,,sent,,\n");
    text.push_str("gate,ev1,plain,,,,,sent,,\n");
    text.push_str("gate,ev1,ok,,,,,sent,,\n");
    text.push_str("gate,ev1,r401,,,,,sent,,\n");
    text.push_str(&format!("om,{ORG},,u@example.com,,,,,ORG_MEMBER,\n"));
    text.push_str("hub,,uuid-json,,,,,accepted,,\n");
    text.push_str("hub,,uuid-plain,,,,,accepted,,\n");
    text.push_str("hub,,uuid-ok,,,,,accepted,,\n");
    w.write("in.csv", &text);
    for format in ["text", "json"] {
        let o = cli(
            w,
            &[
                "run",
                "in.csv",
                "-c",
                "invitesync.toml",
                "--new-run",
                "--force",
                "--summary-json",
                "summary.json",
                "--log-format",
                format,
            ],
            &[("RUST_LOG", "trace")],
        );
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{format}: {err}");
        let results = read_csv(&w.path("in.results.csv"));
        let errors = column(&results, "error");
        assert!(
            errors.iter().filter(|e| e.contains("[redacted]")).count() >= 6,
            "{format}: the vendor's text is kept, the secrets cut out: {errors:?}"
        );
        // A digest `Authorization` echoed back: its username is the public
        // key, and its response hash is a credential of its own.
        let om = &errors[5];
        assert!(
            om.contains("username=\"[redacted]\"") && om.contains("response=\"[redacted]\""),
            "{format}: {om}"
        );
        assert!(
            column(&results, "remote_id")
                .iter()
                .any(|id| id.contains("[redacted]")),
            "{format}: {results:?}"
        );
        let mut seen = files_written(w);
        assert!(seen.iter().any(|(n, _)| n == "invitesync.db"), "{seen:?}");
        assert!(seen.iter().any(|(n, _)| n == "in.failed.csv"));
        assert!(seen.iter().any(|(n, _)| n == "summary.json"));
        seen.push(("stdout".into(), o.stdout.clone()));
        seen.push(("stderr".into(), o.stderr.clone()));
        for (name, bytes) in &seen {
            let text = String::from_utf8_lossy(bytes);
            for core in cores {
                assert!(
                    !text.contains(core),
                    "{format}: `{core}` in {name}: {}",
                    &text[text.find(core).unwrap_or(0).saturating_sub(200)..]
                        [..200.min(text.len())]
                );
            }
        }
    }
}

#[test]
fn a_secret_that_cannot_be_a_header_is_a_config_error_and_nothing_is_sent() {
    let s = Setup::new(None, "");
    let w = s.world();
    w.write("in.csv", &format!("{HEADER}\ngate,ev1,inv1,,,,,sent,,\n"));
    w.write("multi", "sandbox-securegate-key\nsecond line\n");
    let cases: Vec<(&str, &str, &str)> = vec![
        ("two lines", "key\nsecond\n", "holds more than one line"),
        ("a CR inside", "k\rey", "holds more than one line"),
        ("two line endings", "key\n\n", "holds more than one line"),
        ("a tab", "k\tey\n", "contains a control character"),
        ("an escape", "k\u{1b}[2Jey", "contains a control character"),
        ("not ASCII", "clé\n", "contains a non-ASCII character"),
        ("a trailing space", "key \n", "begins or ends with a space"),
        ("empty", "", "is empty"),
        ("only a newline", "\n", "is empty"),
        ("a NUL", "k\u{0}ey", "contains a control character"),
    ];
    let run = |env: &[(&str, &str)]| {
        let o = cli(w, &["run", "in.csv", "-c", "invitesync.toml"], env);
        error_message(&o, 2)
    };
    for (what, content, why) in cases {
        std::fs::write(w.path("secrets/gate"), content).expect("secret");
        let err = run(&[]);
        assert!(
            err.contains("vendors.gate.api_key: file ") && err.contains(why),
            "{what}: {err}"
        );
    }
    // A symbolic link to a file of several lines is that file.
    #[cfg(unix)]
    {
        std::fs::remove_file(w.path("secrets/gate")).expect("rm");
        std::os::unix::fs::symlink(w.path("multi"), w.path("secrets/gate")).expect("symlink");
        let err = run(&[]);
        assert!(err.contains("holds more than one line"), "{err}");
    }
    // The same rules for a variable.
    std::fs::write(
        &w.config,
        std::fs::read_to_string(&w.config).expect("config").replace(
            "api_key = { file = \"secrets/gate\" }",
            "api_key = { env = \"INVITESYNC_TEST_KEY\" }",
        ),
    )
    .expect("config");
    for value in [
        "sandbox-securegate-key\nx",
        "sandbox-securegate-key\r\n\r\n",
    ] {
        let err = run(&[("INVITESYNC_TEST_KEY", value)]);
        assert!(
            err.contains(
                "vendors.gate.api_key: environment variable INVITESYNC_TEST_KEY holds more than one line"
            ),
            "{err}"
        );
        assert!(!err.contains("sandbox-securegate-key"), "{err}");
    }
    let sent: u64 = w.sandbox.stats().vendors.values().map(|v| v.requests).sum();
    assert_eq!(sent, 0, "nothing was sent");
    // One line ending is what `echo KEY > file` writes: that is fine.
    let o = cli(
        w,
        &["run", "in.csv", "-c", "invitesync.toml"],
        &[("INVITESYNC_TEST_KEY", "sandbox-securegate-key\r\n")],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn secret_and_config_paths_that_are_not_small_files_are_refused_at_once() {
    let s = Setup::new(None, "");
    let w = s.world();
    w.write("in.csv", &format!("{HEADER}\ngate,ev1,inv1,,,,,sent,,\n"));
    // A 1 GiB file costs nothing on disk when it is sparse.
    let big = std::fs::File::create(w.path("big")).expect("big");
    big.set_len(1 << 30).expect("sparse");
    std::fs::create_dir(w.path("adir")).expect("dir");
    let mut paths = vec![
        (w.path("big"), "is larger than 64 KiB"),
        (w.path("adir"), "is a directory"),
    ];
    #[cfg(unix)]
    let _writer = {
        paths.push(("/dev/zero".into(), "is a device"));
        let fifo = w.path("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        paths.push((fifo.clone(), "is a named pipe"));
        FifoWriter::start(fifo)
    };
    let original = std::fs::read_to_string(&w.config).expect("config");
    for (path, why) in &paths {
        std::fs::write(
            &w.config,
            original.replace(
                "api_key = { file = \"secrets/gate\" }",
                &format!("api_key = {{ file = {:?} }}", path.display().to_string()),
            ),
        )
        .expect("config");
        for cmd in [
            &["run", "in.csv"][..],
            &["run", "in.csv", "--dry-run"],
            &["validate", "in.csv"],
        ] {
            let mut args = cmd.to_vec();
            args.extend(["-c", "invitesync.toml"]);
            let o = cli(w, &args, &[]);
            let err = error_message(&o, 2);
            assert!(
                err.contains(&format!(
                    "vendors.gate.api_key: cannot read {}: it {why}",
                    path.display()
                )),
                "{err}"
            );
        }
    }
    std::fs::write(&w.config, &original).expect("config");
    let big_config = w.path("big.toml");
    std::fs::write(&big_config, "#".repeat(2 << 20)).expect("big config");
    let mut configs: Vec<(String, &str)> = vec![
        ("big".into(), "is larger than 1 MiB"),
        ("big.toml".into(), "is larger than 1 MiB"),
        ("adir".into(), "is a directory"),
    ];
    #[cfg(unix)]
    {
        configs.push(("/dev/zero".into(), "is a device"));
        configs.push(("fifo".into(), "is a named pipe"));
    }
    for (config, why) in configs {
        for cmd in ["run", "validate"] {
            let o = cli(w, &[cmd, "in.csv", "--config", &config], &[]);
            let err = error_message(&o, 2);
            assert!(
                err.contains(&format!("cannot read the config file {config}: it {why}")),
                "{err}"
            );
        }
    }
    let sent: u64 = w.sandbox.stats().vendors.values().map(|v| v.requests).sum();
    assert_eq!(sent, 0, "nothing was sent");
}

/// Should the program open the named pipe after all, this writer lets it
/// read an end of file instead of waiting forever, so that the test fails
/// rather than hangs. Dropping it releases its own last wait.
#[cfg(unix)]
struct FifoWriter {
    fifo: std::path::PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[cfg(unix)]
impl FifoWriter {
    fn start(fifo: std::path::PathBuf) -> FifoWriter {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (path, flag) = (fifo.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                // Blocks until a reader opens the pipe; closing it at once
                // gives that reader an end of file.
                if std::fs::OpenOptions::new().write(true).open(&path).is_err() {
                    break;
                }
            }
        });
        FifoWriter {
            fifo,
            stop,
            thread: Some(thread),
        }
    }
}

#[cfg(unix)]
impl Drop for FifoWriter {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        // Opening for reading and writing never waits, and wakes the writer;
        // held until it is gone, so that no open of its can wait after this.
        let _reader = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.fifo);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(unix)]
#[test]
fn a_secret_file_others_may_read_gets_a_warning_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let s = Setup::new(None, "");
    let w = s.world();
    w.write("in.csv", &format!("{HEADER}\ngate,ev1,inv1,,,,,sent,,\n"));
    let o = cli(w, &["run", "in.csv", "-c", "invitesync.toml"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    std::fs::set_permissions(
        w.path("secrets/gate"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    for args in [&["run", "in.csv", "--new-run"][..], &["validate", "in.csv"]] {
        let mut args = args.to_vec();
        args.extend(["-c", "invitesync.toml"]);
        let o = cli(w, &args, &[]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let gate = std::path::Path::new("secrets").join("gate");
        assert!(
            stderr(&o).contains(&format!(
                "warning: vendors.gate.api_key: file {g} may be read by other users (mode 0644); \
                 restrict it with `chmod 600 {g}`",
                g = gate.display()
            )),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn a_dry_run_and_validate_need_every_secret_the_run_needs() {
    let s = Setup::new(
        None,
        "[vendors.extra]\nkind = \"securegate\"\nbase_url = \"https://gate.example\"\napi_key = { env = \"INVITESYNC_TEST_SURELY_UNSET\" }\n",
    );
    let w = s.world();
    w.write("in.csv", &format!("{HEADER}\ngate,ev1,inv1,,,,,sent,,\n"));
    let message = |args: &[&str]| {
        let mut args = args.to_vec();
        args.extend(["-c", "invitesync.toml"]);
        error_message(&cli(w, &args, &[]), 2)
    };
    let real = message(&["run", "in.csv"]);
    assert!(
        real.contains(
            "vendors.extra.api_key: environment variable INVITESYNC_TEST_SURELY_UNSET is not set"
        ),
        "{real}"
    );
    assert_eq!(message(&["run", "in.csv", "--dry-run"]), real);
    assert_eq!(message(&["validate", "in.csv"]), real);

    // A missing file, the same way.
    std::fs::remove_file(w.path("secrets/hub")).expect("rm");
    w.write_config("");
    let real = message(&["run", "in.csv"]);
    assert!(
        real.contains("vendors.hub.session_token: cannot read ") && real.contains("no such file"),
        "{real}"
    );
    assert_eq!(message(&["run", "in.csv", "--dry-run"]), real);
    assert_eq!(message(&["validate", "in.csv"]), real);
    let sent: u64 = w.sandbox.stats().vendors.values().map(|v| v.requests).sum();
    assert_eq!(sent, 0, "nothing was sent");
}
