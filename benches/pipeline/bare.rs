//! The bare client: a plain reqwest loop.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

use crate::Res;
use crate::inputs::{Planned, plan};
use crate::run::Job;
use crate::sandbox::{SandboxProc, check_all_ok, first_request, steady_in_flight};
use crate::settings::Settings;

pub(crate) struct BareRun {
    pub(crate) elapsed: Duration,
    pub(crate) ok: u64,
    pub(crate) other: u64,
}

impl BareRun {
    pub(crate) fn rate(&self) -> f64 {
        (self.ok + self.other) as f64 / self.elapsed.as_secs_f64()
    }
}

pub(crate) fn bare_client(
    rt: &Runtime,
    planned: &Arc<Planned>,
    concurrency: usize,
) -> Res<BareRun> {
    let planned = Arc::clone(planned);
    rt.block_on(async move {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(concurrency)
            .tcp_nodelay(true)
            .user_agent(invitesync::net::transport::USER_AGENT_VALUE)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|e| e.to_string())?;
        // A digest vendor's challenge is learned once, as the pipeline does.
        for (vendor, session) in planned.digests.iter().enumerate() {
            let Some(session) = session else { continue };
            let Some(change) = planned
                .changes
                .iter()
                .find(|c| usize::from(c.vendor) == vendor)
            else {
                continue;
            };
            let req = planned.adapters[vendor].request(change);
            let req = reqwest::Request::try_from(req).map_err(|e| e.to_string())?;
            let resp = http.execute(req).await.map_err(|e| e.to_string())?;
            let challenges: Vec<String> = resp
                .headers()
                .get_all(http::header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_string))
                .collect();
            let _ = resp.bytes().await;
            session.on_challenge(challenges.iter().map(String::as_str))?;
        }
        drive(planned, concurrency, http).await
    })
}

/// A client the bare loop can send through: the request as the adapter
/// built it, the answer's status once its body is read.
trait Sender: Clone + Send + Sync + 'static {
    fn send(
        &self,
        req: http::Request<bytes::Bytes>,
    ) -> impl Future<Output = Result<http::StatusCode, String>> + Send;
}

impl Sender for reqwest::Client {
    async fn send(&self, req: http::Request<bytes::Bytes>) -> Result<http::StatusCode, String> {
        let req = reqwest::Request::try_from(req).map_err(|e| e.to_string())?;
        let resp = self.execute(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        resp.bytes().await.map_err(|e| e.to_string())?;
        Ok(status)
    }
}

impl Sender for invitesync::net::transport::Transport {
    async fn send(&self, req: http::Request<bytes::Bytes>) -> Result<http::StatusCode, String> {
        use http_body_util::BodyExt as _;
        self.send(req, |resp| async move {
            let status = resp.status();
            resp.into_body().collect().await.map(|_| status)
        })
        .await
        .map_err(|e| e.to_string())
    }
}

/// `concurrency` tasks, each taking the next row and sending it through
/// `http` until none is left (a digest vendor's rows with the session's
/// next `Authorization`).
async fn drive<S: Sender>(planned: Arc<Planned>, concurrency: usize, http: S) -> Res<BareRun> {
    let next = Arc::new(AtomicUsize::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let other = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (planned, http, next, ok, other) = (
            Arc::clone(&planned),
            http.clone(),
            Arc::clone(&next),
            Arc::clone(&ok),
            Arc::clone(&other),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(change) = planned.changes.get(i) else {
                    return Ok::<(), String>(());
                };
                let vendor = usize::from(change.vendor);
                let mut req = planned.adapters[vendor].request(change);
                if let Some(session) = &planned.digests[vendor] {
                    let uri = req.uri().path_and_query().map_or("/", |p| p.as_str());
                    if let Some(a) = session.authorization(req.method().as_str(), uri)
                        && let Ok(v) = http::HeaderValue::from_str(&a)
                    {
                        req.headers_mut().insert(http::header::AUTHORIZATION, v);
                    }
                }
                if http.send(req).await?.is_success() {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    other.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(BareRun {
        elapsed: start.elapsed(),
        ok: ok.load(Ordering::Relaxed),
        other: other.load(Ordering::Relaxed),
    })
}

/// The run's own HTTP client alone (`net::transport`), in the bare loop's
/// place: what a request costs before anything else the run does. Plain
/// HTTP to the sandbox, no digest vendor.
pub(crate) fn transport_loop(
    rt: &Runtime,
    planned: &Arc<Planned>,
    concurrency: usize,
) -> Res<BareRun> {
    use invitesync::net::transport::{Settings, Transport};
    let planned = Arc::clone(planned);
    rt.block_on(async move {
        let http = Transport::new(Settings {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            pool: concurrency,
            tls: None,
            proxy: None,
        });
        drive(planned, concurrency, http).await
    })
}

/// The CPU per row of [`transport_loop`], the least of `rounds`.
pub(crate) fn transport_cpu_per_row(
    rt: &Runtime,
    sandbox: &Arc<SandboxProc>,
    planned: &Arc<Planned>,
    concurrency: usize,
    rounds: usize,
) -> Res<Duration> {
    let n = planned.changes.len();
    let mut best = Duration::MAX;
    for _ in 0..rounds {
        rt.block_on(sandbox.reset())?;
        let own = own_cpu();
        let t = transport_loop(rt, planned, concurrency)?;
        if t.ok != n as u64 {
            return Err(format!(
                "the transport loop had {} of {n} accepted ({} other answers)",
                t.ok, t.other
            ));
        }
        best = best.min(own_cpu().saturating_sub(own) / n.max(1) as u32);
    }
    Ok(best)
}

pub(crate) fn bare_client_once(args: &[String]) -> i32 {
    let [config, input, concurrency] = args else {
        eprintln!("usage: --bare-client CONFIG INPUT CONCURRENCY");
        return 2;
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let result = (|| {
        let concurrency: usize = concurrency.parse().map_err(|_| "concurrency: a number")?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let planned = Arc::new(plan(Path::new(config), Path::new(input))?);
        bare_client(&rt, &planned, concurrency)
    })();
    match result {
        Ok(b) => {
            println!(
                "{} accepted, {} otherwise, {:.0} req/s",
                b.ok,
                b.other,
                b.rate()
            );
            0
        }
        Err(e) => {
            eprintln!("bench: {e}");
            1
        }
    }
}

/// Alternating rounds of the bare client and the pipeline on the same rows;
/// the best throughput of each, and the median of each round's own ratio.
pub(crate) fn side_by_side(
    s: &Settings,
    rt: &Runtime,
    sandbox: &Arc<SandboxProc>,
    planned: &Arc<Planned>,
    job: &Job<'_>,
    concurrency: usize,
    rounds: usize,
) -> Res<SideBySide> {
    let n = planned.changes.len();
    let (mut bare_best, mut pipe_best) = (0.0f64, 0.0f64);
    let mut cpu_per_row = Duration::MAX;
    let mut bare_cpu_per_row = Duration::MAX;
    let mut sandbox_cpu_per_row = Duration::MAX;
    let mut paired = Vec::with_capacity(rounds);
    let per_row = |d: Duration| d / n.max(1) as u32;
    for round in 1..=rounds {
        rt.block_on(sandbox.reset())?;
        let (own, served) = (own_cpu(), sandbox.cpu());
        let b = bare_client(rt, planned, concurrency)?;
        bare_cpu_per_row = bare_cpu_per_row.min(per_row(own_cpu().saturating_sub(own)));
        sandbox_cpu_per_row =
            sandbox_cpu_per_row.min(per_row(sandbox.cpu().saturating_sub(served)));
        if b.ok != n as u64 {
            return Err(format!(
                "the bare client had {} of {n} accepted ({} other answers)",
                b.ok, b.other
            ));
        }
        let (p, samples, _) = sandbox.watch(s, rt, job, Duration::from_millis(20))?;
        check_all_ok(rt, sandbox, n)?;
        let p_rate = n as f64 / p.elapsed.as_secs_f64();
        let first = first_request(&samples).unwrap_or_default();
        let last = samples
            .iter()
            .find(|x| x.ok >= n as u64)
            .map_or(p.elapsed, |x| x.at);
        paired.push(p_rate / b.rate());
        println!(
            "  round {round}: bare {:.0} req/s ({:.2} s), pipeline {p_rate:.0} req/s ({:.2} s: first request at {:.2} s, last answer by {:.2} s{}; peak RSS {} MiB): {:.2}",
            b.rate(),
            b.elapsed.as_secs_f64(),
            p.elapsed.as_secs_f64(),
            first.as_secs_f64(),
            last.as_secs_f64(),
            match steady_in_flight(&samples) {
                0 => String::new(),
                n => format!(", {n} in flight"),
            },
            p.peak_rss_kib / 1024,
            p_rate / b.rate()
        );
        bare_best = bare_best.max(b.rate());
        pipe_best = pipe_best.max(p_rate);
        cpu_per_row = cpu_per_row.min(per_row(p.cpu));
    }
    paired.sort_by(f64::total_cmp);
    let mid = paired.len() / 2;
    let ratio = match paired.len() {
        0 => 0.0,
        n if n % 2 == 1 => paired[mid],
        _ => (paired[mid - 1] + paired[mid]) / 2.0,
    };
    Ok(SideBySide {
        bare: bare_best,
        pipeline: pipe_best,
        ratio,
        cpu_per_row,
        bare_cpu_per_row,
        sandbox_cpu_per_row,
    })
}

/// This process's CPU time so far (user and system). While the bare loop
/// runs, it is the only thing this process does.
fn own_cpu() -> Duration {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).map_or(
        Duration::ZERO,
        |u| {
            let us = |t: nix::sys::time::TimeVal| {
                Duration::from_secs(t.tv_sec().max(0) as u64)
                    + Duration::from_micros(t.tv_usec().max(0) as u64)
            };
            us(u.user_time()) + us(u.system_time())
        },
    )
}

/// The best of the rounds, each side's, and the median of their own ratios.
pub(crate) struct SideBySide {
    /// Requests per second.
    pub(crate) bare: f64,
    pub(crate) pipeline: f64,
    /// The median over the rounds of pipeline / bare within a round: the two
    /// run seconds apart, while the machine's speed drifts over minutes, so
    /// a round's ratio is not the luck of one side's best moment.
    pub(crate) ratio: f64,
    /// The invitesync process's CPU time (user and system) per row.
    pub(crate) cpu_per_row: Duration,
    /// The bare loop's, side by side.
    pub(crate) bare_cpu_per_row: Duration,
    /// The sandbox's, serving the bare loop: what every row costs the
    /// vendor's side of the two cores whoever sends it.
    pub(crate) sandbox_cpu_per_row: Duration,
}
