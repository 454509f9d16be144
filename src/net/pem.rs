//! Certificates and keys from PEM files, with errors that name the config
//! key, the file and what to do. Nothing here ever quotes a key's bytes.

use std::path::Path;

use rustls::pki_types::pem::{self, PemObject, SectionKind};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::ConfigError;
use crate::secret::Secret;

/// A PEM file larger than this is not a certificate or a key.
const PEM_CAP: u64 = 1024 * 1024;

fn read(where_: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    let cannot = |why: String| {
        ConfigError(format!(
            "{where_}: cannot read {}: {why}; check the path (relative paths start at the config file) \
             and that this user may read it",
            path.display()
        ))
    };
    let meta = std::fs::metadata(path).map_err(|e| cannot(crate::fs_error::reason(&e)))?;
    if meta.is_dir() {
        return Err(cannot("it is a directory; give the PEM file".into()));
    }
    if meta.len() > PEM_CAP {
        return Err(cannot(format!(
            "it is {} bytes, too large for a PEM file",
            meta.len()
        )));
    }
    std::fs::read(path).map_err(|e| cannot(crate::fs_error::reason(&e)))
}

/// The kinds of PEM sections in `bytes`, for a message about what a file
/// holds instead of what was expected.
fn sections(bytes: &[u8]) -> Vec<&'static str> {
    let mut kinds = Vec::new();
    for item in <(SectionKind, Vec<u8>) as PemObject>::pem_slice_iter(bytes) {
        let kind = match item {
            Ok((SectionKind::Certificate, _)) => "a certificate",
            Ok((
                SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey,
                _,
            )) => "a private key",
            Ok(_) => "another PEM section",
            Err(_) => break,
        };
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    kinds
}

fn pem_problem(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { .. } => {
            "a PEM section has no `-----END ...-----` line".into()
        }
        pem::Error::IllegalSectionStart { .. } => "a `-----BEGIN` line is malformed".into(),
        pem::Error::Base64Decode(_) => "a PEM section is not valid base64".into(),
        _ => "it is not valid PEM".into(),
    }
}

/// Every certificate in a PEM file (`ca_cert`, `client_cert`), at least one.
pub fn certificates(
    where_: &str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let bytes = read(where_, path)?;
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(&bytes) {
        match item {
            Ok(c) => certs.push(c),
            Err(e) => {
                return Err(ConfigError(format!(
                    "{where_}: {} is not a readable PEM file: {}; give the certificate as PEM \
                     (`-----BEGIN CERTIFICATE-----`); convert DER with \
                     `openssl x509 -inform der -in FILE -out FILE.pem`",
                    path.display(),
                    pem_problem(&e)
                )));
            }
        }
    }
    if certs.is_empty() {
        let found = sections(&bytes);
        let holds = if found.is_empty() {
            "no PEM section at all (a DER file?)".to_string()
        } else {
            format!("{} but no certificate", found.join(" and "))
        };
        return Err(ConfigError(format!(
            "{where_}: {} holds {holds}; give a PEM file with `-----BEGIN CERTIFICATE-----` sections",
            path.display()
        )));
    }
    // Parsing each one now turns a corrupt certificate into a config error
    // instead of a failed handshake on the first row.
    for (i, cert) in certs.iter().enumerate() {
        if crate::net::x509::Summary::parse(cert).is_none() {
            return Err(ConfigError(format!(
                "{where_}: certificate {} in {} is not a valid X.509 certificate; \
                 export it again from its source",
                i + 1,
                path.display()
            )));
        }
    }
    Ok(certs)
}

/// The private key of `client_key`: `{ file = "PATH" }` or `{ env = "VAR" }`
/// holding a PEM key (PKCS#8, PKCS#1 RSA or SEC1 EC), unencrypted.
pub fn private_key(
    where_: &str,
    source: &toml::Table,
    base_dir: &Path,
) -> Result<(PrivateKeyDer<'static>, String), ConfigError> {
    let env = source.get("env").and_then(|v| v.as_str());
    let file = source.get("file").and_then(|v| v.as_str());
    if source.len() != 1 || env.is_none() == file.is_none() {
        return Err(ConfigError(format!(
            "{where_}: expected exactly one of `file = \"PATH\"` or `env = \"VARIABLE\"`"
        )));
    }
    let (bytes, from) = match (env, file) {
        (Some(var), _) => match std::env::var(var) {
            Ok(v) => (Secret::new(v), format!("environment variable {var}")),
            Err(std::env::VarError::NotPresent) => {
                return Err(ConfigError(format!(
                    "{where_}: environment variable {var} is not set; export it with the PEM key \
                     (or point `client_key` at a file with `{{ file = \"PATH\" }}`)"
                )));
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(ConfigError(format!(
                    "{where_}: environment variable {var} is not text; put the PEM key in it"
                )));
            }
        },
        (None, Some(f)) => {
            let path = base_dir.join(f);
            let bytes = read(where_, &path)?;
            let text = String::from_utf8(bytes).map_err(|_| {
                ConfigError(format!(
                    "{where_}: {} is not a PEM file (a DER key?); convert it with \
                     `openssl pkey -inform der -in FILE -out FILE.pem`",
                    path.display()
                ))
            })?;
            (Secret::new(text), format!("file {}", path.display()))
        }
        (None, None) => unreachable_source(where_)?,
    };
    let text = bytes.expose().as_bytes();
    if text
        .windows(b"ENCRYPTED PRIVATE KEY".len())
        .any(|w| w == b"ENCRYPTED PRIVATE KEY")
        || text
            .windows(b"Proc-Type: 4,ENCRYPTED".len())
            .any(|w| w == b"Proc-Type: 4,ENCRYPTED")
    {
        return Err(ConfigError(format!(
            "{where_}: the key in {from} is encrypted; invitesync needs it unencrypted \
             (`openssl pkey -in KEY -out KEY.plain`, then keep that file readable by this user only)"
        )));
    }
    match PrivateKeyDer::from_pem_slice(text) {
        Ok(key) => Ok((key, from)),
        Err(pem::Error::NoItemsFound) => {
            let found = sections(text);
            let holds = if found.is_empty() {
                "no PEM section".to_string()
            } else {
                format!("{} but no private key", found.join(" and "))
            };
            Err(ConfigError(format!(
                "{where_}: {from} holds {holds}; give the client certificate's private key as PEM \
                 (`-----BEGIN PRIVATE KEY-----`)"
            )))
        }
        Err(e) => Err(ConfigError(format!(
            "{where_}: {from} is not a readable PEM key: {}",
            pem_problem(&e)
        ))),
    }
}

fn unreachable_source<T>(where_: &str) -> Result<T, ConfigError> {
    Err(ConfigError(format!(
        "{where_}: expected `file = \"PATH\"` or `env = \"VARIABLE\"`"
    )))
}
