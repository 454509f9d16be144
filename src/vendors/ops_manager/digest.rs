//! Server-side HTTP Digest (RFC 7616, MD5, qop=auth) as Ops Manager speaks it.
//!
//! Clients are expected to reuse one nonce for many concurrent requests with
//! a counting `nc`, so each (nonce, nc) pair is accepted once and in any
//! order: a sliding window of recently seen counts per nonce tells a replay
//! from a late arrival. A nonce past its age or use limit, or one this server
//! never issued (a restart), is answered with a fresh nonce and `stale=true`
//! when the credentials were right, which tells the client to retry without
//! asking the user. The hash is checked before the nonce table is locked, so
//! the lock covers a map lookup and a few bit operations.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, Method, Uri};
use digest_auth::{Algorithm, AlgorithmType, AuthorizationHeader, Qop};

pub(crate) const REALM: &str = "MMS Public API";

/// Counts within this distance below the highest seen are tracked one by
/// one; older ones are refused as stale. Far more than any client keeps in
/// flight on one nonce.
const WINDOW: u32 = 4096;
/// Nonces remembered at most; the oldest are forgotten first (a client still
/// using one gets `stale=true` and a new one).
const MAX_NONCES: usize = 4096;

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No or wrong credentials, or a replayed count: a new challenge.
    Unauthorized,
    /// Right credentials on a nonce that expired or is unknown.
    Stale,
}

struct NonceState {
    issued: Instant,
    uses: u64,
    high: u32,
    /// Bit `n % WINDOW` is set when count `n` (within the window) was used.
    /// Allocated on first use, since most challenged nonces are never used.
    seen: Option<Box<[u64; (WINDOW / 64) as usize]>>,
}

#[derive(Debug, PartialEq, Eq)]
enum Count {
    Fresh,
    Replay,
    TooOld,
}

impl NonceState {
    fn new(now: Instant) -> Self {
        NonceState {
            issued: now,
            uses: 0,
            high: 0,
            seen: None,
        }
    }

    fn accept(&mut self, nc: u32) -> Count {
        if nc == 0 {
            return Count::Replay;
        }
        let seen = self
            .seen
            .get_or_insert_with(|| Box::new([0; (WINDOW / 64) as usize]));
        let bit = |n: u32| ((n % WINDOW / 64) as usize, 1u64 << (n % 64));
        if nc > self.high {
            if nc - self.high >= WINDOW {
                seen.fill(0);
            } else {
                for n in self.high + 1..nc {
                    let (w, b) = bit(n);
                    seen[w] &= !b;
                }
            }
            let (w, b) = bit(nc);
            seen[w] |= b;
            self.high = nc;
            return Count::Fresh;
        }
        if self.high - nc >= WINDOW {
            return Count::TooOld;
        }
        let (w, b) = bit(nc);
        if seen[w] & b != 0 {
            return Count::Replay;
        }
        seen[w] |= b;
        Count::Fresh
    }
}

struct Nonces {
    map: HashMap<String, NonceState>,
    order: VecDeque<String>,
}

pub(crate) struct Digest {
    username: String,
    /// MD5(username:realm:password), fixed for the server's life.
    ha1: String,
    max_uses: u64,
    max_age: Duration,
    nonces: Mutex<Nonces>,
}

fn md5(data: &str) -> String {
    Algorithm::new(AlgorithmType::MD5, false).hash(data.as_bytes())
}

impl Digest {
    /// `max_uses` and `max_age` of 0 mean unlimited.
    pub(crate) fn new(username: &str, password: &str, max_uses: u64, max_age: Duration) -> Self {
        Digest {
            username: username.to_string(),
            ha1: md5(&format!("{username}:{REALM}:{password}")),
            max_uses,
            max_age,
            nonces: Mutex::new(Nonces {
                map: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    /// Issues a nonce and returns the `WWW-Authenticate` value carrying it.
    pub(crate) fn challenge(&self, stale: bool) -> HeaderValue {
        let nonce = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let value = format!(
            "Digest realm=\"{REALM}\", domain=\"\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\", stale={stale}"
        );
        let mut t = self.nonces.lock().unwrap_or_else(|e| e.into_inner());
        while t.order.len() >= MAX_NONCES {
            if let Some(old) = t.order.pop_front() {
                t.map.remove(&old);
            }
        }
        t.map.insert(nonce.clone(), NonceState::new(Instant::now()));
        t.order.push_back(nonce);
        // Nonces are hex and the rest is fixed text, so this always holds.
        HeaderValue::from_str(&value)
            .unwrap_or_else(|_| HeaderValue::from_static("Digest realm=\"MMS Public API\""))
    }

    /// Checks an `Authorization` header for `method` on `uri`.
    pub(crate) fn verify(
        &self,
        method: &Method,
        uri: &Uri,
        header: Option<&HeaderValue>,
    ) -> Result<(), Refusal> {
        let text = header
            .and_then(|h| h.to_str().ok())
            .ok_or(Refusal::Unauthorized)?;
        let (scheme, rest) = text
            .trim_start()
            .split_once(' ')
            .ok_or(Refusal::Unauthorized)?;
        if !scheme.eq_ignore_ascii_case("digest") {
            return Err(Refusal::Unauthorized);
        }
        let auth = AuthorizationHeader::parse(rest).map_err(|_| Refusal::Unauthorized)?;
        let cnonce = auth.cnonce.as_deref().ok_or(Refusal::Unauthorized)?;
        let request_target = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
        if auth.username != self.username
            || auth.realm != REALM
            || auth.algorithm != Algorithm::new(AlgorithmType::MD5, false)
            || auth.qop != Some(Qop::AUTH)
            || auth.userhash
            || (auth.uri != request_target && auth.uri != uri.path())
        {
            return Err(Refusal::Unauthorized);
        }
        let ha2 = md5(&format!("{method}:{}", auth.uri));
        let expected = md5(&format!(
            "{}:{}:{:08x}:{cnonce}:auth:{ha2}",
            self.ha1, auth.nonce, auth.nc
        ));
        if !expected.eq_ignore_ascii_case(&auth.response) {
            return Err(Refusal::Unauthorized);
        }

        let now = Instant::now();
        let mut t = self.nonces.lock().unwrap_or_else(|e| e.into_inner());
        let Some(state) = t.map.get_mut(&auth.nonce) else {
            return Err(Refusal::Stale);
        };
        let expired = (self.max_uses > 0 && state.uses >= self.max_uses)
            || (!self.max_age.is_zero() && now.duration_since(state.issued) > self.max_age);
        if expired {
            return Err(Refusal::Stale);
        }
        match state.accept(auth.nc) {
            Count::Fresh => {
                state.uses += 1;
                Ok(())
            }
            Count::Replay => Err(Refusal::Unauthorized),
            Count::TooOld => Err(Refusal::Stale),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use digest_auth::{AuthContext, HttpMethod};

    fn respond(www: &HeaderValue, user: &str, pass: &str, uri: &str, nc: u32) -> HeaderValue {
        let mut prompt = digest_auth::parse(www.to_str().unwrap()).unwrap();
        prompt.nc = nc - 1;
        let ctx = AuthContext::new_with_method(
            user,
            pass,
            uri,
            Option::<&[u8]>::None,
            HttpMethod::from("PATCH"),
        );
        HeaderValue::from_str(&prompt.respond(&ctx).unwrap().to_string()).unwrap()
    }

    #[test]
    fn counts_are_accepted_once_in_any_order() {
        let mut s = NonceState::new(Instant::now());
        assert_eq!(s.accept(2), Count::Fresh);
        assert_eq!(s.accept(1), Count::Fresh);
        assert_eq!(s.accept(2), Count::Replay);
        assert_eq!(s.accept(0), Count::Replay);
        assert_eq!(s.accept(WINDOW + 10), Count::Fresh);
        assert_eq!(s.accept(3), Count::TooOld);
        assert_eq!(s.accept(WINDOW + 9), Count::Fresh);
        assert_eq!(s.accept(WINDOW + 10), Count::Replay);
        // A count that reuses the bit of one far below is fresh again.
        assert_eq!(s.accept(2 * WINDOW + 1), Count::Fresh);
        assert_eq!(s.accept(WINDOW + 2), Count::Fresh);
    }

    #[test]
    fn verifies_hash_nonce_and_count() {
        let d = Digest::new("pub", "priv", 3, Duration::ZERO);
        let uri: Uri = "/api/public/v1.0/orgs/x/invites?pretty=true"
            .parse()
            .unwrap();
        let www = d.challenge(false);
        assert!(www.to_str().unwrap().contains("qop=\"auth\", stale=false"));
        let ok = respond(&www, "pub", "priv", uri.to_string().as_str(), 1);
        assert_eq!(d.verify(&Method::PATCH, &uri, Some(&ok)), Ok(()));
        assert_eq!(
            d.verify(&Method::PATCH, &uri, Some(&ok)),
            Err(Refusal::Unauthorized)
        );
        assert_eq!(
            d.verify(&Method::PUT, &uri, Some(&ok)),
            Err(Refusal::Unauthorized)
        );
        let bad = respond(&www, "pub", "wrong", uri.to_string().as_str(), 2);
        assert_eq!(
            d.verify(&Method::PATCH, &uri, Some(&bad)),
            Err(Refusal::Unauthorized)
        );
        for nc in [3, 2] {
            let h = respond(&www, "pub", "priv", uri.to_string().as_str(), nc);
            assert_eq!(d.verify(&Method::PATCH, &uri, Some(&h)), Ok(()));
        }
        // Three uses allowed: the fourth is stale.
        let h = respond(&www, "pub", "priv", uri.to_string().as_str(), 4);
        assert_eq!(
            d.verify(&Method::PATCH, &uri, Some(&h)),
            Err(Refusal::Stale)
        );
        assert_eq!(
            d.verify(&Method::PATCH, &uri, None),
            Err(Refusal::Unauthorized)
        );
        let basic = HeaderValue::from_static("Basic cHViOnByaXY=");
        assert_eq!(
            d.verify(&Method::PATCH, &uri, Some(&basic)),
            Err(Refusal::Unauthorized)
        );
    }

    #[test]
    fn old_nonces_go_stale() {
        let d = Digest::new("pub", "priv", 0, Duration::from_millis(1));
        let uri: Uri = "/a".parse().unwrap();
        let www = d.challenge(false);
        std::thread::sleep(Duration::from_millis(5));
        let h = respond(&www, "pub", "priv", "/a", 1);
        assert_eq!(
            d.verify(&Method::PATCH, &uri, Some(&h)),
            Err(Refusal::Stale)
        );
        // A nonce this server never issued, with the right password.
        let other = Digest::new("pub", "priv", 0, Duration::ZERO);
        let h = respond(&other.challenge(false), "pub", "priv", "/a", 1);
        assert_eq!(
            d.verify(&Method::PATCH, &uri, Some(&h)),
            Err(Refusal::Stale)
        );
    }
}
