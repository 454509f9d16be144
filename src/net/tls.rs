//! The TLS a vendor connection uses: which roots are trusted, which client
//! certificate is shown, and (for `invitesync check`) what the server showed.
//!
//! Roots are the system's, read once with `rustls-native-certs` (which reads
//! `SSL_CERT_FILE` / `SSL_CERT_DIR` instead of the system's store when either
//! is set, as curl and OpenSSL do), plus a vendor's `ca_cert`. Verification
//! is rustls' WebPKI verifier behind a thin wrapper that remembers the
//! server's certificate when asked to and logs nothing: a failure reaches the
//! operator once, classified, from `crate::net::classify`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error, RootCertStore, SignatureScheme,
};

use crate::config::ConfigError;

/// The crypto provider of every connection: ring (see Cargo.toml).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The roots this machine trusts, and where they came from.
#[derive(Debug, Clone)]
pub struct SystemRoots {
    pub certs: Vec<CertificateDer<'static>>,
    /// `the system's store`, `SSL_CERT_FILE=/etc/corp/ca.pem`, ...
    pub source: String,
}

/// Reads the system's roots. A `SSL_CERT_FILE` or `SSL_CERT_DIR` that cannot
/// be read is a configuration error, as it is for curl; problems with the
/// system's own store leave out what could not be read.
pub fn system_roots() -> Result<SystemRoots, ConfigError> {
    let vars: Vec<String> = ["SSL_CERT_FILE", "SSL_CERT_DIR"]
        .into_iter()
        .filter_map(|v| std::env::var_os(v).map(|x| format!("{v}={}", x.to_string_lossy())))
        .collect();
    let found = rustls_native_certs::load_native_certs();
    if !vars.is_empty()
        && let Some(e) = found.errors.first()
    {
        return Err(ConfigError(format!(
            "{}: cannot read the certificates there ({}); point it at a readable PEM bundle, or unset it to use the system's store",
            vars.join(", "),
            crate::fs_error::plain(&e.to_string())
        )));
    }
    for e in &found.errors {
        tracing::debug!("the system's certificate store: {e}");
    }
    Ok(SystemRoots {
        certs: found.certs,
        source: if vars.is_empty() {
            "the system's certificate store".into()
        } else {
            vars.join(", ")
        },
    })
}

/// A root store of `system` plus `extra`; also how many were usable.
pub fn root_store(
    system: &SystemRoots,
    extra: &[CertificateDer<'static>],
) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(system.certs.iter().cloned());
    for cert in extra {
        roots.add(cert.clone())?;
    }
    Ok(roots)
}

/// A client certificate with its key, checked to belong together.
pub fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<CertifiedKey>, Error> {
    CertifiedKey::from_der(chain, key, &provider()).map(Arc::new)
}

/// What a handshake showed, for `invitesync check`.
#[derive(Debug, Default)]
pub struct Seen {
    /// The server's own certificate, recorded before it is judged, so that a
    /// refused one can be described too.
    pub certificate: Mutex<Option<CertificateDer<'static>>>,
    /// Whether the server asked for a client certificate.
    pub client_cert_requested: AtomicBool,
}

impl Seen {
    pub fn certificate(&self) -> Option<CertificateDer<'static>> {
        self.certificate
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The TLS settings of connections to one vendor.
pub fn client_config(
    roots: RootCertStore,
    identity: Option<Arc<CertifiedKey>>,
    seen: Option<Arc<Seen>>,
) -> Result<ClientConfig, Error> {
    let provider = provider();
    let algorithms = provider.signature_verification_algorithms;
    let inner = if roots.is_empty() {
        None
    } else {
        Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| Error::General(e.to_string()))?,
        )
    };
    let verifier = Arc::new(Verifier {
        inner,
        algorithms,
        seen: seen.clone(),
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_cert_resolver(Arc::new(ClientCert {
            key: identity,
            seen,
        }));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[derive(Debug)]
struct Verifier {
    /// `None` when no root at all is trusted: every certificate is refused.
    inner: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
    seen: Option<Arc<Seen>>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if let Some(seen) = &self.seen {
            *seen.certificate.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(end_entity.clone().into_owned());
        }
        match &self.inner {
            Some(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Err(Error::InvalidCertificate(CertificateError::UnknownIssuer)),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Shows the configured client certificate (or none) when a server asks.
#[derive(Debug)]
struct ClientCert {
    key: Option<Arc<CertifiedKey>>,
    seen: Option<Arc<Seen>>,
}

impl ResolvesClientCert for ClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        if let Some(seen) = &self.seen {
            seen.client_cert_requested.store(true, Ordering::Relaxed);
        }
        self.key.clone()
    }

    fn has_certs(&self) -> bool {
        self.key.is_some() || self.seen.is_some()
    }
}
