//! One row's journey to its vendor: wait for a slot and the pace, send,
//! read the answer, and retry what is worth retrying.
//!
//! A row that is backing off holds no slot, so the vendor's capacity goes to
//! rows that can use it. Every attempt, first or retry, waits for the same
//! slot and pace (a retry that skips the rate limiter is how other tools end
//! up hammering a throttled vendor). A row that cannot be finished because
//! the vendor was stopped or the run is ending comes back as `None`: it stays
//! pending for a resume, it is not `failed`.
//!
//! Whatever the vendor answers (its error text, the ids it reports) and
//! whatever the connection failed with leaves here only through the
//! target's [`Redactor`]: this is the one door by which vendor text reaches
//! the state file, the results and the logs, so no configured secret that a
//! vendor echoes gets any further.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::sync::{Semaphore, TryAcquireError};
use tokio_util::sync::CancellationToken;

use crate::change::{Change, VendorId};
use crate::client::{Client, DigestAuth, SendError};
use crate::config::{RetryPolicy, VendorConfig, VendorSettings};
use crate::latency::Histogram;
use crate::limits::{AdaptiveLimit, Circuit, Pace, Signal, Trip};
use crate::outcome::Outcome;
use crate::redact::Redactor;
use crate::retry::{Backoff, Class, classify, is_refused_for_now};
use crate::tally::Tally;
use crate::vendors::answer::{NotJson, not_an_api_answer};
use crate::vendors::{Adapter, Reply};

/// A vendor account ready to send: its adapter and its limits.
pub struct Target {
    pub id: VendorId,
    pub name: String,
    pub adapter: Box<dyn Adapter>,
    pub retry: RetryPolicy,
    pub limit: Arc<AdaptiveLimit>,
    pub pace: Pace,
    pub circuit: Circuit,
    pub digest: Option<DigestAuth>,
    /// Round trips that got an answer, for the summary's percentiles.
    pub latency: Histogram,
    /// What to check when the vendor refuses our credentials:
    /// `vendors.gate.api_key`, and where it comes from once
    /// [`Target::with_credential_sources`] has been told.
    pub credentials: String,
    /// Cuts every configured secret (of every vendor) out of what this
    /// vendor answers; see [`Target::with_redactor`].
    pub redactor: Arc<Redactor>,
}

impl Target {
    /// `shards` divides the configured rate so N processes keep it together.
    pub fn new(
        id: VendorId,
        config: &VendorConfig,
        adapter: Box<dyn Adapter>,
        global_concurrency: usize,
        adaptive: bool,
        shards: u32,
    ) -> Self {
        let cap = config
            .concurrency
            .unwrap_or(global_concurrency)
            .min(global_concurrency);
        let digest = adapter.digest_credentials().map(|(user, pass)| {
            DigestAuth::new(crate::digest::DigestSession::new(
                user.clone(),
                pass.clone(),
            ))
        });
        Target {
            id,
            name: config.name.clone(),
            retry: config.retry.clone(),
            limit: AdaptiveLimit::new(cap, adaptive),
            pace: Pace::new(config.rate_limit.map(|r| r.divided(shards))),
            circuit: Circuit::default(),
            digest,
            latency: Histogram::default(),
            credentials: credential_text(&config.name, adapter.credential_keys(), |_| None),
            redactor: Arc::new(redactor_of(&*adapter)),
            adapter,
        }
    }

    /// Redacts the secrets of the whole config, not only this vendor's, from
    /// this vendor's answers (see [`crate::config::Config::redactor`]).
    pub fn with_redactor(mut self, redactor: Arc<Redactor>) -> Self {
        self.redactor = redactor;
        self
    }

    /// Names where each credential comes from (an environment variable, a
    /// file), so that a refusal says exactly what to fix.
    pub fn with_credential_sources(mut self, settings: &VendorSettings) -> Self {
        self.credentials = credential_text(&self.name, self.adapter.credential_keys(), |k| {
            settings.secret_source(k)
        });
        self
    }

    /// Stops this vendor: no new attempts; waiting rows come back pending.
    pub fn stop(&self, reason: String) {
        if self.circuit.open(reason.clone()) {
            tracing::warn!(vendor = %self.name, "stopping traffic to this vendor: {reason}");
        }
        self.limit.close();
    }
}

/// Until [`Target::with_redactor`] says more: the secrets the adapter
/// itself shows (digest credentials), so that no target starts without one.
fn redactor_of(adapter: &dyn Adapter) -> Redactor {
    match adapter.digest_credentials() {
        Some((user, pass)) => Redactor::new([user, pass]),
        None => Redactor::default(),
    }
}

/// What the vendor said, with every configured secret cut out.
fn redacted(redactor: &Redactor, reply: Reply) -> Reply {
    let clean = |t: Option<String>| {
        t.map(|t| match redactor.text(&t) {
            std::borrow::Cow::Borrowed(_) => t,
            std::borrow::Cow::Owned(clean) => clean,
        })
    };
    Reply {
        remote_id: clean(reply.remote_id),
        remote_updated_at: clean(reply.remote_updated_at),
        error: clean(reply.error),
    }
}

/// `vendors.NAME.KEY (source)` for each of an adapter's credential keys
/// (`public_key/private_key` names two).
fn credential_text(name: &str, keys: &str, source: impl Fn(&str) -> Option<String>) -> String {
    keys.split('/')
        .map(|k| match source(k) {
            Some(from) => format!("vendors.{name}.{k} ({from})"),
            None => format!("vendors.{name}.{k}"),
        })
        .collect::<Vec<_>>()
        .join(" and ")
}

/// How a row that reached an end ended.
#[derive(Debug, Clone)]
pub struct Sent {
    pub outcome: Outcome,
    pub http_status: Option<u16>,
    pub attempts: u32,
    pub reply: Reply,
}

/// Sends one change until it ends; `None` leaves it pending.
pub async fn send(
    target: &Target,
    client: &Client,
    global: &Semaphore,
    change: &Change,
    stop: &CancellationToken,
    tally: &Tally,
) -> Option<Sent> {
    let mut backoff = Backoff::new(&target.retry);
    let mut attempts = 0u32;
    // When this row's answers turned to 502/503/504 (and have stayed so).
    let mut unavailable_since: Option<Instant> = None;
    let vt = tally.vendor(Some(target.id));
    loop {
        if stop.is_cancelled() || target.circuit.is_open() {
            return None;
        }
        // Each wait is tried at once first, and the stop is listened for
        // only while one has to wait: listening registers with the run's
        // stop token, which every row's task shares.
        let slot = match target.limit.try_acquire() {
            Ok(s) => s,
            Err(TryAcquireError::Closed) => return None,
            Err(TryAcquireError::NoPermits) => tokio::select! {
                biased;
                s = target.limit.acquire() => s?,
                _ = stop.cancelled() => return None,
            },
        };
        let global_slot = match global.try_acquire() {
            Ok(g) => Some(g),
            Err(TryAcquireError::Closed) => None,
            Err(TryAcquireError::NoPermits) => tokio::select! {
                biased;
                g = global.acquire() => g.ok(),
                _ = stop.cancelled() => None,
            },
        };
        let Some(global_slot) = global_slot else {
            target.limit.release(slot, Signal::Ignore);
            return None;
        };
        let paced = target.pace.free_now()
            || tokio::select! {
                biased;
                _ = target.pace.ready() => true,
                _ = stop.cancelled() => false,
            };
        // A stop that came while a wait ended sends nothing more.
        if !paced || target.circuit.is_open() || stop.is_cancelled() {
            target.limit.release(slot, Signal::Ignore);
            return None;
        }
        attempts += 1;
        vt.attempts.fetch_add(1, Ordering::Relaxed);
        if attempts > 1 {
            vt.retries.fetch_add(1, Ordering::Relaxed);
        }
        // The round trip the limit learns from starts on the wire, not
        // while waiting for the global slot or the pace.
        let mut slot = slot;
        target.limit.depart(&mut slot);
        let on_wire = slot.started;
        // Boxed: the HTTP exchange is most of this future's size, and the
        // row's task is moved whole when it is spawned and when it ends.
        let result = Box::pin(client.send(
            target.id,
            target.adapter.request(change),
            target.digest.as_ref(),
        ))
        .await;
        vt.answered(result.as_ref().ok().map(|a| a.status));
        // Why this attempt could not even connect, if it could not.
        let unreachable = match &result {
            Err(SendError::Connect(why)) => Some(target.redactor.text(why).into_owned()),
            _ => None,
        };
        let result =
            result.map_err(|e| (e.clone(), target.redactor.text(&e.to_string()).into_owned()));
        drop(global_slot);
        let (retry_after, last) = match result {
            Ok(answer) => {
                let took = on_wire.elapsed();
                let answered_at = on_wire + took;
                target.latency.record(took);
                let status = answer.status;
                tracing::trace!(
                    vendor = %target.name,
                    key = %crate::input::shown(&change.key.text),
                    status,
                    attempt = attempts,
                    "answered in {}",
                    crate::latency::human(took)
                );
                let sent_with = slot.sent_with;
                target.limit.release(slot, Signal::of_status(status));
                target.pace.on_answer(status, on_wire, sent_with);
                let class = classify(status);
                // A success whose body is a web page or text, not the JSON
                // every vendor answers with, came from something else at
                // the vendor's address and confirms nothing; a redirect
                // says the API answers elsewhere (it is not followed).
                let not_the_api = match class {
                    Class::Success => not_an_api_answer(&answer.body).map(Foreign::Page),
                    _ => answer.moved_to.clone().map(Foreign::Moved),
                };
                let trip = if not_the_api.is_some() {
                    Trip::NotTheApi
                } else if class == Class::Credentials {
                    Trip::Credentials
                } else if is_refused_for_now(status) {
                    Trip::Unavailable
                } else {
                    Trip::Answered
                };
                unavailable_since = match trip {
                    Trip::Unavailable => unavailable_since.or(Some(answered_at)),
                    _ => None,
                };
                if target.circuit.record(trip, answered_at) {
                    target.stop(match &not_the_api {
                        Some(what) => format!(
                            "[vendors.{}] answered {} times in a row with something that is not \
                             its API (last: HTTP {status}, {}). Fix: {}. Its rows stay pending: \
                             run the same command again once fixed.",
                            target.name,
                            crate::limits::circuit::NOT_THE_API_TRIPS,
                            target.redactor.text(&what.to_string()),
                            what.fix()
                        ),
                        None => format!(
                            "the vendor refused our credentials (HTTP {status}) {} times in a row; check {}{}",
                            crate::limits::circuit::CREDENTIAL_TRIPS,
                            target.credentials,
                            // A firewall's or proxy's block page is no
                            // verdict on the credentials: say what it was.
                            // (Plain text is how many an API refuses.)
                            match not_an_api_answer(&answer.body) {
                                Some(page @ NotJson::Page(_)) => format!(
                                    ". The last refusal was {}, not an answer of the API: a \
                                     firewall or proxy in front of the vendor may be refusing \
                                     this machine",
                                    target.redactor.text(&page.to_string())
                                ),
                                _ => String::new(),
                            }
                        ),
                    });
                }
                let reply = redacted(&target.redactor, target.adapter.read(status, &answer.body));
                match (class, &not_the_api) {
                    (_, Some(what)) => {
                        if target.circuit.is_open() {
                            return None;
                        }
                        // Tried again: what answered may be passing (a
                        // proxy's page), and a row is never recorded
                        // updated, or rejected, on its word.
                        let reply = Reply {
                            error: Some(format!(
                                "HTTP {status}, but not an answer of the vendor's API: {}; {}",
                                target.redactor.text(&what.to_string()),
                                what.fix()
                            )),
                            ..Reply::default()
                        };
                        (None, (Some(status), reply))
                    }
                    (Class::Success, None) => {
                        return Some(Sent {
                            outcome: Outcome::Updated,
                            http_status: Some(status),
                            attempts,
                            reply,
                        });
                    }
                    (Class::Final, None) => {
                        return Some(Sent {
                            outcome: Outcome::Rejected,
                            http_status: Some(status),
                            attempts,
                            reply,
                        });
                    }
                    (Class::Credentials, None) => {
                        if target.circuit.is_open() {
                            return None;
                        }
                        let mut reply = reply;
                        let said = reply
                            .error
                            .take()
                            .unwrap_or_else(|| format!("HTTP {status}"));
                        reply.error = Some(format!(
                            "credentials refused: {said}; check {}",
                            target.credentials
                        ));
                        (None, (Some(status), reply))
                    }
                    (Class::Transient, None) => (answer.retry_after, (Some(status), reply)),
                }
            }
            Err((SendError::Blocked(message), _)) => {
                // No retry can fix a certificate, proxy or name problem:
                // stop the vendor now; its rows stay pending.
                target.limit.release(slot, Signal::Ignore);
                target.stop(message);
                return None;
            }
            Err((SendError::Unsendable(_), e)) => {
                // The request could not be built from this row: another
                // attempt would build the same, and the vendor is not at fault.
                target.limit.release(slot, Signal::Ignore);
                return Some(Sent {
                    outcome: Outcome::Invalid,
                    http_status: None,
                    attempts: attempts - 1,
                    reply: Reply {
                        error: Some(format!("{e}; fix the row")),
                        ..Reply::default()
                    },
                });
            }
            Err((failure, e)) => {
                target.limit.release(
                    slot,
                    if failure.is_timeout() {
                        Signal::Backpressure
                    } else {
                        Signal::Ignore
                    },
                );
                if target.circuit.record(Trip::Unreachable, Instant::now()) {
                    let trips = crate::limits::circuit::UNREACHABLE_TRIPS;
                    // A timeout is not "could not be reached": the vendor may
                    // accept every connection and answer too slowly.
                    target.stop(if let SendError::Timeout(limit) = failure {
                        format!(
                            "[vendors.{}] did not answer in time: {trips} requests in a row got \
                             no answer, the last none within `request_timeout` ({}, set in \
                             [run]). Fix: if the vendor is slow rather than down, raise \
                             `request_timeout`; otherwise check that it is up. Its rows stay \
                             pending: run the same command again to resume.",
                            target.name,
                            humantime::format_duration(limit)
                        )
                    } else {
                        format!(
                            "the vendor could not be reached {trips} times in a row (last: {e}); \
                             its rows stay pending: run the same command again once it can be \
                             reached"
                        )
                    });
                    return None;
                }
                let reply = Reply {
                    error: Some(e),
                    ..Reply::default()
                };
                (None, (None, reply))
            }
        };
        if attempts >= target.retry.max_attempts {
            if let Some(why) = unreachable {
                // Nothing is wrong with the row: the vendor cannot be reached.
                target.stop(format!(
                    "[vendors.{}] {why}, on all {attempts} attempts of a row. Fix: {}.",
                    target.name,
                    client.context(target.id).map_or_else(
                        || "check `base_url` and that the vendor is up".to_string(),
                        crate::net::classify::unreachable_fix
                    ),
                ));
                return None;
            }
            if let (Some(status), Some(since)) = (last.0, unavailable_since)
                && is_refused_for_now(status)
                && target.circuit.unavailable_throughout(since)
            {
                // Not this row's fault: nothing but 502/503/504 (or 429)
                // from the vendor, to any request, for all of this row's
                // attempts.
                let (what, meaning, when) = if status == 429 {
                    (
                        "429 (too many requests)",
                        "it takes no more for now (a quota used up, or a rate limit far under \
                         the pace kept; `rate_limit` in its table keeps under a known one)",
                        "later, once its quota or limit allows",
                    )
                } else {
                    (
                        "502, 503 or 504",
                        "it is unavailable (down, or behind a gateway that cannot reach it)",
                        "once it is back",
                    )
                };
                target.stop(format!(
                    "[vendors.{}] answered nothing but {what} (last: HTTP {status}) to every \
                     request for {}, through all {attempts} attempts of a row: {meaning}. Its \
                     rows stay pending: run the same command again {when}.",
                    target.name,
                    crate::latency::human(since.elapsed()),
                ));
                return None;
            }
            let (http_status, mut reply) = last;
            let why = reply.error.take().unwrap_or_else(|| "no answer".into());
            reply.error = Some(format!("gave up after {attempts} attempts: {why}"));
            return Some(Sent {
                outcome: Outcome::Failed,
                http_status,
                attempts,
                reply,
            });
        }
        let delay = backoff.next_delay(retry_after);
        tracing::debug!(
            vendor = %target.name,
            key = %crate::input::shown(&change.key.text),
            attempt = attempts,
            "retrying in {} after {}",
            crate::latency::human(delay),
            match (&last.0, &last.1.error) {
                (_, Some(e)) => e.clone(),
                (Some(status), None) => format!("HTTP {status}"),
                (None, None) => "no answer".to_string(),
            }
        );
        vt.retrying.fetch_add(1, Ordering::Relaxed);
        let slept = tokio::select! {
            _ = tokio::time::sleep(delay) => true,
            _ = stop.cancelled() => false,
            _ = target.circuit.opened() => false,
        };
        vt.retrying.fetch_sub(1, Ordering::Relaxed);
        if !slept {
            return None;
        }
    }
}

/// An answer that is not the API's to the change sent.
enum Foreign {
    /// A success whose body is a web page, text or binary data.
    Page(NotJson),
    /// A redirect, to this address.
    Moved(String),
}

impl Foreign {
    /// What to do about it, for the row's error and the stop.
    fn fix(&self) -> &'static str {
        match self {
            Foreign::Page(_) => {
                "check that `base_url` is the API's address, not a web site's, and what any \
                 proxy in between answers"
            }
            Foreign::Moved(_) => {
                "if the vendor's API has moved there, set `base_url` to its new address \
                 (redirects are not followed: a change goes only where the config says)"
            }
        }
    }
}

impl std::fmt::Display for Foreign {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Foreign::Page(page) => page.fmt(f),
            Foreign::Moved(to) => write!(f, "a redirect to {to}"),
        }
    }
}
