//! The one place that talks HTTP: sends a vendor adapter's request and
//! brings back its status, `Retry-After` and a size-capped body.
//!
//! One reqwest client (one connection pool, keep-alive) serves the whole run.
//! HTTP Digest is handled here because it depends on the server's nonce: the
//! first request to a digest vendor goes alone to learn the challenge, every
//! later one carries a precomputed `Authorization` with a counting `nc`, and a
//! `stale=true` challenge is answered by one immediate retry with the new
//! nonce.

use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};

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

/// No answer: all of these are worth another attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    Timeout,
    Connect(String),
    Broken(String),
    /// The request could not be built: retrying cannot help.
    Unsendable(String),
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

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
}

impl Client {
    pub fn new(timeout: Duration, pool: usize) -> Result<Client, String> {
        // reqwest is built without a default TLS crypto provider; install ring's
        // once (a second install is refused harmlessly).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(pool)
            .tcp_nodelay(true)
            .user_agent(concat!("invitesync/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
        Ok(Client { http })
    }

    /// Sends one request (plus, for digest, the one retry a fresh or stale
    /// challenge calls for).
    pub async fn send(
        &self,
        req: http::Request<Bytes>,
        digest: Option<&DigestAuth>,
    ) -> Result<Answer, SendError> {
        let Some(auth) = digest else {
            return self.execute(req).await;
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
        let (answer, challenges) = self.execute_digest(build(authorization)).await?;
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
        let (answer, _) = self.execute_digest(build(retry)).await?;
        Ok(answer)
    }

    async fn execute(&self, req: http::Request<Bytes>) -> Result<Answer, SendError> {
        Ok(self.execute_digest(req).await?.0)
    }

    async fn execute_digest(
        &self,
        req: http::Request<Bytes>,
    ) -> Result<(Answer, Vec<String>), SendError> {
        let req = reqwest::Request::try_from(req).map_err(|e| SendError::Unsendable(cause(&e)))?;
        let mut resp = self.http.execute(req).await.map_err(map_err)?;
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
        while let Some(chunk) = resp.chunk().await.map_err(map_err)? {
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

fn map_err(e: reqwest::Error) -> SendError {
    if e.is_timeout() {
        SendError::Timeout
    } else if e.is_connect() {
        SendError::Connect(cause(&e))
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
