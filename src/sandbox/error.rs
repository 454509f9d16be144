//! Why a sandbox could not start.

use std::io;

use crate::sim::seed::SeedError;

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("{0}")]
    Options(String),
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: io::Error },
    #[error("cannot read seed {path}: {source}")]
    SeedFile { path: String, source: io::Error },
    #[error("seed {path}: {error}")]
    Seed { path: String, error: SeedError },
    #[error("cannot start the runtime: {0}")]
    Runtime(io::Error),
}
