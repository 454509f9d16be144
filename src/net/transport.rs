//! The HTTP client of a vendor: hyper-util's pooled client over a connector
//! of our own (`connector.rs`: a TCP connection, a `CONNECT` tunnel through
//! the vendor's proxy, and TLS with the vendor's trust and client
//! certificate).
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
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, HeaderValue, USER_AGENT};
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::classify::find;
use super::connector::{BoxError, Connector, Failures};
pub use super::connector::{ProxyTo, USER_AGENT_VALUE};

/// How often a request over TLS that was never processed is sent again
/// before its error is returned (and the row's own retry takes over).
const REFUSED_RESENDS: usize = 2;

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
    /// The whole request took longer than its timeout, this long.
    Timeout(Duration),
    /// The request cannot be sent as it is (its URI is not absolute, which
    /// is how an adapter marks a request it could not build); sending it
    /// again cannot help.
    Unsendable(String),
    /// The request or its answer failed; `is_connect` when no connection
    /// could be made.
    Failed { error: BoxError, is_connect: bool },
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransportError::Timeout(_) => f.write_str("timed out"),
            TransportError::Unsendable(why) => f.write_str(why),
            TransportError::Failed { error, .. } => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TransportError::Timeout(_) | TransportError::Unsendable(_) => None,
            TransportError::Failed { error, .. } => Some(&**error),
        }
    }
}

impl Transport {
    pub fn new(settings: Settings) -> Transport {
        let failures = Failures::default();
        let connector = Connector::new(
            settings.connect_timeout,
            settings.tls.clone(),
            settings.proxy.clone(),
            failures.clone(),
        );
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
            Err(_) => Err(TransportError::Timeout(self.timeout)),
        }
    }

    async fn head(&self, req: Request<Bytes>) -> Result<Response<Incoming>, TransportError> {
        if req.uri().scheme().is_none() || req.uri().authority().is_none() {
            return Err(TransportError::Unsendable(format!(
                "`{}` is not an absolute URL",
                req.uri()
            )));
        }
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

/// At most `cap` bytes of an answer's body: what comes after is not read.
pub async fn body_up_to(mut body: Incoming, cap: usize) -> Result<Bytes, hyper::Error> {
    use http_body_util::BodyExt as _;
    let mut out = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(chunk) = frame?.into_data() else {
            continue;
        };
        let room = cap.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if chunk.len() >= room {
            break;
        }
    }
    Ok(out.freeze())
}

/// hyper's "not sent": the connection closed before the request went out,
/// or another connection to the host was chosen for HTTP/2 meanwhile.
fn cancelled(err: &(dyn std::error::Error + 'static)) -> bool {
    find::<hyper::Error>(err).is_some_and(hyper::Error::is_canceled)
}

/// An HTTP/2 server's word that it did not process the request: a graceful
/// `GOAWAY` (it is rotating the connection) or a stream reset with
/// `REFUSED_STREAM`. Either may be sent again on another stream or
/// connection (RFC 9113 §8.7). Without this, a server that rotates a busy
/// connection would fail every request then in flight on it at once.
pub fn refused_unprocessed(err: &(dyn std::error::Error + 'static)) -> bool {
    find::<h2::Error>(err).is_some_and(|h2| {
        h2.is_remote()
            && ((h2.is_go_away() && h2.reason() == Some(h2::Reason::NO_ERROR))
                || (h2.is_reset() && h2.reason() == Some(h2::Reason::REFUSED_STREAM)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request an adapter could not build (its URI left relative) is
    /// refused here, before any connection, as one no retry can help.
    #[tokio::test]
    async fn a_relative_uri_is_unsendable() {
        let transport = Transport::new(Settings {
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            pool: 1,
            tls: None,
            proxy: None,
        });
        let req = Request::builder().uri("/").body(Bytes::new()).unwrap();
        let sent = transport
            .send(req, |resp| async move { Ok(resp.status()) })
            .await;
        assert!(
            matches!(sent, Err(TransportError::Unsendable(_))),
            "{sent:?}"
        );
    }
}
