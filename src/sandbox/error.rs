//! Why a sandbox could not start.

use std::io;

use crate::fs_error::reason;
use crate::sim::seed::SeedError;

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("{0}")]
    Options(String),
    #[error("cannot listen on 127.0.0.1:{port}: {}{}", reason(.source), bind_hint(.source))]
    Bind { port: u16, source: io::Error },
    #[error("cannot read seed {path}: {}{}", reason(.source), seed_hint(.source))]
    SeedFile { path: String, source: io::Error },
    #[error("seed {path}: {error}")]
    Seed { path: String, error: SeedError },
    #[error("cannot start the runtime: {}", reason(.0))]
    Runtime(io::Error),
}

/// What to do about a port that cannot be had.
fn bind_hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::AddrInUse => {
            "; another program (an earlier sandbox?) is listening there: stop it, or pass \
             another --port (--port 0 picks a free one)"
        }
        io::ErrorKind::PermissionDenied => {
            "; ports below 1024 need privileges: pass --port 1024 or above (--port 0 picks a \
             free one)"
        }
        _ => "",
    }
}

fn seed_hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::NotFound => "; check the path given to --seed",
        io::ErrorKind::PermissionDenied => "; check the file's permissions",
        io::ErrorKind::IsADirectory => "; --seed takes a CSV file",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_port_says_what_to_do_without_the_os_error_number() {
        let e = SandboxError::Bind {
            port: 8787,
            source: io::Error::from(io::ErrorKind::AddrInUse),
        };
        let m = e.to_string();
        assert!(
            m.starts_with("cannot listen on 127.0.0.1:8787: address in use; "),
            "{m}"
        );
        assert!(m.contains("--port 0 picks a free one"), "{m}");
        let e = SandboxError::Bind {
            port: 8787,
            source: io::Error::from_raw_os_error(98),
        };
        assert!(!e.to_string().contains("os error"), "{e}");
    }
}
