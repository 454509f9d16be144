//! The HTTP client of a vendor: hyper-util's pooled client over a connector
//! of our own (a TCP connection, a `CONNECT` tunnel through the vendor's
//! proxy, and TLS with the vendor's trust and client certificate).
//!
//! This is the whole HTTP stack of a run, and at zero latency its cost per
//! request is most of the runner's: it is kept to what a request needs
//! (docs/ARCHITECTURE.md §6). The adapter's request already carries its
//! absolute URI, so nothing is parsed again; there is no redirect layer
//! (redirects are never followed) and no per-request copy of the headers.
//! A request over TLS that was never processed is resent here, at once, up
//! to twice: one an HTTP/2 server refused (RFC 9113 §8.7,
//! [`refused_unprocessed`]) or one hyper never sent ([`cancelled`]).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, HeaderValue, USER_AGENT};
use http::{Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The `User-Agent` of every request and `CONNECT`.
pub const USER_AGENT_VALUE: &str = concat!("invitesync/", env!("CARGO_PKG_VERSION"));

/// How often a request over TLS that was never processed is sent again
/// before its error is returned (and the row's own retry takes over).
const REFUSED_RESENDS: usize = 2;

/// TCP keep-alive: idle time before the first probe, and between probes.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// A proxy's address and the `Proxy-Authorization` to show it.
#[derive(Clone)]
pub struct ProxyTo {
    pub uri: Uri,
    pub authorization: Option<HeaderValue>,
}

/// What a vendor's connections are made with.
pub struct Settings {
    /// Bounds one whole request, from the connection to the last byte of
    /// the answer.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Idle connections kept per host.
    pub pool: usize,
    /// `None` for a client that only speaks plain HTTP (loopback).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub proxy: Option<ProxyTo>,
}

/// One vendor's client (shared by vendors with the same settings). Cheap to
/// clone: clones share the pool.
#[derive(Clone)]
pub struct Transport {
    client: Client<Connector, Full<Bytes>>,
    timeout: Duration,
    failures: Failures,
}

/// Why a request got no answer.
#[derive(Debug)]
pub enum TransportError {
    /// The whole request took longer than its timeout.
    Timeout,
    /// The request or its answer failed; `is_connect` when no connection
    /// could be made.
    Failed { error: BoxError, is_connect: bool },
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransportError::Timeout => f.write_str("timed out"),
            TransportError::Failed { error, .. } => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TransportError::Timeout => None,
            TransportError::Failed { error, .. } => Some(&**error),
        }
    }
}

impl Transport {
    pub fn new(settings: Settings) -> Transport {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(settings.connect_timeout));
        // A connection a firewall or NAT dropped in silence, or a vendor that
        // vanished, is found within a minute instead of at the request's
        // timeout.
        http.set_keepalive(Some(KEEPALIVE));
        http.set_keepalive_interval(Some(KEEPALIVE));
        http.set_keepalive_retries(Some(3));
        #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
        http.set_tcp_user_timeout(Some(Duration::from_secs(30)));
        let failures = Failures::default();
        // An https:// proxy is spoken to over TLS too, trusted as the vendor
        // is; the tunnel itself is HTTP/1.1.
        let proxy_tls = settings.tls.as_ref().map(|config| {
            let mut config = (**config).clone();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            tokio_rustls::TlsConnector::from(Arc::new(config))
        });
        let connector = Connector {
            http,
            tls: settings.tls.map(tokio_rustls::TlsConnector::from),
            proxy_tls,
            proxy: settings.proxy,
            connect_timeout: settings.connect_timeout,
            failures: failures.clone(),
        };
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(settings.pool)
            .build(connector);
        Transport {
            client,
            timeout: settings.timeout,
            failures,
        }
    }

    /// Sends `req` (its URI absolute) and reads the answer's head; the body
    /// is read by `read`, within the same timeout.
    pub async fn send<T, F, R>(&self, req: Request<Bytes>, read: R) -> Result<T, TransportError>
    where
        R: FnOnce(Response<Incoming>) -> F,
        F: Future<Output = Result<T, hyper::Error>>,
    {
        let work = async {
            let resp = self.head(req).await?;
            read(resp).await.map_err(|e| TransportError::Failed {
                error: e.into(),
                is_connect: false,
            })
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout),
        }
    }

    async fn head(&self, req: Request<Bytes>) -> Result<Response<Incoming>, TransportError> {
        let (mut parts, body) = req.into_parts();
        parts
            .headers
            .entry(USER_AGENT)
            .or_insert(HeaderValue::from_static(USER_AGENT_VALUE));
        parts
            .headers
            .entry(ACCEPT)
            .or_insert(HeaderValue::from_static("*/*"));
        // Only a TLS connection can speak HTTP/2 (ALPN), so only a request
        // over one keeps a copy to resend, and only its host is needed to
        // find the TLS error its connection may have ended on.
        let tls_host = match parts.uri.scheme_str() {
            Some("https") => parts.uri.authority().map(|a| a.as_str().to_string()),
            _ => None,
        };
        let failed = |e| self.failed(e, tls_host.as_deref());
        let mut resends = if tls_host.is_some() {
            REFUSED_RESENDS
        } else {
            0
        };
        while resends > 0 {
            let attempt = Request::from_parts(parts.clone(), Full::new(body.clone()));
            match self.client.request(attempt).await {
                Ok(resp) => return Ok(resp),
                Err(e) if refused_unprocessed(&e) || cancelled(&e) => resends -= 1,
                Err(e) => return Err(failed(e)),
            }
        }
        let last = Request::from_parts(parts, Full::new(body));
        self.client.request(last).await.map_err(failed)
    }
}

impl Transport {
    /// What `e` says went wrong. A request cancelled because its new
    /// connection failed before it could be sent says nothing of why;
    /// when that connection ended on a TLS error (a server refusing our
    /// client certificate says so only after the handshake), that error
    /// is the answer, as if the connection had never been made.
    fn failed(&self, e: hyper_util::client::legacy::Error, host: Option<&str>) -> TransportError {
        let tls = host
            .filter(|_| cancelled(&e))
            .and_then(|h| self.failures.take(h));
        if let Some(tls) = tls {
            return TransportError::Failed {
                error: Box::new(io::Error::new(io::ErrorKind::InvalidData, tls)),
                is_connect: true,
            };
        }
        let is_connect = e.is_connect();
        TransportError::Failed {
            error: e.into(),
            is_connect,
        }
    }
}

/// hyper's "not sent": the connection closed before the request went out,
/// or another connection to the host was chosen for HTTP/2 meanwhile.
fn cancelled(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            return h.is_canceled();
        }
        next = e.source();
    }
    false
}

/// The TLS error each host's last failed connection ended with, kept until
/// a request asks for it (see [`Transport::failed`]).
#[derive(Clone, Default)]
struct Failures(Arc<std::sync::Mutex<Vec<HostFailure>>>);

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

    fn take(&self, host: &str) -> Option<rustls::Error> {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let at = all.iter().position(|(h, _)| &**h == host)?;
        Some(all.swap_remove(at).1)
    }
}

/// An HTTP/2 server's word that it did not process the request: a graceful
/// `GOAWAY` (it is rotating the connection) or a stream reset with
/// `REFUSED_STREAM`. Either may be sent again on another stream or
/// connection (RFC 9113 §8.7). Without this, a server that rotates a busy
/// connection would fail every request then in flight on it at once.
pub fn refused_unprocessed(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(h2) = e.downcast_ref::<h2::Error>() {
            return h2.is_remote()
                && ((h2.is_go_away() && h2.reason() == Some(h2::Reason::NO_ERROR))
                    || (h2.is_reset() && h2.reason() == Some(h2::Reason::REFUSED_STREAM)));
        }
        next = e.source();
    }
    false
}

/// Makes a vendor's connections: TCP, through its proxy's `CONNECT` when it
/// has one, then TLS for `https://`.
#[derive(Clone)]
struct Connector {
    http: HttpConnector,
    tls: Option<tokio_rustls::TlsConnector>,
    proxy_tls: Option<tokio_rustls::TlsConnector>,
    proxy: Option<ProxyTo>,
    connect_timeout: Duration,
    failures: Failures,
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
    async fn connect(mut self, dst: Uri) -> Result<Conn, BoxError> {
        let https = dst.scheme_str() == Some("https");
        let io: Box<dyn Io> = match &self.proxy {
            Some(proxy) if https => {
                let to_proxy = ToProxy {
                    http: self.http.clone(),
                    tls: self.proxy_tls.clone(),
                    failures: self.failures.clone(),
                };
                let mut tunnel = Tunnel::new(proxy.uri.clone(), to_proxy);
                if let Some(auth) = &proxy.authorization {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                let mut headers = http::HeaderMap::new();
                headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
                tunnel = tunnel.with_headers(headers);
                let tunnelled = tower_service::Service::call(&mut tunnel, dst.clone()).await?;
                Box::new(TokioIo::new(tunnelled))
            }
            _ => {
                let tcp = tower_service::Service::call(&mut self.http, dst.clone()).await?;
                if !https {
                    return Ok(Conn::Plain(tcp));
                }
                Box::new(tcp.into_inner())
            }
        };
        let Some(tls) = &self.tls else {
            return Err("no TLS settings for an https:// vendor".into());
        };
        tls_over(tls, &dst, io, &self.failures).await
    }
}

/// TLS to `dst`'s host over `io`.
async fn tls_over(
    tls: &tokio_rustls::TlsConnector,
    dst: &Uri,
    io: Box<dyn Io>,
    failures: &Failures,
) -> Result<Conn, BoxError> {
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
        failures: failures.clone(),
        has_read: false,
    };
    Ok(Conn::Tls(Box::new(TokioIo::new(stream)), h2, watch))
}

/// Connects to a proxy for its `CONNECT`: TCP, and TLS when its URL is
/// `https://`.
#[derive(Clone)]
struct ToProxy {
    http: HttpConnector,
    tls: Option<tokio_rustls::TlsConnector>,
    failures: Failures,
}

impl tower_service::Service<Uri> for ToProxy {
    type Response = Conn;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, proxy: Uri) -> Self::Future {
        let mut this = self.clone();
        Box::pin(async move {
            let tcp = tower_service::Service::call(&mut this.http, proxy.clone()).await?;
            if proxy.scheme_str() != Some("https") {
                return Ok(Conn::Plain(tcp));
            }
            let Some(tls) = &this.tls else {
                return Err("no TLS settings for an https:// proxy".into());
            };
            tls_over(tls, &proxy, Box::new(tcp.into_inner()), &this.failures).await
        })
    }
}

/// The byte stream under a TLS connection: TCP, or a tunnel through a proxy.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// A connection to a vendor or a proxy, plain or TLS (`true` when ALPN
/// chose HTTP/2).
enum Conn {
    Plain(TokioIo<TcpStream>),
    Tls(Box<TokioIo<TlsStream<Box<dyn Io>>>>, bool, Watch),
}

/// Where a TLS connection's failure is kept, and under which host: only a
/// failure before anything was read from the server, which is what a
/// refusal after the handshake looks like. A connection that has served
/// answers and then fails says nothing about the next one.
struct Watch {
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
