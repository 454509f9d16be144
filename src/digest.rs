//! HTTP Digest (RFC 7616) on the client side, with the server's nonce reused.
//!
//! Answering every request's 401 would double the round trips. A
//! [`DigestSession`] instead keeps the last challenge a vendor sent, and every
//! request after it carries an `Authorization` computed up front with that
//! nonce and the next nonce count. The server answers 401 again only when the
//! nonce expires (`stale=true`: retry with the new one) or the credentials are
//! wrong.
//!
//! How the client uses it, per request:
//! 1. Send [`DigestSession::authorization`] as `Authorization` (there is none
//!    before the first challenge is known).
//! 2. On a 401, hand the `WWW-Authenticate` values to
//!    [`DigestSession::on_challenge`]; unless
//!    [`ChallengeKind::refuses_credentials`], send the request again once;
//!    otherwise the credentials are refused.
//!
//! Concurrent requests take distinct nonce counts, but may reach the server
//! in another order; a server must reject a repeated count, not a smaller one.
//! Only `qop=auth` is used: `auth-int` would hash the body into every header
//! and buys nothing over TLS.

use std::sync::{Mutex, MutexGuard};

use http_auth::PasswordParams;
use http_auth::digest::{Algorithm, DigestClient, Qop};
use http_auth::parser::ChallengeParser;

use crate::secret::Secret;

/// What a 401's challenge says about the request that received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeKind {
    /// `stale=true`: the nonce expired but the credentials were right.
    Stale,
    /// A challenge without `stale`: the invitation to authenticate, or a
    /// refusal if the request already carried credentials.
    Fresh,
}

impl ChallengeKind {
    /// Whether the 401 means the credentials are wrong. A request sent before
    /// any challenge was known carried none, so its 401 only starts the
    /// session.
    pub fn refuses_credentials(self, request_carried_authorization: bool) -> bool {
        self == ChallengeKind::Fresh && request_carried_authorization
    }
}

/// One vendor account's digest state, shared by all its requests in flight.
pub struct DigestSession {
    username: Secret,
    password: Secret,
    challenge: Mutex<Option<DigestClient>>,
}

impl DigestSession {
    pub fn new(username: Secret, password: Secret) -> Self {
        DigestSession {
            username,
            password,
            challenge: Mutex::new(None),
        }
    }

    /// The `Authorization` value for a request, or `None` while no challenge
    /// is known. `uri` must be the request's path and query exactly as sent:
    /// the server hashes what it received. A challenge that cannot be answered
    /// (2^32 requests on one nonce) also gives `None`, so that the request
    /// draws a fresh challenge instead of failing here.
    pub fn authorization(&self, method: &str, uri: &str) -> Option<String> {
        match self.respond(method, uri, None) {
            Ok(answer) => answer,
            Err(e) => {
                tracing::warn!("{e}");
                None
            }
        }
    }

    /// Takes the challenge of a 401 from all its `WWW-Authenticate` values
    /// (values that are not text are the caller's to skip).
    /// Of several Digest challenges the first with a SHA algorithm wins over
    /// MD5 (servers list their preference first). A new nonce starts counting
    /// from 1 again; the same nonce keeps its count, so no count repeats
    /// (unless all 2^32 are spent and the server insists on that nonce).
    pub fn on_challenge<'a>(
        &self,
        www_authenticate: impl IntoIterator<Item = &'a str>,
    ) -> Result<ChallengeKind, String> {
        let chosen = choose(www_authenticate)?;
        let kind = if chosen.stale() {
            ChallengeKind::Stale
        } else {
            ChallengeKind::Fresh
        };
        let mut current = self.lock();
        let same = current.as_ref().is_some_and(|c| {
            c.nonce() == chosen.nonce()
                && c.realm() == chosen.realm()
                && c.opaque() == chosen.opaque()
                && c.algorithm() == chosen.algorithm()
                && c.session() == chosen.session()
                && c.nonce_count() < u32::MAX
        });
        if !same {
            *current = Some(chosen);
        }
        Ok(kind)
    }

    fn lock(&self) -> MutexGuard<'_, Option<DigestClient>> {
        // The state is replaced whole, so a panic elsewhere cannot leave it torn.
        self.challenge
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `cnonce` is fixed only by tests; otherwise a random one is drawn.
    fn respond(
        &self,
        method: &str,
        uri: &str,
        cnonce: Option<&str>,
    ) -> Result<Option<String>, String> {
        let mut current = self.lock();
        let Some(client) = current.as_mut() else {
            return Ok(None);
        };
        let params = PasswordParams {
            username: self.username.expose(),
            password: self.password.expose(),
            uri,
            method,
            // No body: `auth-int` is never chosen.
            body: None,
        };
        let answer = match cnonce {
            None => client.respond(&params),
            Some(c) => client.respond_with_testing_cnonce(&params, c),
        };
        answer
            .map(Some)
            .map_err(|e| format!("cannot answer the digest challenge: {e}"))
    }
}

impl std::fmt::Debug for DigestSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let current = self.lock();
        let mut d = f.debug_struct("DigestSession");
        d.field("username", &self.username)
            .field("password", &self.password);
        if let Some(c) = current.as_ref() {
            d.field("realm", &c.realm())
                .field("algorithm", &c.algorithm())
                .field("nc", &c.nonce_count());
        }
        d.finish()
    }
}

/// Prefers any SHA variant to MD5; `Algorithm` may grow, and new ones are SHA.
fn rank(a: Algorithm) -> u8 {
    match a {
        Algorithm::Md5 => 0,
        _ => 1,
    }
}

/// The best Digest challenge answerable with `qop=auth` among all values.
fn choose<'a>(www_authenticate: impl IntoIterator<Item = &'a str>) -> Result<DigestClient, String> {
    let mut best: Option<DigestClient> = None;
    let mut offered: Vec<String> = Vec::new();
    let mut problem: Option<String> = None;
    for text in www_authenticate {
        for parsed in ChallengeParser::new(text) {
            let challenge = match parsed {
                Ok(c) => c,
                Err(e) => {
                    // The rest of this value cannot be trusted to parse.
                    problem.get_or_insert_with(|| format!("malformed WWW-Authenticate: {e}"));
                    break;
                }
            };
            if offered.len() < 8
                && !offered
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(challenge.scheme))
            {
                offered.push(challenge.scheme.chars().take(32).collect());
            }
            if !challenge.scheme.eq_ignore_ascii_case("Digest") {
                continue;
            }
            match DigestClient::try_from(&challenge) {
                Ok(c) if !(c.qop() & Qop::Auth) => {
                    problem.get_or_insert_with(|| {
                        "the Digest challenge offers only qop=auth-int".into()
                    });
                }
                Ok(c)
                    if best
                        .as_ref()
                        .is_none_or(|b| rank(c.algorithm()) > rank(b.algorithm())) =>
                {
                    best = Some(c);
                }
                Ok(_) => {}
                Err(e) => {
                    problem.get_or_insert_with(|| format!("unusable Digest challenge: {e}"));
                }
            }
        }
    }
    best.ok_or_else(|| {
        let offered = if offered.is_empty() {
            "none".to_string()
        } else {
            offered.join(", ")
        };
        let why = problem.map(|p| format!(": {p}")).unwrap_or_default();
        crate::text::one_line(&format!(
            "the server asked for authentication but offered no Digest challenge we can answer (schemes offered: {offered}){why}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_CHALLENGE: &str = r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#;

    fn session() -> DigestSession {
        DigestSession::new(Secret::new("Mufasa"), Secret::new("Circle Of Life"))
    }

    fn challenge(s: &DigestSession, list: &[&str]) -> Result<ChallengeKind, String> {
        s.on_challenge(list.iter().copied())
    }

    fn param<'h>(header: &'h str, name: &str) -> &'h str {
        let start = header.find(&format!(" {name}=")).unwrap() + name.len() + 2;
        header[start..]
            .split(", ")
            .next()
            .unwrap()
            .trim_matches('"')
    }

    #[test]
    fn answers_the_rfc_2617_example() {
        let s = session();
        assert_eq!(s.authorization("GET", "/dir/index.html"), None);
        assert_eq!(
            challenge(&s, &[RFC_CHALLENGE]).unwrap(),
            ChallengeKind::Fresh
        );
        let h = s
            .respond("GET", "/dir/index.html", Some("0a4f113b"))
            .unwrap()
            .unwrap();
        assert_eq!(
            h,
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", uri=\"/dir/index.html\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", algorithm=MD5, nc=00000001, cnonce=\"0a4f113b\", \
             qop=auth, response=\"6629fae49393a05397450978507c4ef1\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""
        );
    }

    #[test]
    fn counts_and_resets_with_the_nonce() {
        let s = session();
        challenge(&s, &[RFC_CHALLENGE]).unwrap();
        let nc = |s: &DigestSession| {
            s.authorization("PATCH", "/a?b=1")
                .map(|h| param(&h, "nc").to_string())
        };
        assert_eq!(nc(&s).as_deref(), Some("00000001"));
        assert_eq!(nc(&s).as_deref(), Some("00000002"));
        // The same nonce again (another request's first 401) keeps counting.
        assert_eq!(
            challenge(&s, &[RFC_CHALLENGE]).unwrap(),
            ChallengeKind::Fresh
        );
        assert_eq!(nc(&s).as_deref(), Some("00000003"));
        let stale =
            r#"Digest realm="testrealm@host.com", qop="auth", nonce="fresh-nonce", stale=true"#;
        assert_eq!(challenge(&s, &[stale]).unwrap(), ChallengeKind::Stale);
        let h = s.authorization("PATCH", "/a?b=1").unwrap();
        assert_eq!(param(&h, "nonce"), "fresh-nonce");
        assert_eq!(param(&h, "nc"), "00000001");
        assert_eq!(param(&h, "uri"), "/a?b=1");
        assert_ne!(
            param(&h, "cnonce"),
            param(&s.authorization("PATCH", "/").unwrap(), "cnonce")
        );
    }

    #[test]
    fn tells_stale_from_refusal() {
        assert!(!ChallengeKind::Stale.refuses_credentials(true));
        assert!(!ChallengeKind::Fresh.refuses_credentials(false));
        assert!(ChallengeKind::Fresh.refuses_credentials(true));
        let s = session();
        let stale_word = r#"Digest realm="r", nonce="n", qop="auth", stale=TRUE"#;
        assert_eq!(challenge(&s, &[stale_word]).unwrap(), ChallengeKind::Stale);
    }

    #[test]
    fn picks_digest_and_prefers_sha256_across_headers() {
        let s = session();
        let md5 = r#"Digest realm="r", qop="auth", algorithm=MD5, nonce="md5-nonce""#;
        let sha = r#"Digest realm="r", qop="auth", algorithm=SHA-256, nonce="sha-nonce""#;
        challenge(&s, &[r#"Basic realm="r""#, md5, sha]).unwrap();
        let h = s.authorization("PATCH", "/x").unwrap();
        assert_eq!(param(&h, "algorithm"), "SHA-256");
        assert_eq!(param(&h, "nonce"), "sha-nonce");
        assert_eq!(param(&h, "response").len(), 64);
        // One header listing several challenges, MD5 only: the Digest one.
        challenge(
            &s,
            &[&format!(r#"Bearer realm="x", {md5}, Basic realm="y""#)],
        )
        .unwrap();
        let h = s.authorization("PATCH", "/x").unwrap();
        assert_eq!(param(&h, "nonce"), "md5-nonce");
    }

    #[test]
    fn hashes_the_path_and_query_as_given() {
        let s = session();
        challenge(&s, &[RFC_CHALLENGE]).unwrap();
        let uri = "/api/public/v1.0/orgs/5f1a/invites?pretty=true";
        let h = s.authorization("PATCH", uri).unwrap();
        assert_eq!(param(&h, "uri"), uri);
        assert_eq!(param(&h, "qop"), "auth");
        assert!(http::HeaderValue::from_str(&h).is_ok());
    }

    /// What a server built on `digest_auth` computes must match what we send.
    #[test]
    fn a_digest_auth_server_accepts_it() {
        for algorithm in ["MD5", "SHA-256"] {
            let s = DigestSession::new(Secret::new("pubkey"), Secret::new("priv:ate \"key\""));
            let www = format!(
                r#"Digest realm="MMS Public API", domain="", nonce="n0nce+/=", algorithm={algorithm}, qop="auth", stale=false"#
            );
            challenge(&s, &[&www]).unwrap();
            let uri = "/api/public/v1.0/orgs/5f1a2b3c4d5e6f7a8b9c0d1e/invites";
            for _ in 0..2 {
                let sent = s.authorization("PATCH", uri).unwrap();
                let mut server = digest_auth::AuthorizationHeader::parse(&sent).unwrap();
                let claimed = server.response.clone();
                let context = digest_auth::AuthContext::new_with_method(
                    "pubkey",
                    "priv:ate \"key\"",
                    uri,
                    None::<&[u8]>,
                    digest_auth::HttpMethod("PATCH".into()),
                );
                server.digest(&context);
                assert_eq!(server.response, claimed, "{algorithm}: {sent}");
            }
        }
    }

    #[test]
    fn refuses_what_it_cannot_answer_without_leaking() {
        let s = session();
        for bad in [
            vec![r#"Basic realm="r""#],
            vec![r#"Digest realm="r", qop="auth-int", nonce="n""#],
            vec![r#"Digest realm="r", nonce="n", algorithm=SHA-1"#],
            vec![r#"Digest realm="r""#],
            vec!["Digest realm=\"unterminated"],
            vec![],
        ] {
            let e = challenge(&s, &bad).unwrap_err();
            assert!(!e.contains("Circle"), "{e}");
            assert!(e.len() < 600, "{e}");
        }
        assert_eq!(s.authorization("GET", "/"), None);
        let non_ascii = r#"Digest realm="é", nonce="n", qop="auth""#;
        assert!(challenge(&s, &[non_ascii]).is_err());
        let huge = format!(r#"Digest realm="{}"#, "x".repeat(100_000));
        assert!(challenge(&s, &[&huge]).unwrap_err().len() < 600);
        challenge(&s, &[RFC_CHALLENGE]).unwrap();
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("Circle") && !shown.contains("Mufasa"),
            "{shown}"
        );
        assert!(shown.contains("testrealm@host.com"), "{shown}");
    }

    #[test]
    fn is_shared_across_tasks() {
        fn shared<T: Send + Sync>() {}
        shared::<DigestSession>();
        let s = std::sync::Arc::new(session());
        challenge(&s, &[RFC_CHALLENGE]).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    (0..50)
                        .map(|_| param(&s.authorization("GET", "/").unwrap(), "nc").to_string())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<String> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 200, "every request takes its own nonce count");
    }
}
