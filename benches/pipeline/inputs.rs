//! Inputs and configs.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use invitesync::change::Change;
use invitesync::config::Config;
use invitesync::digest::DigestSession;
use invitesync::input::Reader;
use invitesync::plan::Router;
use invitesync::sandbox::SandboxOptions;
use invitesync::vendors::{Adapter, Kind};

use crate::{Res, config};

pub(crate) const HEADER: &str =
    "vendor,scope,invite_id,email,first_name,last_name,sender_id,status,roles,note";
pub(crate) const GATE_STATUSES: [&str; 4] = ["pending", "sent", "accepted", "rejected"];
pub(crate) const OM_ROLES: [&str; 3] = [
    "ORG_MEMBER",
    "ORG_READ_ONLY",
    "ORG_GROUP_CREATOR;ORG_MEMBER",
];

/// `n` rows, one invite each: Securegate only, or four vendors in turn.
pub(crate) fn write_input(path: &Path, n: usize, mixed: bool) -> Res<()> {
    let f = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    let io = |e: std::io::Error| e.to_string();
    writeln!(w, "{HEADER}").map_err(io)?;
    for i in 0..n {
        let which = if mixed { i % 4 } else { 0 };
        match which {
            0 => writeln!(
                w,
                "gate,evt-{:03},inv-{i:07},,,,,{},,",
                i % 200,
                GATE_STATUSES[i % 4]
            ),
            1 => writeln!(
                w,
                "hub,,{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x},,,,,{},,",
                i,
                i % 0xffff,
                i % 0xfff,
                (i / 7) % 0xfff,
                i * 7919,
                if i % 8 == 1 { "accepted" } else { "rejected" }
            ),
            2 => writeln!(
                w,
                "mighty,net-{},{},member{i}@example.com,First{},Last,,,,",
                i % 50,
                100_000 + i,
                i % 10
            ),
            _ => writeln!(
                w,
                "om,{:024x},,member{i}@example.com,,,,,{},",
                0x5f1a_2b3c_4d5e_6f7a_8b9c_0d00_u128 + (i % 8) as u128,
                OM_ROLES[i % 3]
            ),
        }
        .map_err(io)?;
    }
    w.flush().map_err(io)
}

/// A config for every vendor kind on `base` (the tests' harness writes the
/// same tables), secrets in files beside it; `extra` adds lines to a kind's
/// table.
pub(crate) fn write_config(
    dir: &Path,
    name: &str,
    base: &str,
    concurrency: usize,
    extra: &dyn Fn(Kind) -> String,
) -> Res<PathBuf> {
    let creds = SandboxOptions::default().credentials();
    config::write_secrets(dir, &creds).map_err(|e| e.to_string())?;
    let text = format!(
        "[run]\nconcurrency = {concurrency}\nrequest_timeout = \"30s\"\n\n{}",
        config::vendor_tables_with(base, extra)
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    Ok(path)
}

/// No extra lines in any kind's table.
pub(crate) fn plain(_: Kind) -> String {
    String::new()
}

/// The requests of an input, built by the vendor adapters as the pipeline builds them.
pub(crate) struct Planned {
    pub(crate) adapters: Vec<Box<dyn Adapter>>,
    pub(crate) digests: Vec<Option<DigestSession>>,
    pub(crate) changes: Vec<Change>,
}

pub(crate) fn plan(config: &Path, input: &Path) -> Res<Planned> {
    let config = Config::load(config, true).map_err(|e| e.0)?;
    let mut adapters = Vec::new();
    for (vc, settings) in &config.vendors {
        adapters.push(invitesync::vendors::build::adapter(vc, settings.clone()).map_err(|e| e.0)?);
    }
    let names: Vec<String> = config.vendors.iter().map(|(v, _)| v.name.clone()).collect();
    let mut changes = Vec::new();
    {
        let router = Router::new(
            names
                .iter()
                .map(String::as_str)
                .zip(adapters.iter().map(|a| &**a)),
        );
        let reader = Reader::open(input).map_err(|e| e.0)?;
        let header = reader.header().clone();
        for row in reader {
            let change = router
                .plan(&header, &row)
                .map_err(|p| format!("row {}: {}", row.line, p.invalid))?;
            changes.push(change);
        }
    }
    let digests = adapters
        .iter()
        .map(|a| {
            a.digest_credentials()
                .map(|(u, p)| DigestSession::new(u.clone(), p.clone()))
        })
        .collect();
    Ok(Planned {
        adapters,
        digests,
        changes,
    })
}
