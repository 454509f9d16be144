//! The one place that talks HTTP: sends a vendor adapter's request and
//! brings back its status, `Retry-After` and a size-capped body.
//!
//! Each vendor's requests go through the reqwest client of its route, trust
//! and client certificate (`crate::net`); vendors that share those share a
//! client and its connection pool.
//! HTTP Digest is handled here because it depends on the server's nonce: the
//! first request to a digest vendor goes alone to learn the challenge, every
//! later one carries a precomputed `Authorization` with a counting `nc`, and a
//! `stale=true` challenge is answered by one immediate retry with the new
//! nonce.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};

use crate::change::VendorId;
use crate::digest::{ChallengeKind, DigestSession};
use crate::retry::parse_retry_after;

/// Bodies past this size are cut: an answer is a small JSON document, and a
/// vendor gone wrong must not fill our memory.
pub const BODY_CAP: usize = 1024 * 1024;

/// A vendor's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: Bytes,
}

/// No answer. Timeouts and broken connections are worth another attempt;
/// a connection that could not be made at all is too, but it says nothing
/// against the row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    Timeout,
    /// No connection could be made: the vendor (or its proxy) cannot be reached.
    Connect(String),
    Broken(String),
    /// The request could not be built: retrying cannot help.
    Unsendable(String),
    /// A certificate, proxy or name problem that no retry can fix: the
    /// vendor must stop. The text names the vendor table, host, cause and fix.
    Blocked(String),
}

impl SendError {
    pub fn is_timeout(&self) -> bool {
        matches!(self, SendError::Timeout)
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Timeout => f.write_str("timed out"),
            SendError::Connect(e) => write!(f, "cannot connect: {e}"),
            SendError::Broken(e) => write!(f, "connection failed: {e}"),
            SendError::Unsendable(e) => write!(f, "cannot send this request: {e}"),
            SendError::Blocked(e) => f.write_str(e),
        }
    }
}

/// A digest vendor's session plus the gate that lets only one request learn
/// the challenge.
pub struct DigestAuth {
    pub session: DigestSession,
    priming: tokio::sync::Mutex<()>,
}

impl DigestAuth {
    pub fn new(session: DigestSession) -> Self {
        DigestAuth {
            session,
            priming: tokio::sync::Mutex::new(()),
        }
    }
}

/// The clients of a run, one per vendor (in config order).
#[derive(Clone)]
pub struct Client {
    vendors: Arc<[VendorClient]>,
}

/// One vendor's reqwest client and what its failures are reported with.
struct VendorClient {
    http: reqwest::Client,
    context: Arc<crate::net::classify::Context>,
    /// The vendor's origin, parsed once: see [`reqwest_request`].
    origin: Option<Origin>,
}

/// A vendor's scheme and authority, and its base URL to copy per request.
struct Origin {
    scheme: http::uri::Scheme,
    authority: Option<http::uri::Authority>,
    url: url::Url,
}

impl Origin {
    fn of(base: &url::Url) -> Option<Origin> {
        let uri: http::Uri = base.as_str().parse().ok()?;
        Some(Origin {
            scheme: uri.scheme()?.clone(),
            authority: uri.authority().cloned(),
            url: base.clone(),
        })
    }
}

impl Client {
    /// The clients of `config`'s vendors: their proxies, trusted roots and
    /// client certificates, read now so that a mistake stops the run before
    /// anything is sent. A config loaded for a command that sends nothing
    /// reads none of them.
    pub fn new(config: &crate::config::Config, pool: usize) -> Result<Client, String> {
        // reqwest is built without a default TLS crypto provider; install ring's
        // once (a second install is refused harmlessly).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let network = crate::net::Network::build(config).map_err(|e| e.0)?;
        let clients = network.http_clients(config.run.request_timeout, pool)?;
        let vendors = network
            .vendors
            .iter()
            .zip(clients)
            .map(|(v, http)| {
                tracing::debug!(vendor = %v.name, "{} {}", v.base_url, v.route.describe());
                VendorClient {
                    http,
                    context: v.context.clone(),
                    origin: Origin::of(&v.base_url),
                }
            })
            .collect();
        Ok(Client { vendors })
    }

    /// What failure messages say about vendor `vendor`'s connections.
    pub fn context(&self, vendor: VendorId) -> Option<&crate::net::classify::Context> {
        self.vendors.get(vendor as usize).map(|v| &*v.context)
    }

    /// Sends one request to vendor `vendor` (plus, for digest, the one
    /// retry a fresh or stale challenge calls for).
    pub async fn send(
        &self,
        vendor: VendorId,
        req: http::Request<Bytes>,
        digest: Option<&DigestAuth>,
    ) -> Result<Answer, SendError> {
        let Some(client) = self.vendors.get(vendor as usize) else {
            return Err(SendError::Unsendable(format!(
                "no client for vendor {vendor}"
            )));
        };
        let Some(auth) = digest else {
            return client.execute(req).await;
        };
        let (parts, body) = req.into_parts();
        let uri = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let method = parts.method.as_str().to_string();
        let build = |authorization: Option<String>| {
            let mut r = http::Request::from_parts(parts.clone(), body.clone());
            if let Some(a) = authorization.and_then(|a| http::HeaderValue::from_str(&a).ok()) {
                let mut a = a;
                a.set_sensitive(true);
                r.headers_mut().insert(AUTHORIZATION, a);
            }
            r
        };
        // Before the first challenge is known, one request at a time asks for it.
        let mut primer = None;
        let mut authorization = auth.session.authorization(&method, &uri);
        if authorization.is_none() {
            primer = Some(auth.priming.lock().await);
            authorization = auth.session.authorization(&method, &uri);
        }
        let sent_credentials = authorization.is_some();
        let (answer, challenges) = client.execute_digest(build(authorization)).await?;
        if answer.status != 401 || challenges.is_empty() {
            return Ok(answer);
        }
        let kind = auth
            .session
            .on_challenge(challenges.iter().map(String::as_str));
        drop(primer);
        match kind {
            Ok(ChallengeKind::Stale) => {}
            Ok(_) if !sent_credentials => {}
            _ => return Ok(answer),
        }
        let retry = auth.session.authorization(&method, &uri);
        let (answer, _) = client.execute_digest(build(retry)).await?;
        Ok(answer)
    }
}

impl VendorClient {
    async fn execute(&self, req: http::Request<Bytes>) -> Result<Answer, SendError> {
        Ok(self.execute_digest(req).await?.0)
    }

    async fn execute_digest(
        &self,
        req: http::Request<Bytes>,
    ) -> Result<(Answer, Vec<String>), SendError> {
        let req = reqwest_request(self.origin.as_ref(), req)?;
        let mut resp = self
            .http
            .execute(req)
            .await
            .map_err(|e| map_err(e, &self.context))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let challenges = if status == 401 {
            resp.headers()
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_string))
                .collect()
        } else {
            Vec::new()
        };
        let mut body = BytesMut::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| map_err(e, &self.context))? {
            let room = BODY_CAP.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if chunk.len() >= room {
                break;
            }
        }
        Ok((
            Answer {
                status,
                retry_after,
                body: body.freeze(),
            },
            challenges,
        ))
    }
}

/// The adapter's request as reqwest's. reqwest's own conversion parses the
/// whole URI again, host included, for every row; a request to the vendor's
/// own origin (all of them, in practice) only needs its path and query set
/// on a copy of the base URL, parsed once.
fn reqwest_request(
    origin: Option<&Origin>,
    req: http::Request<Bytes>,
) -> Result<reqwest::Request, SendError> {
    let same_origin = origin.filter(|o| {
        req.uri().scheme() == Some(&o.scheme) && req.uri().authority() == o.authority.as_ref()
    });
    let Some(origin) = same_origin else {
        return reqwest::Request::try_from(req).map_err(|e| SendError::Unsendable(cause(&e)));
    };
    let (parts, body) = req.into_parts();
    let mut url = origin.url.clone();
    url.set_fragment(None);
    match parts.uri.path_and_query() {
        Some(pq) => {
            url.set_path(pq.path());
            url.set_query(pq.query());
        }
        None => {
            url.set_path("/");
            url.set_query(None);
        }
    }
    let mut out = reqwest::Request::new(parts.method, url);
    *out.headers_mut() = parts.headers;
    *out.version_mut() = parts.version;
    *out.body_mut() = Some(body.into());
    Ok(out)
}

fn map_err(e: reqwest::Error, context: &crate::net::classify::Context) -> SendError {
    use crate::net::classify::{Class, classify};
    match classify(&e, context) {
        Class::Blocked(problem) => return SendError::Blocked(problem.to_string()),
        Class::Unreachable(what) => return SendError::Connect(what),
        Class::Other => {}
    }
    // A connection that could not even be made (a connect timeout included)
    // means the vendor was not reached, whatever else went wrong.
    if e.is_connect() {
        SendError::Connect(format!("{}: {}", context.host, cause(&e)))
    } else if e.is_timeout() {
        SendError::Timeout
    } else {
        SendError::Broken(cause(&e))
    }
}

/// The innermost cause, which says what happened ("connection reset by
/// peer") without reqwest's framing. Never contains credentials: they travel
/// in headers, which errors do not quote.
fn cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shortcut builds exactly what reqwest's own conversion builds.
    #[test]
    fn a_request_to_the_vendors_origin_keeps_its_url_method_headers_and_body() {
        let bases = [
            "http://127.0.0.1:8080",
            "https://api.example.com/",
            "https://api.example.com/prefix/v2/",
            "http://user:pa%20ss@[::1]:9000/base",
            "https://API.Example.COM:443/x#frag",
        ];
        let paths = [
            "/invites/a%2Fb",
            "/invites/%E2%82%AC?x=1&y=%20z",
            "/a/./b/../c",
            "/q?",
            "/",
        ];
        for base in bases {
            let base = url::Url::parse(base).unwrap();
            let origin = Origin::of(&base).unwrap();
            for path in paths {
                let uri = crate::vendors::http::url(&base, path);
                let build = || {
                    http::Request::builder()
                        .method(http::Method::PATCH)
                        .uri(&uri)
                        .header("x-api-key", "k")
                        .body(Bytes::from_static(b"{}"))
                        .unwrap()
                };
                let ours = reqwest_request(Some(&origin), build()).unwrap();
                let theirs = reqwest::Request::try_from(build()).unwrap();
                assert_eq!(ours.url().as_str(), theirs.url().as_str(), "{uri}");
                assert_eq!(ours.method(), theirs.method());
                assert_eq!(ours.headers(), theirs.headers());
                assert_eq!(
                    ours.body().and_then(|b| b.as_bytes()),
                    theirs.body().and_then(|b| b.as_bytes())
                );
            }
        }
    }

    #[test]
    fn a_request_to_another_origin_is_converted_in_full() {
        let base = url::Url::parse("https://api.example.com").unwrap();
        let origin = Origin::of(&base).unwrap();
        let req = http::Request::builder()
            .uri("http://elsewhere.example:81/p?q")
            .body(Bytes::new())
            .unwrap();
        let ours = reqwest_request(Some(&origin), req).unwrap();
        assert_eq!(ours.url().as_str(), "http://elsewhere.example:81/p?q");
    }
}
