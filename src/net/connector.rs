//! How a vendor's connections are made, for [`super::transport`]: TCP,
//! through the vendor's proxy's `CONNECT` when it has one (TLS to the proxy
//! too when its URL is `https://`), then TLS with the vendor's trust and
//! client certificate; and the TLS error a connection ended on before the
//! server sent anything, kept for the request that could not be sent.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use http::header::{HeaderValue, USER_AGENT};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The `User-Agent` of every request and `CONNECT`.
pub const USER_AGENT_VALUE: &str = concat!("invitesync/", env!("CARGO_PKG_VERSION"));

/// A proxy's address and the `Proxy-Authorization` to show it.
#[derive(Clone)]
pub struct ProxyTo {
    pub uri: Uri,
    pub authorization: Option<HeaderValue>,
}

/// TCP keep-alive: idle time before the first probe, and between probes.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// Makes a vendor's connections: TCP, through its proxy's `CONNECT` when it
/// has one, then TLS for `https://`.
#[derive(Clone)]
pub(super) struct Connector {
    /// The vendor reached directly, with its TLS.
    direct: Direct,
    /// The vendor's proxy and how to reach it (TLS too for an `https://`
    /// proxy, trusted as the vendor is; the tunnel itself is HTTP/1.1).
    proxy: Option<(ProxyTo, Direct)>,
    connect_timeout: Duration,
}

impl tower_service::Service<Uri> for Connector {
    type Response = Conn;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let limit = this.connect_timeout;
            match tokio::time::timeout(limit, this.connect(dst)).await {
                Ok(conn) => conn,
                Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out").into()),
            }
        })
    }
}

impl Connector {
    pub(super) fn new(
        connect_timeout: Duration,
        tls: Option<Arc<rustls::ClientConfig>>,
        proxy: Option<ProxyTo>,
        failures: Failures,
    ) -> Connector {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        // A connection a firewall or NAT dropped in silence, or a vendor that
        // vanished, is found within a minute instead of at the request's
        // timeout.
        http.set_keepalive(Some(KEEPALIVE));
        http.set_keepalive_interval(Some(KEEPALIVE));
        http.set_keepalive_retries(Some(3));
        #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
        http.set_tcp_user_timeout(Some(Duration::from_secs(30)));
        let proxy = proxy.map(|proxy| {
            let proxy_tls = tls
                .as_ref()
                .filter(|_| proxy.uri.scheme_str() == Some("https"))
                .map(|config| {
                    let mut config = (**config).clone();
                    config.alpn_protocols = vec![b"http/1.1".to_vec()];
                    tokio_rustls::TlsConnector::from(Arc::new(config))
                });
            let to_proxy = Direct {
                http: http.clone(),
                tls: proxy_tls,
                failures: failures.clone(),
            };
            (proxy, to_proxy)
        });
        Connector {
            direct: Direct {
                http,
                tls: tls.map(tokio_rustls::TlsConnector::from),
                failures,
            },
            proxy,
            connect_timeout,
        }
    }

    async fn connect(self, dst: Uri) -> Result<Conn, BoxError> {
        // Only HTTPS goes through the proxy (plain http:// is loopback).
        let https = dst.scheme_str() == Some("https");
        let Some((proxy, to_proxy)) = self.proxy.as_ref().filter(|_| https) else {
            return self.direct.connect(dst).await;
        };
        let mut tunnel = Tunnel::new(proxy.uri.clone(), to_proxy.clone());
        if let Some(auth) = &proxy.authorization {
            tunnel = tunnel.with_auth(auth.clone());
        }
        let mut headers = http::HeaderMap::new();
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        tunnel = tunnel.with_headers(headers);
        let tunnelled = tower_service::Service::call(&mut tunnel, dst.clone()).await?;
        self.direct
            .tls_over(&dst, Box::new(TokioIo::new(tunnelled)))
            .await
    }
}

/// TCP to a host, then TLS when its URL is `https://`: the vendor reached
/// directly, or its proxy (for which it is the tunnel's connector).
#[derive(Clone)]
struct Direct {
    http: HttpConnector,
    tls: Option<tokio_rustls::TlsConnector>,
    failures: Failures,
}

impl Direct {
    async fn connect(mut self, to: Uri) -> Result<Conn, BoxError> {
        let tcp = tower_service::Service::call(&mut self.http, to.clone()).await?;
        if to.scheme_str() != Some("https") {
            return Ok(Conn::Plain(tcp));
        }
        self.tls_over(&to, Box::new(tcp.into_inner())).await
    }

    /// TLS to `dst`'s host over `io`.
    async fn tls_over(&self, dst: &Uri, io: Box<dyn Io>) -> Result<Conn, BoxError> {
        let Some(tls) = &self.tls else {
            return Err("no TLS settings for an https:// connection".into());
        };
        let host = dst.host().unwrap_or_default();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| format!("`{host}` is not a valid TLS server name: {e}"))?;
        let stream = tls.connect(name, io).await?;
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        let watch = Watch {
            host: dst.authority().map_or("", |a| a.as_str()).into(),
            failures: self.failures.clone(),
            has_read: false,
        };
        Ok(Conn::Tls(Box::new(TokioIo::new(stream)), h2, watch))
    }
}

impl tower_service::Service<Uri> for Direct {
    type Response = Conn;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, to: Uri) -> Self::Future {
        Box::pin(self.clone().connect(to))
    }
}

/// The byte stream under a TLS connection: TCP, or a tunnel through a proxy.
pub(super) trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// A connection to a vendor or a proxy, plain or TLS (`true` when ALPN
/// chose HTTP/2).
pub(super) enum Conn {
    Plain(TokioIo<TcpStream>),
    Tls(Box<TokioIo<TlsStream<Box<dyn Io>>>>, bool, Watch),
}

/// Where a TLS connection's failure is kept, and under which host: only a
/// failure before anything was read from the server, which is what a
/// refusal after the handshake looks like. A connection that has served
/// answers and then fails says nothing about the next one.
pub(super) struct Watch {
    host: Arc<str>,
    failures: Failures,
    has_read: bool,
}

impl Watch {
    fn see<T>(&mut self, polled: Poll<io::Result<T>>, reading: bool) -> Poll<io::Result<T>> {
        match &polled {
            Poll::Ready(Err(e)) if !self.has_read => self.failures.record(&self.host, e),
            Poll::Ready(Ok(_)) if reading => self.has_read = true,
            _ => {}
        }
        polled
    }
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        match self {
            Conn::Plain(io) => io.connected(),
            Conn::Tls(_, true, _) => Connected::new().negotiated_h2(),
            Conn::Tls(_, false, _) => Connected::new(),
        }
    }
}

impl hyper::rt::Read for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(io) => Pin::new(io).poll_read(cx, buf),
            Conn::Tls(io, _, w) => w.see(Pin::new(io).poll_read(cx, buf), true),
        }
    }
}

impl hyper::rt::Write for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(io) => Pin::new(io).poll_write(cx, buf),
            Conn::Tls(io, _, w) => w.see(Pin::new(io).poll_write(cx, buf), false),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            Conn::Tls(io, _, w) => w.see(Pin::new(io).poll_write_vectored(cx, bufs), false),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(io) => io.is_write_vectored(),
            Conn::Tls(io, _, _) => io.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(io) => Pin::new(io).poll_flush(cx),
            Conn::Tls(io, _, w) => w.see(Pin::new(io).poll_flush(cx), false),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(io) => Pin::new(io).poll_shutdown(cx),
            Conn::Tls(io, _, _) => Pin::new(io).poll_shutdown(cx),
        }
    }
}

/// The TLS error each host's last failed connection ended with, kept until
/// a request asks for it (see `Transport::failed`).
#[derive(Clone, Default)]
pub(super) struct Failures(Arc<std::sync::Mutex<Vec<HostFailure>>>);

/// A host (`api.example.com:443`) and the TLS error its connection ended on.
type HostFailure = (Arc<str>, rustls::Error);

impl Failures {
    fn record(&self, host: &Arc<str>, err: &io::Error) {
        let Some(tls) = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
        else {
            return;
        };
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|(h, _)| h != host);
        all.push((host.clone(), tls.clone()));
    }

    pub(super) fn take(&self, host: &str) -> Option<rustls::Error> {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let at = all.iter().position(|(h, _)| &**h == host)?;
        Some(all.swap_remove(at).1)
    }
}
