//! The one place that talks HTTP: sends a vendor adapter's request and
//! brings back its status, `Retry-After` and a size-capped body.
//!
//! Each vendor's requests go through the HTTP client of its route, trust
//! and client certificate (`crate::net::transport`); vendors that share those
//! share a client and its connection pool.
//! HTTP Digest is handled here because it depends on the server's nonce: the
//! first request to a digest vendor goes alone to learn the challenge, every
//! later one carries a precomputed `Authorization` with a counting `nc`, and a
//! `stale=true` challenge is answered by one immediate retry with the new
//! nonce.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};

use crate::change::VendorId;
use crate::digest::{ChallengeKind, DigestSession};
use crate::net::transport::{Transport, TransportError};
use crate::retry::parse_retry_after;

/// Bodies past this size are cut: an answer is a small JSON document, and a
/// vendor gone wrong must not fill our memory.
pub const BODY_CAP: usize = 1024 * 1024;

/// A vendor's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<Duration>,
    /// Where a redirect points (`vendors::answer::redirect_target`).
    pub moved_to: Option<String>,
    pub body: Bytes,
}

/// No answer. Timeouts and broken connections are worth another attempt;
/// a connection that could not be made at all is too, but it says nothing
/// against the row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// No answer within the request's timeout (`request_timeout`), this long.
    Timeout(Duration),
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
        matches!(self, SendError::Timeout(_))
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Timeout(_) => f.write_str("timed out"),
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

/// One vendor's HTTP client and what its failures are reported with.
struct VendorClient {
    http: Transport,
    context: Arc<crate::net::classify::Context>,
}

impl Client {
    /// The clients of `config`'s vendors: their proxies, trusted roots and
    /// client certificates, read now so that a mistake stops the run before
    /// anything is sent. A config loaded for a command that sends nothing
    /// reads none of them.
    pub fn new(config: &crate::config::Config, pool: usize) -> Result<Client, String> {
        // rustls is built without a default crypto provider; install ring's
        // once (a second install is refused harmlessly).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let network = crate::net::Network::build(config).map_err(|e| e.0)?;
        let clients = network.transports(config.run.request_timeout, pool)?;
        let vendors = network
            .vendors
            .iter()
            .zip(clients)
            .map(|(v, http)| {
                tracing::debug!(vendor = %v.name, "{} {}", v.base_url, v.route.describe());
                VendorClient {
                    http,
                    context: v.context.clone(),
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
        let (answer, challenges) = self
            .http
            .send(req, read_answer)
            .await
            .map_err(|e| map_err(e, &self.context))?;
        // A client certificate refused in an answer (nginx's 400) says
        // nothing about the row: the vendor stops, as for a TLS refusal.
        let refused = crate::net::cert_answer::refused_client_certificate(
            answer.status,
            &answer.body,
            &self.context,
        );
        if let Some(problem) = refused {
            return Err(SendError::Blocked(problem.to_string()));
        }
        Ok((answer, challenges))
    }
}

/// The answer's status, `Retry-After`, digest challenges (on a 401) and at
/// most [`BODY_CAP`] bytes of its body.
async fn read_answer(
    resp: http::Response<hyper::body::Incoming>,
) -> Result<(Answer, Vec<String>), hyper::Error> {
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let moved_to =
        crate::vendors::answer::redirect_target(status, resp.headers().get(http::header::LOCATION));
    let challenges = if status == 401 {
        resp.headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect()
    } else {
        Vec::new()
    };
    let encoding = resp.headers().get(http::header::CONTENT_ENCODING).map(|v| {
        String::from_utf8_lossy(v.as_bytes())
            .trim()
            .to_ascii_lowercase()
    });
    let body = crate::net::transport::body_up_to(resp.into_body(), BODY_CAP).await?;
    let body = match encoding.as_deref() {
        None | Some("" | "identity") => body,
        Some(coding) => decoded(coding, &body),
    };
    Ok((
        Answer {
            status,
            retry_after,
            moved_to,
            body,
        },
        challenges,
    ))
}

fn map_err(e: TransportError, context: &crate::net::classify::Context) -> SendError {
    use crate::net::classify::{Class, classify, innermost};
    let is_connect = match &e {
        TransportError::Timeout(after) => return SendError::Timeout(*after),
        TransportError::Unsendable(why) => return SendError::Unsendable(why.clone()),
        TransportError::Failed { is_connect, .. } => *is_connect,
    };
    match classify(&e, context) {
        Class::Blocked(problem) => return SendError::Blocked(problem.to_string()),
        Class::Unreachable(what) => return SendError::Connect(what),
        Class::Other => {}
    }
    // A connection that could not even be made (a connect timeout included)
    // means the vendor was not reached, whatever else went wrong.
    if is_connect {
        SendError::Connect(format!("{}: {}", context.host, innermost(&e)))
    } else {
        SendError::Broken(innermost(&e))
    }
}

/// A body the vendor compressed although none was asked for (no
/// `Accept-Encoding` is sent), decompressed as far as [`BODY_CAP`]: its
/// JSON holds the ids the results report. One that cannot be read (a coding
/// not known here, or broken data) reads as no body: it says nothing for
/// or against the change, and is not taken for a page that is not the API's.
fn decoded(coding: &str, body: &[u8]) -> Bytes {
    use std::io::Read;
    let reader: Box<dyn Read + '_> = match coding {
        "gzip" | "x-gzip" => Box::new(flate2::read::MultiGzDecoder::new(body)),
        "deflate" => Box::new(flate2::read::ZlibDecoder::new(body)),
        "zstd" => match zstd::stream::read::Decoder::new(body) {
            Ok(d) => Box::new(d),
            Err(_) => return Bytes::new(),
        },
        _ => return Bytes::new(),
    };
    let mut out = Vec::new();
    match reader.take(BODY_CAP as u64).read_to_end(&mut out) {
        Ok(_) => Bytes::from(out),
        Err(_) => Bytes::new(),
    }
}

#[cfg(test)]
mod decoding_tests {
    use std::io::Write;

    use super::decoded;

    #[test]
    fn a_compressed_answer_is_read_and_an_unreadable_one_is_no_body() {
        let json = br#"{"id":"inv-1"}"#;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(json).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(&decoded("gzip", &gz)[..], json);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(json).unwrap();
        assert_eq!(&decoded("deflate", &z.finish().unwrap())[..], json);
        let zst = zstd::stream::encode_all(&json[..], 1).unwrap();
        assert_eq!(&decoded("zstd", &zst)[..], json);
        assert!(
            decoded("br", b"\x0b\x02\x80").is_empty(),
            "a coding not known here"
        );
        assert!(decoded("gzip", b"not gzip").is_empty(), "broken data");
        // A bomb stops at the cap.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![b' '; 4 * super::BODY_CAP]).unwrap();
        assert_eq!(
            decoded("gzip", &gz.finish().unwrap()).len(),
            super::BODY_CAP
        );
    }
}
