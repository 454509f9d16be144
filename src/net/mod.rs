//! Real networks: proxies, trust, client certificates, and failures a
//! person can act on.
//!
//! [`Network::build`] reads the network keys of the config for every vendor
//! once, before anything is sent: the route ([`proxy`]), the roots it trusts
//! and the client certificate it shows ([`tls`], [`pem`]). A mistake there is
//! a configuration error naming the table and key. [`Network::transport`]
//! then makes one HTTP client ([`transport`]) per distinct combination of
//! those, and
//! [`classify`] turns a failed request into what to tell the operator.

pub mod cert_answer;
pub mod classify;
mod connector;
pub mod pem;
pub mod probe;
pub mod proxy;
pub mod tls;
pub mod transport;
pub mod x509;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::sign::CertifiedKey;
use url::Url;

use crate::config::network::{self as settings, NetKeys};
use crate::config::{Config, ConfigError};
use classify::Context;
use proxy::{Credentials, Route};

/// A client certificate and where it came from.
#[derive(Debug, Clone)]
pub struct Identity {
    pub cert: PathBuf,
    /// `file /etc/invitesync/client.key`, `environment variable CLIENT_KEY`.
    pub key_from: String,
    pub key: Arc<CertifiedKey>,
}

/// One vendor's connection settings, resolved.
#[derive(Debug, Clone)]
pub struct VendorNet {
    pub name: String,
    pub base_url: Url,
    pub route: Route,
    pub ca_cert: Option<(PathBuf, Vec<CertificateDer<'static>>)>,
    pub identity: Option<Identity>,
    /// What failure messages say about this vendor.
    pub context: Arc<Context>,
}

impl VendorNet {
    /// What makes two vendors' clients interchangeable.
    fn client_key(&self) -> String {
        let proxy = match &self.route {
            Route::Direct { .. } => "direct".to_string(),
            Route::Proxy(p) => format!(
                "{}|{}",
                p.url,
                p.credentials.as_ref().map_or("", |c| c.from.as_str())
            ),
        };
        format!(
            "{proxy}|{:?}|{:?}|{}",
            self.ca_cert.as_ref().map(|(p, _)| p),
            self.identity.as_ref().map(|i| &i.cert),
            self.identity.as_ref().map_or("", |i| i.key_from.as_str()),
        )
    }
}

/// Every vendor's connection settings, in config order.
#[derive(Debug, Clone)]
pub struct Network {
    pub vendors: Vec<VendorNet>,
    /// The system's roots (`None` when no vendor uses HTTPS).
    pub roots: Option<tls::SystemRoots>,
}

fn in_file(config: &Config, e: ConfigError) -> ConfigError {
    ConfigError(format!("{}: {}", config.path.display(), e.0))
}

impl Network {
    /// Resolves the network keys of `config`. When the config was loaded
    /// for a command that sends nothing, no file or secret is read.
    pub fn build(config: &Config) -> Result<Network, ConfigError> {
        Self::build_with(config, &proxy::ProcessEnv).map_err(|e| in_file(config, e))
    }

    fn build_with(config: &Config, env: &dyn proxy::Env) -> Result<Network, ConfigError> {
        let net = &config.network;
        let any_https = config
            .vendors
            .iter()
            .any(|(v, _)| v.base_url.scheme() == "https");
        let roots = if any_https && net.resolve {
            Some(tls::system_roots()?)
        } else {
            None
        };
        let trust = roots
            .as_ref()
            .map_or_else(|| "none".to_string(), |r| r.source.clone());
        let mut vendors = Vec::with_capacity(config.vendors.len());
        for (vc, _) in &config.vendors {
            let own = net.vendors.get(&vc.name);
            let pick = |get: fn(&NetKeys) -> bool| -> &NetKeys {
                match own {
                    Some(k) if get(k) => k,
                    _ => &net.run,
                }
            };
            let credentials = if net.resolve {
                let keys = pick(NetKeys::has_proxy_credentials);
                proxy_credentials(keys)?
            } else {
                None
            };
            let route = proxy::route(
                &vc.base_url,
                proxy::Configured {
                    vendor: own.and_then(|k| k.proxy.as_deref().map(|p| (k.table.as_str(), p))),
                    run: net.run.proxy.as_deref(),
                    credentials,
                },
                env,
            )?;
            let ca_keys = pick(|k| k.ca_cert.is_some());
            let ca_cert = match (&ca_keys.ca_cert, net.resolve) {
                (Some(written), true) => {
                    let path = net.path(written);
                    let certs = pem::certificates(&format!("{}.ca_cert", ca_keys.table), &path)?;
                    Some((path, certs))
                }
                _ => None,
            };
            let id_keys = pick(|k| k.client_cert.is_some());
            let identity = match (&id_keys.client_cert, &id_keys.client_key, net.resolve) {
                (Some(cert), Some(key), true) => Some(identity(id_keys, net, cert, key)?),
                _ => None,
            };
            if vc.base_url.scheme() == "https"
                && ca_cert.is_none()
                && net.resolve
                && roots.as_ref().is_some_and(|r| r.certs.is_empty())
            {
                return Err(ConfigError(format!(
                    "vendors.{}: no certificate authority is trusted to check {} against: {} holds none; \
                     install the system's CA certificates (the ca-certificates package), set SSL_CERT_FILE \
                     to a PEM bundle, or set `ca_cert = \"PATH\"` in [vendors.{}]",
                    vc.name, vc.base_url, trust, vc.name
                )));
            }
            let host = format!(
                "{}:{}",
                vc.base_url.host_str().unwrap_or_default(),
                vc.base_url.port_or_known_default().unwrap_or(443)
            );
            let context = Arc::new(Context {
                table: format!("vendors.{}", vc.name),
                host,
                route: route.clone(),
                ca_cert: ca_cert.as_ref().map(|(p, _)| p.clone()),
                client_cert: identity.as_ref().map(|i| i.cert.clone()),
                trust: trust.clone(),
            });
            vendors.push(VendorNet {
                name: vc.name.clone(),
                base_url: vc.base_url.clone(),
                route,
                ca_cert,
                identity,
                context,
            });
        }
        Ok(Network { vendors, roots })
    }

    /// The TLS settings for vendor `i`; `seen` records the handshake (`check`).
    pub fn tls_config(
        &self,
        i: usize,
        seen: Option<Arc<tls::Seen>>,
    ) -> Result<rustls::ClientConfig, String> {
        let v = &self.vendors[i];
        let empty = tls::SystemRoots {
            certs: Vec::new(),
            source: String::new(),
        };
        let extra = v.ca_cert.as_ref().map_or(&[][..], |(_, c)| c.as_slice());
        let roots = tls::root_store(self.roots.as_ref().unwrap_or(&empty), extra).map_err(|e| {
            format!(
                "[vendors.{}] ca_cert: a certificate cannot be trusted as a root: {e}",
                v.name
            )
        })?;
        tls::client_config(roots, v.identity.as_ref().map(|i| i.key.clone()), seen)
            .map_err(|e| format!("[vendors.{}]: cannot set up TLS: {e}", v.name))
    }

    /// The HTTP client for vendor `i`: its route, trust and identity.
    pub fn transport(
        &self,
        i: usize,
        timeout: Duration,
        pool: usize,
    ) -> Result<transport::Transport, String> {
        let v = &self.vendors[i];
        let proxy = match &v.route {
            Route::Direct { .. } => None,
            Route::Proxy(p) => {
                let uri = p
                    .url
                    .as_str()
                    .parse::<http::Uri>()
                    .map_err(|e| format!("[vendors.{}] proxy {}: {e}", v.name, p.shown()))?;
                let authorization = match &p.credentials {
                    None => None,
                    Some(c) => {
                        let mut value = http::HeaderValue::from_str(&c.basic())
                            .map_err(|_| format!("{}: cannot be sent as a header", c.from))?;
                        value.set_sensitive(true);
                        Some(value)
                    }
                };
                Some(transport::ProxyTo { uri, authorization })
            }
        };
        Ok(transport::Transport::new(transport::Settings {
            timeout,
            connect_timeout: timeout.min(Duration::from_secs(10)),
            pool,
            tls: Some(Arc::new(self.tls_config(i, None)?)),
            proxy,
        }))
    }

    /// One client per distinct route, trust and identity; `clients[i]` is
    /// vendor `i`'s.
    pub fn transports(
        &self,
        timeout: Duration,
        pool: usize,
    ) -> Result<Vec<transport::Transport>, String> {
        let mut made: Vec<(String, transport::Transport)> = Vec::new();
        let mut clients = Vec::with_capacity(self.vendors.len());
        for (i, v) in self.vendors.iter().enumerate() {
            let key = v.client_key();
            let client = match made.iter().find(|(k, _)| *k == key) {
                Some((_, c)) => c.clone(),
                None => {
                    let c = self.transport(i, timeout, pool)?;
                    made.push((key, c.clone()));
                    c
                }
            };
            clients.push(client);
        }
        Ok(clients)
    }
}

/// `proxy_credentials` of a table: `USER:PASSWORD`.
fn proxy_credentials(keys: &NetKeys) -> Result<Option<Credentials>, ConfigError> {
    if !keys.has_proxy_credentials() {
        return Ok(None);
    }
    let source = keys
        .secrets
        .secret_source("proxy_credentials")
        .unwrap_or_else(|| "its secret".into());
    let from = format!("[{}] proxy_credentials ({source})", keys.table);
    let mut secrets = keys.secrets.clone();
    let secret = secrets.secret("proxy_credentials")?;
    let Some((user, password)) = secret.expose().split_once(':') else {
        return Err(ConfigError(format!(
            "{}.proxy_credentials: {source} holds no `:`; it must hold USER:PASSWORD",
            keys.table
        )));
    };
    Ok(Some(Credentials {
        user: user.to_string(),
        password: crate::secret::Secret::new(password),
        from,
    }))
}

fn identity(
    keys: &NetKeys,
    net: &settings::NetConfig,
    cert: &str,
    key: &toml::Table,
) -> Result<Identity, ConfigError> {
    let cert_path = net.path(cert);
    let chain = pem::certificates(&format!("{}.client_cert", keys.table), &cert_path)?;
    let (key_der, key_from) =
        pem::private_key(&format!("{}.client_key", keys.table), key, &net.base_dir)?;
    let certified = tls::certified_key(chain, key_der).map_err(|e| {
        let why = match e {
            rustls::Error::InconsistentKeys(_) => format!(
                "the key in {key_from} does not belong to the certificate in {}",
                cert_path.display()
            ),
            other => format!("the key in {key_from} cannot be used: {other}"),
        };
        ConfigError(format!(
            "{}.client_key: {why}; give the private key that was issued with that certificate",
            keys.table
        ))
    })?;
    Ok(Identity {
        cert: cert_path,
        key_from,
        key: certified,
    })
}
