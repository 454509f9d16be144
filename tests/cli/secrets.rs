//! No credential in any log line at any level, nor in the files a run leaves.

use crate::common::{HEADER, ORG};
use crate::{Setup, cli, stderr};

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
