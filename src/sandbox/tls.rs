//! HTTPS for the sandbox: a certificate given on the command line, or a
//! throwaway certificate authority made for the occasion, and optionally a
//! required client certificate (mutual TLS), so that the TLS path of a run
//! (trust, `ca_cert`, client certificates, the failures) can be tried end to
//! end on 127.0.0.1.
//!
//! Handshakes run in tasks of their own and only finished ones reach the
//! HTTP server, so a client that stalls or is refused holds up no one.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::sim::conn::{Conn, ConnHandle};

/// How long a client may take over its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// `invitesync sandbox`'s HTTPS options.
#[derive(Debug, Clone, Default, PartialEq, clap::Args)]
pub struct TlsOptions {
    /// Serve HTTPS with this certificate (PEM, its chain may follow it)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Make a throwaway CA in DIR and serve HTTPS with a certificate it signs
    /// for 127.0.0.1 and localhost: writes ca.pem (trust it with `ca_cert`),
    /// cert.pem, key.pem, and client.pem with client-key.pem for mutual TLS
    #[arg(long, value_name = "DIR", conflicts_with_all = ["tls_cert", "tls_key"])]
    pub tls_self_signed: Option<PathBuf>,

    /// Require a client certificate signed by this CA (PEM): mutual TLS.
    /// With --tls-self-signed, `DIR/ca.pem` signs client.pem
    #[arg(long, value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,
}

impl TlsOptions {
    /// The server's TLS settings, `None` for plain HTTP; with
    /// `--tls-self-signed`, the files are made first and a line saying where
    /// they are is returned too.
    pub fn server_config(&self) -> Result<Option<(Arc<ServerConfig>, String)>, String> {
        let (cert, key, note) = match (&self.tls_self_signed, &self.tls_cert, &self.tls_key) {
            (Some(dir), _, _) => {
                let made = write_self_signed(dir)?;
                let note = format!(
                    "  HTTPS with a throwaway CA: trust {} (`ca_cert` in the config); \
                     client certificate {} with key {}",
                    made.ca.display(),
                    made.client_cert.display(),
                    made.client_key.display()
                );
                (made.cert, made.key, note)
            }
            (None, Some(cert), Some(key)) => (cert.clone(), key.clone(), String::new()),
            (None, None, None) if self.tls_client_ca.is_some() => {
                return Err(
                    "--tls-client-ca needs HTTPS: add --tls-cert and --tls-key, or --tls-self-signed DIR"
                        .into(),
                );
            }
            _ => return Ok(None),
        };
        let read = |flag: &str, path: &Path| {
            std::fs::read(path)
                .map_err(|e| format!("{flag} {}: {}", path.display(), crate::fs_error::reason(&e)))
        };
        let client_ca = match &self.tls_client_ca {
            Some(p) => Some(read("--tls-client-ca", p)?),
            None => None,
        };
        let config = server_config(
            &read("--tls-cert", &cert)?,
            &read("--tls-key", &key)?,
            client_ca.as_deref(),
        )?;
        Ok(Some((config, note)))
    }
}

/// TLS settings from PEM: the certificate (chain), its key, and the CA whose
/// client certificates are required, if any.
pub fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    client_ca_pem: Option<&[u8]>,
) -> Result<Arc<ServerConfig>, String> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| "--tls-cert: not a PEM certificate file".to_string())?;
    if chain.is_empty() {
        return Err("--tls-cert: the file holds no certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|_| "--tls-key: the file holds no PEM private key".to_string())?;
    let provider = crate::net::tls::provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match client_ca_pem {
        None => builder.with_no_client_auth(),
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert =
                    cert.map_err(|_| "--tls-client-ca: not a PEM certificate file".to_string())?;
                roots
                    .add(cert)
                    .map_err(|e| format!("--tls-client-ca: {e}"))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| format!("--tls-client-ca: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("--tls-cert/--tls-key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A throwaway certificate authority: for `--tls-self-signed` and for tests.
pub struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, as PEM.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub cert: String,
    pub key: String,
}

/// Validity as (year, month, day) pairs; the default is rcgen's (decades).
pub type Validity = Option<((i32, u8, u8), (i32, u8, u8))>;

impl Authority {
    pub fn new(name: &str) -> Result<Authority, String> {
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, key).map_err(|e| e.to_string())?;
        Ok(Authority { issuer })
    }

    /// The CA's own certificate, to trust.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `names` (host names or IP addresses).
    pub fn server(&self, names: &[&str], validity: Validity) -> Result<Leaf, String> {
        self.leaf(names, ExtendedKeyUsagePurpose::ServerAuth, validity)
    }

    /// A client certificate for `name`.
    pub fn client(&self, name: &str) -> Result<Leaf, String> {
        self.leaf(&[name], ExtendedKeyUsagePurpose::ClientAuth, None)
    }

    fn leaf(
        &self,
        names: &[&str],
        usage: ExtendedKeyUsagePurpose,
        validity: Validity,
    ) -> Result<Leaf, String> {
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).map_err(|e| e.to_string())?;
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        params.extended_key_usages = vec![usage];
        if let Some(((y0, m0, d0), (y1, m1, d1))) = validity {
            params.not_before = rcgen::date_time_ymd(y0, m0, d0);
            params.not_after = rcgen::date_time_ymd(y1, m1, d1);
        }
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| e.to_string())?;
        Ok(Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }
}

/// The files `--tls-self-signed DIR` writes.
pub struct SelfSigned {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// Makes a CA, a server certificate for 127.0.0.1, ::1 and localhost, and a
/// client certificate, and writes them to `dir` (keys readable by this user
/// only).
pub fn write_self_signed(dir: &Path) -> Result<SelfSigned, String> {
    let fail = |what: &Path, e: io::Error| {
        format!(
            "--tls-self-signed: cannot write {}: {}",
            what.display(),
            crate::fs_error::reason(&e)
        )
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
    let ca = Authority::new("invitesync sandbox CA")?;
    let server = ca.server(&["127.0.0.1", "::1", "localhost"], None)?;
    let client = ca.client("invitesync")?;
    let files = SelfSigned {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
        client_cert: dir.join("client.pem"),
        client_key: dir.join("client-key.pem"),
    };
    for (path, text, secret) in [
        (&files.ca, ca.pem(), false),
        (&files.cert, server.cert, false),
        (&files.key, server.key, true),
        (&files.client_cert, client.cert, false),
        (&files.client_key, client.key, true),
    ] {
        write_file(path, &text, secret).map_err(|e| fail(path, e))?;
    }
    Ok(files)
}

fn write_file(path: &Path, text: &str, secret: bool) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    io::Write::write_all(&mut options.open(path)?, text.as_bytes())
}

/// A loopback listener that hands on connections whose TLS handshake is done.
pub(crate) struct TlsListener {
    addr: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<Conn>, SocketAddr)>,
    acceptor: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    pub(crate) fn new(listener: TcpListener, config: Arc<ServerConfig>) -> io::Result<TlsListener> {
        let addr = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let tls = TlsAcceptor::from(config);
        let acceptor = tokio::spawn(async move {
            while !tx.is_closed() {
                let (stream, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let (tls, tx) = (tls.clone(), tx.clone());
                tokio::spawn(async move {
                    // A refused or stalled handshake just ends here.
                    let handshake = tls.accept(Conn::new(stream));
                    if let Ok(Ok(stream)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await
                    {
                        let _ = tx.send((stream, peer)).await;
                    }
                });
            }
        });
        Ok(TlsListener {
            addr,
            ready,
            acceptor,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<Conn>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for ConnHandle {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        stream.io().get_ref().0.handle()
    }
}
