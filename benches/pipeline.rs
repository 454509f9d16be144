//! `make bench`: the performance targets of DESIGN §10.
//!
//! Every figure is a ratio of two things measured side by side in this one
//! run, because the machines are shared and an absolute time means little.
//! The sandbox always runs as its own process (`invitesync sandbox
//! --stateless`), so that client and server never share a runtime; the
//! pipeline is the real binary (`invitesync run`), timed from spawn to exit;
//! the bare client is a plain reqwest loop in this process that sends the
//! very requests the pipeline sends (built by the same vendor adapters).
//!
//! ```text
//! cargo bench --bench pipeline -- [--bin target/release/invitesync] [--quick] [--only a,b]
//! ```
//!
//! It prints a table (scenario, measured, target, pass or miss) at the end
//! and writes it, with the details, to `target/bench/report.md`. Everything
//! talks to 127.0.0.1 only.

// A benchmark prints its report to the terminal that started it; the
// product's own output goes through `invitesync::stdio` instead.
#![allow(clippy::disallowed_macros)]

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use invitesync::change::{Change, InviteKey};
use invitesync::config::Config;
use invitesync::digest::DigestSession;
use invitesync::input::Reader;
use invitesync::plan::Router;
use invitesync::sandbox::{SandboxOptions, StatsSnapshot};
use invitesync::vendors::Adapter;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

type Res<T> = Result<T, String>;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // Re-executed as a wrapper that reports the peak RSS of its one child.
    if args.get(1).map(String::as_str) == Some(PEAK_RSS_FLAG) {
        std::process::exit(peak_rss_wrapper(&args[2..]));
    }
    // `--bare-client CONFIG INPUT CONCURRENCY`: only the bare client, once,
    // for profiling it on its own (e.g. under valgrind --tool=callgrind).
    if args.get(1).map(String::as_str) == Some("--bare-client") {
        std::process::exit(bare_client_once(&args[2..]));
    }
    let settings = match Settings::from_args(&args[1..]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(2);
        }
    };
    let code = match run_all(&settings) {
        Ok(report) => {
            let strict = std::env::var("BENCH_STRICT").is_ok_and(|v| !v.is_empty() && v != "0");
            if strict && report.rows.iter().any(|r| r.pass == Some(false)) {
                1
            } else {
                0
            }
        }
        Err(e) => {
            eprintln!("bench: {e}");
            1
        }
    };
    std::process::exit(code);
}

// ---------------------------------------------------------------------------
// Settings and sizes

struct Settings {
    bin: PathBuf,
    quick: bool,
    only: Option<Vec<String>>,
    out: PathBuf,
    work: PathBuf,
    sizes: Sizes,
}

/// How much each scenario does; `--quick` (or `BENCH_QUICK=1`) shrinks it.
struct Sizes {
    overhead_rows: usize,
    overhead_rounds: usize,
    mixed_rows: usize,
    mixed_rounds: usize,
    latency_rows: usize,
    latency_rounds: usize,
    adaptive_rows: usize,
    adaptive_fixed: Vec<usize>,
    rate_rows: usize,
    memory_small: usize,
    memory_large: usize,
    writer_rows: usize,
    writer_rounds: usize,
}

const SCENARIOS: [&str; 8] = [
    "overhead",
    "curl",
    "latency",
    "adaptive",
    "ratelimit",
    "memory",
    "resume",
    "checkpoint",
];

impl Settings {
    fn from_args(args: &[String]) -> Res<Settings> {
        let mut bin = PathBuf::from("target/release/invitesync");
        let mut quick = std::env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        let mut only = None;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--bin" => bin = PathBuf::from(it.next().ok_or("--bin needs a path")?),
                "--quick" => quick = true,
                "--only" => {
                    let list: Vec<String> = it
                        .next()
                        .ok_or("--only needs a list")?
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect();
                    for s in &list {
                        if !SCENARIOS.contains(&s.as_str()) {
                            return Err(format!(
                                "unknown scenario `{s}`; one of {}",
                                SCENARIOS.join(", ")
                            ));
                        }
                    }
                    only = Some(list);
                }
                // cargo bench passes --bench; a filter may follow. Ignore both.
                _ => {}
            }
        }
        if !bin.exists() {
            return Err(format!(
                "{} does not exist: build it first (cargo build --release)",
                bin.display()
            ));
        }
        let bin = std::fs::canonicalize(&bin).map_err(|e| e.to_string())?;
        let sizes = if quick {
            Sizes {
                overhead_rows: 20_000,
                overhead_rounds: 2,
                mixed_rows: 20_000,
                mixed_rounds: 1,
                latency_rows: 5_000,
                latency_rounds: 1,
                adaptive_rows: 4_000,
                adaptive_fixed: vec![24, 48],
                rate_rows: 3_000,
                memory_small: 10_000,
                memory_large: 100_000,
                writer_rows: 100_000,
                writer_rounds: 2,
            }
        } else {
            Sizes {
                overhead_rows: 100_000,
                overhead_rounds: 3,
                mixed_rows: 100_000,
                mixed_rounds: 2,
                latency_rows: 20_000,
                latency_rounds: 1,
                adaptive_rows: 12_000,
                adaptive_fixed: vec![16, 24, 32, 48],
                rate_rows: 4_000,
                memory_small: 10_000,
                memory_large: 1_000_000,
                writer_rows: 200_000,
                writer_rounds: 3,
            }
        };
        let out = PathBuf::from("target/bench");
        let work = out.join("work");
        Ok(Settings {
            bin,
            quick,
            only,
            out,
            work,
            sizes,
        })
    }

    fn wants(&self, scenario: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|l| l.iter().any(|s| s == scenario))
    }
}

// ---------------------------------------------------------------------------
// The report

struct Row {
    scenario: String,
    measured: String,
    target: String,
    /// `None`: not measured (a tool is missing, or the scenario failed).
    pass: Option<bool>,
}

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    details: Vec<String>,
}

impl Report {
    fn row(&mut self, scenario: &str, measured: String, target: &str, pass: Option<bool>) {
        let verdict = match pass {
            Some(true) => "pass",
            Some(false) => "MISS",
            None => "n/a",
        };
        println!("  => {scenario}: {measured} (target {target}): {verdict}");
        self.rows.push(Row {
            scenario: scenario.to_string(),
            measured,
            target: target.to_string(),
            pass,
        });
    }

    fn detail(&mut self, line: String) {
        println!("     {line}");
        self.details.push(line);
    }

    fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "| scenario | measured | target | result |");
        let _ = writeln!(s, "|---|---|---|---|");
        for r in &self.rows {
            let verdict = match r.pass {
                Some(true) => "pass",
                Some(false) => "**miss**",
                None => "n/a",
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                r.scenario, r.measured, r.target, verdict
            );
        }
        s
    }
}

fn run_all(s: &Settings) -> Res<Report> {
    std::fs::create_dir_all(&s.out).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&s.work);
    std::fs::create_dir_all(&s.work).map_err(|e| e.to_string())?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut report = Report::default();
    println!(
        "invitesync bench ({} mode, {} cores); the sandbox runs as its own process on 127.0.0.1",
        if s.quick { "quick" } else { "full" },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let steps: [(&str, ScenarioFn); 6] = [
        ("overhead", overhead_and_curl),
        ("latency", latency_bound),
        ("adaptive", adaptive),
        ("ratelimit", rate_limit),
        ("memory", memory_and_resume),
        ("checkpoint", checkpoint),
    ];
    for (name, step) in steps {
        let wanted = match name {
            "overhead" => s.wants("overhead") || s.wants("curl"),
            "memory" => s.wants("memory") || s.wants("resume"),
            other => s.wants(other),
        };
        if !wanted {
            continue;
        }
        let t = Instant::now();
        if let Err(e) = step(s, &rt, &mut report) {
            println!("  !! {name}: {e}");
            report.details.push(format!("{name}: failed: {e}"));
            report.row(name, format!("failed: {e}"), "-", None);
        }
        println!("  ({name} took {:.0} s)", t.elapsed().as_secs_f64());
    }
    let table = report.table();
    println!("\n{table}");
    let total = started.elapsed();
    println!("bench took {:.0} s", total.as_secs_f64());
    let mut md = String::new();
    let _ = writeln!(md, "# invitesync benchmark report\n");
    let _ = writeln!(
        md,
        "`{}make bench` ({} mode), {} cores, {:.0} s in all. Every figure is a ratio of two \
         things measured side by side in this run.\n",
        if s.quick { "BENCH_QUICK=1 " } else { "" },
        if s.quick { "quick" } else { "full" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        total.as_secs_f64()
    );
    md.push_str(&table);
    md.push_str("\n## Details\n\n");
    for d in &report.details {
        let _ = writeln!(md, "- {d}");
    }
    let path = s.out.join("report.md");
    std::fs::write(&path, md).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("report: {}", path.display());
    Ok(report)
}

type ScenarioFn = fn(&Settings, &Runtime, &mut Report) -> Res<()>;

// ---------------------------------------------------------------------------
// The sandbox as a process

struct SandboxProc {
    child: std::process::Child,
    base: String,
    admin: reqwest::Client,
}

impl SandboxProc {
    fn start(s: &Settings, name: &str, faults: &[&str]) -> Res<SandboxProc> {
        let log =
            File::create(s.work.join(format!("sandbox-{name}.log"))).map_err(|e| e.to_string())?;
        let mut child = Command::new(&s.bin)
            .args(["sandbox", "--port", "0", "--stateless"])
            .args(faults)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start the sandbox: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout);
        let mut first = String::new();
        lines
            .read_line(&mut first)
            .map_err(|e| format!("sandbox: {e}"))?;
        let base = first
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))
            .ok_or_else(|| format!("the sandbox did not say where it listens: {first:?}"))?
            .to_string();
        // Keep draining its stdout so that it never writes into a closed pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while lines.read_line(&mut sink).is_ok_and(|n| n > 0) {
                sink.clear();
            }
        });
        let admin = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(SandboxProc { child, base, admin })
    }

    async fn stats(&self) -> Res<StatsSnapshot> {
        let url = format!("{}/_sandbox/stats?invites=false", self.base);
        let body = self
            .admin
            .get(url)
            .send()
            .await
            .map_err(|e| format!("sandbox stats: {e}"))?
            .bytes()
            .await
            .map_err(|e| format!("sandbox stats: {e}"))?;
        serde_json::from_slice(&body).map_err(|e| format!("sandbox stats: {e}"))
    }

    async fn reset(&self) -> Res<()> {
        let url = format!("{}/_sandbox/reset-stats", self.base);
        self.admin
            .post(url)
            .send()
            .await
            .map_err(|e| format!("sandbox reset: {e}"))?;
        Ok(())
    }

    /// Starts polling the statistics every `every` until the token is cancelled.
    fn poll(
        self: &Arc<Self>,
        rt: &Runtime,
        origin: Instant,
        every: Duration,
    ) -> (CancellationToken, tokio::task::JoinHandle<Vec<Sample>>) {
        let stop = CancellationToken::new();
        let me = Arc::clone(self);
        let token = stop.clone();
        let task = rt.spawn(async move {
            let mut out = Vec::new();
            while !token.is_cancelled() {
                let asked = Instant::now();
                if let Ok(snap) = me.stats().await {
                    let answered = Instant::now();
                    let at = (asked - origin) + (answered - asked) / 2;
                    out.push(Sample::of(at, &snap));
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = token.cancelled() => {}
                }
            }
            if let Ok(snap) = me.stats().await {
                out.push(Sample::of(origin.elapsed(), &snap));
            }
            out
        });
        (stop, task)
    }
}

impl Drop for SandboxProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the sandbox had counted at a moment, all vendors together.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    at: Duration,
    requests: u64,
    ok: u64,
    throttled: u64,
    /// Requests the sandbox was handling at that moment.
    in_flight: u64,
}

impl Sample {
    fn of(at: Duration, snap: &StatsSnapshot) -> Sample {
        let mut s = Sample {
            at,
            ..Sample::default()
        };
        for v in snap.vendors.values() {
            s.requests += v.requests;
            s.in_flight += v.in_flight;
            for (code, n) in &v.statuses {
                if (200..300).contains(code) {
                    s.ok += n;
                }
                if *code == 429 {
                    s.throttled += n;
                }
            }
        }
        s
    }
}

/// Totals of a stats snapshot: (requests, 2xx, 429, other statuses).
fn totals(snap: &StatsSnapshot) -> (u64, u64, u64, u64) {
    let s = Sample::of(Duration::ZERO, snap);
    let answered: u64 = snap
        .vendors
        .values()
        .flat_map(|v| v.statuses.values())
        .sum();
    (s.requests, s.ok, s.throttled, answered - s.ok - s.throttled)
}

// ---------------------------------------------------------------------------
// Inputs and configs

const HEADER: &str =
    "vendor,scope,invite_id,email,first_name,last_name,sender_id,status,roles,note";
const GATE_STATUSES: [&str; 4] = ["pending", "sent", "accepted", "rejected"];
const OM_ROLES: [&str; 3] = [
    "ORG_MEMBER",
    "ORG_READ_ONLY",
    "ORG_GROUP_CREATOR;ORG_MEMBER",
];

/// `n` rows, one invite each: Securegate only, or the four vendors in turn.
fn write_input(path: &Path, n: usize, mixed: bool) -> Res<()> {
    let f = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    let io = |e: std::io::Error| e.to_string();
    writeln!(w, "{HEADER}").map_err(io)?;
    for i in 0..n {
        let which = if mixed { i % 4 } else { 0 };
        match which {
            0 => writeln!(
                w,
                "gate,evt-{:03},inv-{i:07},,,,,{},,",
                i % 200,
                GATE_STATUSES[i % 4]
            ),
            1 => writeln!(
                w,
                "hub,,{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x},,,,,{},,",
                i,
                i % 0xffff,
                i % 0xfff,
                (i / 7) % 0xfff,
                i * 7919,
                if i % 8 == 1 { "accepted" } else { "rejected" }
            ),
            2 => writeln!(
                w,
                "mighty,net-{},{},member{i}@example.com,First{},Last,,,,",
                i % 50,
                100_000 + i,
                i % 10
            ),
            _ => writeln!(
                w,
                "om,{:024x},,member{i}@example.com,,,,,{},",
                0x5f1a_2b3c_4d5e_6f7a_8b9c_0d00_u128 + (i % 8) as u128,
                OM_ROLES[i % 3]
            ),
        }
        .map_err(io)?;
    }
    w.flush().map_err(io)
}

/// A config for the four vendors on `base`, secrets in files beside it.
fn write_config(dir: &Path, name: &str, base: &str, concurrency: usize) -> Res<PathBuf> {
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets).map_err(|e| e.to_string())?;
    let c = SandboxOptions::default().credentials();
    for (file, value) in [
        ("mighty", c.mighty_token.as_str()),
        ("gate", c.securegate_api_key.as_str()),
        ("om-public", c.om_public_key.as_str()),
        ("om-private", c.om_private_key.as_str()),
        ("hub", c.ctrl_hub_token.as_str()),
    ] {
        std::fs::write(secrets.join(file), format!("{value}\n")).map_err(|e| e.to_string())?;
    }
    let text = format!(
        r#"[run]
concurrency = {concurrency}
request_timeout = "30s"

[vendors.gate]
kind = "securegate"
base_url = "{base}"
api_key = {{ file = "secrets/gate" }}

[vendors.hub]
kind = "ctrl_hub"
base_url = "{base}"
session_token = {{ file = "secrets/hub" }}

[vendors.mighty]
kind = "mighty_networks"
base_url = "{base}"
token = {{ file = "secrets/mighty" }}

[vendors.om]
kind = "ops_manager"
base_url = "{base}"
public_key = {{ file = "secrets/om-public" }}
private_key = {{ file = "secrets/om-private" }}
"#
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    Ok(path)
}

/// The requests of an input, built by the vendor adapters as the pipeline builds them.
struct Planned {
    adapters: Vec<Box<dyn Adapter>>,
    digests: Vec<Option<DigestSession>>,
    changes: Vec<Change>,
}

fn plan(config: &Path, input: &Path) -> Res<Planned> {
    let config = Config::load(config, true).map_err(|e| e.0)?;
    let mut adapters = Vec::new();
    for (vc, settings) in &config.vendors {
        adapters.push(invitesync::vendors::build(vc, settings.clone()).map_err(|e| e.0)?);
    }
    let names: Vec<String> = config.vendors.iter().map(|(v, _)| v.name.clone()).collect();
    let mut changes = Vec::new();
    {
        let router = Router::new(
            names
                .iter()
                .map(String::as_str)
                .zip(adapters.iter().map(|a| &**a)),
        );
        let reader = Reader::open(input).map_err(|e| e.0)?;
        let header = reader.header().clone();
        for row in reader {
            let change = router
                .plan(&header, &row)
                .map_err(|p| format!("row {}: {}", row.line, p.invalid))?;
            changes.push(change);
        }
    }
    let digests = adapters
        .iter()
        .map(|a| {
            a.digest_credentials()
                .map(|(u, p)| DigestSession::new(u.clone(), p.clone()))
        })
        .collect();
    Ok(Planned {
        adapters,
        digests,
        changes,
    })
}

// ---------------------------------------------------------------------------
// The bare client: a plain reqwest loop

struct BareRun {
    elapsed: Duration,
    ok: u64,
    other: u64,
}

impl BareRun {
    fn rate(&self) -> f64 {
        (self.ok + self.other) as f64 / self.elapsed.as_secs_f64()
    }
}

fn bare_client(rt: &Runtime, planned: &Arc<Planned>, concurrency: usize) -> Res<BareRun> {
    let planned = Arc::clone(planned);
    rt.block_on(async move {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(concurrency)
            .tcp_nodelay(true)
            .user_agent(concat!("invitesync/", env!("CARGO_PKG_VERSION")))
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
                    let req = reqwest::Request::try_from(req).map_err(|e| e.to_string())?;
                    let resp = http.execute(req).await.map_err(|e| e.to_string())?;
                    let status = resp.status();
                    resp.bytes().await.map_err(|e| e.to_string())?;
                    if status.is_success() {
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
    })
}

fn bare_client_once(args: &[String]) -> i32 {
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

// ---------------------------------------------------------------------------
// The pipeline: `invitesync run`, wrapped to learn its peak RSS

const PEAK_RSS_FLAG: &str = "--peak-rss-of";

/// `pipeline --peak-rss-of SECS PROGRAM ARGS...`: runs the program (killing it
/// after SECS), then prints `EXIT_CODE PEAK_RSS_KIB`. This process has no
/// other child, so RUSAGE_CHILDREN's maximum is the program's own.
fn peak_rss_wrapper(args: &[String]) -> i32 {
    let (Some(secs), Some(program)) = (args.first(), args.get(1)) else {
        eprintln!("usage: {PEAK_RSS_FLAG} SECS PROGRAM ARGS...");
        return 2;
    };
    let secs: u64 = secs.parse().unwrap_or(600);
    let mut child = match Command::new(program)
        .args(&args[2..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot start {program}: {e}");
            return 2;
        }
    };
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchdog = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(secs);
            while !done.load(Ordering::Acquire) {
                if Instant::now() >= deadline {
                    eprintln!("bench: killed after {secs} s");
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let status = child.wait();
    done.store(true, Ordering::Release);
    let _ = watchdog.join();
    let code = match status {
        Ok(s) => exit_code(s),
        Err(_) => -1,
    };
    let rss = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .map_or(0, |u| u.max_rss());
    println!("{code} {rss}");
    0
}

fn exit_code(s: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
}

struct PipelineRun {
    elapsed: Duration,
    code: i32,
    peak_rss_kib: u64,
}

struct Job<'a> {
    input: &'a Path,
    config: &'a Path,
    state: &'a Path,
    results: &'a Path,
    args: &'a [&'a str],
    /// Start afresh: remove the state file first.
    fresh: bool,
}

fn run_pipeline(s: &Settings, job: &Job<'_>) -> Res<PipelineRun> {
    if job.fresh {
        for suffix in ["", "-wal", "-shm", ".lock"] {
            let mut p = job.state.as_os_str().to_owned();
            p.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
    }
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let log_path = s.work.join("run.log");
    let log = File::options()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    let out = Command::new(me)
        .arg(PEAK_RSS_FLAG)
        .arg("900")
        .arg(&s.bin)
        .arg("run")
        .arg(job.input)
        .arg("--config")
        .arg(job.config)
        .arg("--state")
        .arg(job.state)
        .arg("--results")
        .arg(job.results)
        .arg("--quiet")
        .args(job.args)
        .stdin(Stdio::null())
        .stderr(log)
        .output()
        .map_err(|e| format!("cannot run the pipeline: {e}"))?;
    let elapsed = start.elapsed();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace();
    let code: i32 = words.next().and_then(|w| w.parse().ok()).unwrap_or(-1);
    let peak_rss_kib: u64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
    if code != 0 {
        return Err(format!(
            "invitesync run exited with {code} (see {})",
            log_path.display()
        ));
    }
    Ok(PipelineRun {
        elapsed,
        code,
        peak_rss_kib,
    })
}

// ---------------------------------------------------------------------------
// Scenario 1 and 2: overhead against a bare client, and against curl

fn overhead_and_curl(s: &Settings, rt: &Runtime, report: &mut Report) -> Res<()> {
    let n = s.sizes.overhead_rows;
    let concurrency = 64;
    println!("\n== overhead: {n} Securegate rows, concurrency {concurrency}, zero latency");
    let sandbox = Arc::new(SandboxProc::start(s, "overhead", &[])?);
    let dir = s.work.join("overhead");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let config = write_config(&dir, "config", &sandbox.base, concurrency)?;
    let input = dir.join("gate.csv");
    write_input(&input, n, false)?;
    let planned = Arc::new(plan(&config, &input)?);
    let state = dir.join("state.db");
    let results = dir.join("results.csv");
    let job = Job {
        input: &input,
        config: &config,
        state: &state,
        results: &results,
        args: &["--concurrency", "64", "--fixed-concurrency"],
        fresh: true,
    };
    let mut pipeline_best = 0.0f64;
    if s.wants("overhead") {
        let (bare_best, pipe_best) = side_by_side(
            s,
            rt,
            &sandbox,
            &planned,
            &job,
            concurrency,
            s.sizes.overhead_rounds,
        )?;
        pipeline_best = pipe_best;
        let ratio = pipe_best / bare_best;
        report.detail(format!(
            "overhead (Securegate, {n} rows, c={concurrency}, best of {} alternating rounds): pipeline {pipe_best:.0} req/s, bare reqwest loop {bare_best:.0} req/s",
            s.sizes.overhead_rounds
        ));
        report.row(
            "overhead: pipeline / bare client (Securegate)",
            format!("{ratio:.2} ({pipe_best:.0} vs {bare_best:.0} req/s)"),
            ">= 0.90",
            Some(ratio >= 0.90),
        );

        // The four vendors together, Ops Manager's digest included.
        let m = s.sizes.mixed_rows;
        println!("\n== overhead, mixed: {m} rows over the four vendors");
        let mixed_input = dir.join("mixed.csv");
        write_input(&mixed_input, m, true)?;
        let mixed_planned = Arc::new(plan(&config, &mixed_input)?);
        let mixed_job = Job {
            input: &mixed_input,
            ..job
        };
        let (bare_m, pipe_m) = side_by_side(
            s,
            rt,
            &sandbox,
            &mixed_planned,
            &mixed_job,
            concurrency,
            s.sizes.mixed_rounds,
        )?;
        let ratio = pipe_m / bare_m;
        report.detail(format!(
            "overhead (four vendors, {m} rows, c={concurrency}, best of {}): pipeline {pipe_m:.0} req/s, bare {bare_m:.0} req/s",
            s.sizes.mixed_rounds
        ));
        report.row(
            "overhead: pipeline / bare client (four vendors)",
            format!("{ratio:.2} ({pipe_m:.0} vs {bare_m:.0} req/s)"),
            ">= 0.90",
            Some(ratio >= 0.90),
        );
    }
    if s.wants("curl") {
        println!("\n== against curl --parallel --parallel-max 64: {n} Securegate rows");
        match curl_version() {
            Err(why) => {
                report.detail(format!("curl: not measured: {why}"));
                report.row(
                    "vs curl: pipeline / curl --parallel",
                    format!("not measured: {why}"),
                    ">= 3x",
                    None,
                );
            }
            Ok(version) => {
                let curl_config = dir.join("curl.cfg");
                write_curl_config(&planned, &curl_config)?;
                rt.block_on(sandbox.reset())?;
                let t = Instant::now();
                let status = Command::new("curl")
                    .args([
                        "--parallel",
                        "--parallel-max",
                        "64",
                        "--silent",
                        "--show-error",
                    ])
                    .arg("--config")
                    .arg(&curl_config)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .status()
                    .map_err(|e| format!("curl: {e}"))?;
                let curl_elapsed = t.elapsed();
                let snap = rt.block_on(sandbox.stats())?;
                let (_, ok, _, _) = totals(&snap);
                if !status.success() || ok != n as u64 {
                    return Err(format!(
                        "curl exited with {status} after {ok} of {n} accepted requests"
                    ));
                }
                let curl_rate = n as f64 / curl_elapsed.as_secs_f64();
                // The pipeline again, right after curl, unless just measured.
                if pipeline_best == 0.0 {
                    rt.block_on(sandbox.reset())?;
                    let p = run_pipeline(s, &job)?;
                    check_all_ok(rt, &sandbox, n)?;
                    pipeline_best = n as f64 / p.elapsed.as_secs_f64();
                }
                let ratio = pipeline_best / curl_rate;
                report.detail(format!(
                    "curl ({version}): {curl_rate:.0} req/s over {n} rows from a generated config (one url/request/header/data block per row, `next` between); pipeline {pipeline_best:.0} req/s"
                ));
                report.row(
                    "vs curl: pipeline / curl --parallel-max 64",
                    format!("{ratio:.1}x ({pipeline_best:.0} vs {curl_rate:.0} req/s)"),
                    ">= 3x",
                    Some(ratio >= 3.0),
                );
            }
        }
    }
    Ok(())
}

/// Alternating rounds of the bare client and the pipeline on the same rows;
/// the best throughput of each.
fn side_by_side(
    s: &Settings,
    rt: &Runtime,
    sandbox: &Arc<SandboxProc>,
    planned: &Arc<Planned>,
    job: &Job<'_>,
    concurrency: usize,
    rounds: usize,
) -> Res<(f64, f64)> {
    let n = planned.changes.len();
    let (mut bare_best, mut pipe_best) = (0.0f64, 0.0f64);
    for round in 1..=rounds {
        rt.block_on(sandbox.reset())?;
        let b = bare_client(rt, planned, concurrency)?;
        if b.ok != n as u64 {
            return Err(format!(
                "the bare client had {} of {n} accepted ({} other answers)",
                b.ok, b.other
            ));
        }
        rt.block_on(sandbox.reset())?;
        let origin = Instant::now();
        let (stop, task) = sandbox.poll(rt, origin, Duration::from_millis(20));
        let p = run_pipeline(s, job);
        stop.cancel();
        let samples = rt.block_on(task).map_err(|e| e.to_string())?;
        let p = p?;
        check_all_ok(rt, sandbox, n)?;
        let p_rate = n as f64 / p.elapsed.as_secs_f64();
        let first = first_request(&samples).unwrap_or_default();
        let last = samples
            .iter()
            .find(|x| x.ok >= n as u64)
            .map_or(p.elapsed, |x| x.at);
        println!(
            "  round {round}: bare {:.0} req/s ({:.2} s), pipeline {p_rate:.0} req/s ({:.2} s: first request at {:.2} s, last answer by {:.2} s{}; peak RSS {} MiB)",
            b.rate(),
            b.elapsed.as_secs_f64(),
            p.elapsed.as_secs_f64(),
            first.as_secs_f64(),
            last.as_secs_f64(),
            match steady_in_flight(&samples) {
                0 => String::new(),
                n => format!(", {n} in flight"),
            },
            p.peak_rss_kib / 1024
        );
        bare_best = bare_best.max(b.rate());
        pipe_best = pipe_best.max(p_rate);
    }
    Ok((bare_best, pipe_best))
}

/// The sandbox accepted exactly `n` updates since its last reset (a digest
/// vendor's first challenge aside).
fn check_all_ok(rt: &Runtime, sandbox: &SandboxProc, n: usize) -> Res<()> {
    let snap = rt.block_on(sandbox.stats())?;
    let (_, ok, throttled, other) = totals(&snap);
    if ok != n as u64 {
        return Err(format!(
            "the sandbox accepted {ok} of {n} rows ({throttled} answered 429, {other} otherwise)"
        ));
    }
    Ok(())
}

fn curl_version() -> Res<String> {
    let out = Command::new("curl")
        .arg("--version")
        .output()
        .map_err(|_| "curl is not installed".to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap_or("").to_string();
    let version = first.split_whitespace().nth(1).unwrap_or("").to_string();
    let parts: Vec<u32> = version
        .split('.')
        .take(2)
        .filter_map(|p| p.parse().ok())
        .collect();
    // --parallel came with curl 7.66.
    if parts.len() < 2 || (parts[0], parts[1]) < (7, 66) {
        return Err(format!(
            "curl {version} has no --parallel (it came in 7.66)"
        ));
    }
    Ok(format!("curl {version}"))
}

/// One block per row: the same method, URL, headers and body as the pipeline's.
fn write_curl_config(planned: &Planned, path: &Path) -> Res<()> {
    fn quoted(s: &str) -> String {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }
    let f = File::create(path).map_err(|e| e.to_string())?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    let io = |e: std::io::Error| e.to_string();
    for (i, change) in planned.changes.iter().enumerate() {
        let req = planned.adapters[usize::from(change.vendor)].request(change);
        if i > 0 {
            writeln!(w, "next").map_err(io)?;
        }
        writeln!(w, "url = {}", quoted(&req.uri().to_string())).map_err(io)?;
        writeln!(w, "request = {}", quoted(req.method().as_str())).map_err(io)?;
        for (name, value) in req.headers() {
            let value = value.to_str().map_err(|e| e.to_string())?;
            writeln!(w, "header = {}", quoted(&format!("{name}: {value}"))).map_err(io)?;
        }
        let body = std::str::from_utf8(req.body()).map_err(|e| e.to_string())?;
        writeln!(w, "data-binary = {}", quoted(body)).map_err(io)?;
        writeln!(w, "output = \"/dev/null\"").map_err(io)?;
    }
    w.flush().map_err(io)
}

// ---------------------------------------------------------------------------
// Scenario 3: latency-bound

fn latency_bound(s: &Settings, rt: &Runtime, report: &mut Report) -> Res<()> {
    let n = s.sizes.latency_rows;
    let concurrency = 64;
    let latency = Duration::from_millis(50);
    println!("\n== latency-bound: {n} rows, sandbox latency 50 ms, concurrency {concurrency}");
    let sandbox = Arc::new(SandboxProc::start(s, "latency", &["--latency-ms", "50"])?);
    let dir = s.work.join("latency");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let config = write_config(&dir, "config", &sandbox.base, concurrency)?;
    let input = dir.join("gate.csv");
    write_input(&input, n, false)?;
    let planned = Arc::new(plan(&config, &input)?);
    let state = dir.join("state.db");
    let results = dir.join("results.csv");
    let ideal = concurrency as f64 / latency.as_secs_f64();
    let mut rates = Vec::new();
    for (label, args) in [
        ("fixed", &["--concurrency", "64", "--fixed-concurrency"][..]),
        ("adaptive", &["--concurrency", "64"][..]),
    ] {
        let job = Job {
            input: &input,
            config: &config,
            state: &state,
            results: &results,
            args,
            fresh: true,
        };
        let (bare, pipe) = side_by_side(
            s,
            rt,
            &sandbox,
            &planned,
            &job,
            concurrency,
            s.sizes.latency_rounds,
        )?;
        rates.push((label, bare, pipe));
    }
    let (_, bare, pipe) = rates[0];
    let (_, bare_a, pipe_a) = rates[1];
    report.detail(format!(
        "latency-bound ({n} rows, 50 ms, c={concurrency}): pipeline --fixed-concurrency {pipe:.0} req/s, adaptive (default, cap 64) {pipe_a:.0} req/s, bare {bare:.0} / {bare_a:.0} req/s; ideal c/latency = {ideal:.0} req/s"
    ));
    let ratio = pipe / bare;
    report.row(
        "latency-bound: pipeline / bare client",
        format!("{ratio:.3} ({pipe:.0} vs {bare:.0} req/s)"),
        ">= 0.97",
        Some(ratio >= 0.97),
    );
    let ratio_a = pipe_a / bare_a;
    report.row(
        "latency-bound: adaptive pipeline / bare client",
        format!("{ratio_a:.3} ({pipe_a:.0} vs {bare_a:.0} req/s)"),
        ">= 0.97",
        Some(ratio_a >= 0.97),
    );
    report.row(
        "latency-bound: achieved / (concurrency / latency)",
        format!("{:.3} ({pipe:.0} of {ideal:.0} req/s)", pipe / ideal),
        "(reported)",
        None,
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Scenario 4: adaptive concurrency against a capacity knee

/// Throughput between the moments 20 % and 90 % of the answers had come.
fn steady_rate(samples: &[Sample]) -> Option<f64> {
    let total = samples.last()?.ok;
    let at = |share: f64| {
        samples
            .iter()
            .find(|x| x.ok as f64 >= total as f64 * share)
            .copied()
    };
    let (a, b) = (at(0.2)?, at(0.9)?);
    let secs = (b.at - a.at).as_secs_f64();
    (secs > 0.0).then(|| (b.ok - a.ok) as f64 / secs)
}

/// The median number of requests in flight at the sandbox while between
/// 20 % and 90 % of the answers came.
fn steady_in_flight(samples: &[Sample]) -> u64 {
    let total = samples.last().map_or(0, |x| x.ok) as f64;
    let mut v: Vec<u64> = samples
        .iter()
        .filter(|x| x.ok as f64 >= 0.2 * total && x.ok as f64 <= 0.9 * total)
        .map(|x| x.in_flight)
        .collect();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// When the first request arrived (midway between the last poll that saw
/// none and the first that saw one).
fn first_request(samples: &[Sample]) -> Option<Duration> {
    let i = samples.iter().position(|x| x.requests > 0)?;
    Some(match i {
        0 => samples[0].at,
        i => (samples[i - 1].at + samples[i].at) / 2,
    })
}

/// How long after the first request the throughput over a sliding `window`
/// first reached `rate` (the window's midpoint).
fn time_to_rate(samples: &[Sample], rate: f64, window: Duration) -> Option<Duration> {
    let t0 = first_request(samples)?;
    let mut i = 0;
    for j in 0..samples.len() {
        while i + 1 < j && samples[j].at - samples[i + 1].at >= window {
            i += 1;
        }
        let span = samples[j].at.saturating_sub(samples[i].at);
        if span < window {
            continue;
        }
        let r = (samples[j].ok - samples[i].ok) as f64 / span.as_secs_f64();
        if r >= rate {
            let mid = samples[i].at + span / 2;
            return Some(mid.saturating_sub(t0));
        }
    }
    None
}

fn adaptive(s: &Settings, rt: &Runtime, report: &mut Report) -> Res<()> {
    let n = s.sizes.adaptive_rows;
    let rtt = Duration::from_millis(20);
    let knee = 24;
    println!("\n== adaptive: {n} rows, sandbox latency 20 ms with a knee at {knee} in flight");
    let sandbox = Arc::new(SandboxProc::start(
        s,
        "adaptive",
        &["--latency-ms", "20", "--knee", "24"],
    )?);
    let dir = s.work.join("adaptive");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let config = write_config(&dir, "config", &sandbox.base, 256)?;
    let input = dir.join("gate.csv");
    write_input(&input, n, false)?;
    let state = dir.join("state.db");
    let results = dir.join("results.csv");
    let measure = |args: &[&str]| -> Res<Vec<Sample>> {
        rt.block_on(sandbox.reset())?;
        let origin = Instant::now();
        let (stop, task) = sandbox.poll(rt, origin, Duration::from_millis(10));
        let job = Job {
            input: &input,
            config: &config,
            state: &state,
            results: &results,
            args,
            fresh: true,
        };
        let run = run_pipeline(s, &job);
        stop.cancel();
        let samples = rt.block_on(task).map_err(|e| e.to_string())?;
        run?;
        check_all_ok(rt, &sandbox, n)?;
        Ok(samples)
    };
    let mut best_fixed = (0usize, 0.0f64);
    let mut fixed_line = Vec::new();
    for &c in &s.sizes.adaptive_fixed {
        let cs = c.to_string();
        let samples = measure(&["--concurrency", &cs, "--fixed-concurrency"])?;
        let rate = steady_rate(&samples).ok_or("too few samples")?;
        println!(
            "  fixed concurrency {c}: {rate:.0} req/s ({} in flight)",
            steady_in_flight(&samples)
        );
        fixed_line.push(format!("{c}: {rate:.0}"));
        if rate > best_fixed.1 {
            best_fixed = (c, rate);
        }
    }
    let samples = measure(&["--concurrency", "256"])?;
    let rate = steady_rate(&samples).ok_or("too few samples")?;
    let reach = time_to_rate(&samples, 0.9 * best_fixed.1, rtt * 5);
    let settled = steady_in_flight(&samples);
    println!("  adaptive (cap 256): {rate:.0} req/s ({settled} in flight)");
    report.detail(format!(
        "adaptive ({n} rows, latency 20 ms growing past {knee} in flight): fixed concurrencies (req/s) {}; adaptive, cap 256: {rate:.0} req/s with a median of {settled} in flight",
        fixed_line.join(", ")
    ));
    let ratio = rate / best_fixed.1;
    report.row(
        "adaptive: steady throughput / best fixed concurrency",
        format!(
            "{ratio:.2} ({rate:.0} vs {:.0} req/s at {})",
            best_fixed.1, best_fixed.0
        ),
        ">= 0.90",
        Some(ratio >= 0.90),
    );
    let in_flight_ratio = settled as f64 / f64::from(knee);
    report.row(
        "adaptive: median requests in flight / knee (24)",
        format!("{in_flight_ratio:.2} ({settled} in flight)"),
        "<= 1.5",
        Some(in_flight_ratio <= 1.5),
    );
    // The sandbox stretches a round trip by in-flight / knee past the knee.
    let rtt_ratio = in_flight_ratio.max(1.0);
    report.row(
        "adaptive: median round trip / quiet round trip (20 ms)",
        format!("{rtt_ratio:.2} ({:.0} ms)", 20.0 * rtt_ratio),
        "<= 1.5",
        Some(rtt_ratio <= 1.5),
    );
    match reach {
        Some(t) => {
            let trips = t.as_secs_f64() / rtt.as_secs_f64();
            report.row(
                "adaptive: time to 90 % of best fixed",
                format!(
                    "{trips:.1} round trips ({:.0} ms)",
                    t.as_secs_f64() * 1000.0
                ),
                "<= 20 round trips",
                Some(trips <= 20.0),
            );
        }
        None => report.row(
            "adaptive: time to 90 % of best fixed",
            "never reached".into(),
            "<= 20 round trips",
            Some(false),
        ),
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Scenario 5: a rate limit nobody told the runner about

fn rate_limit(s: &Settings, rt: &Runtime, report: &mut Report) -> Res<()> {
    let n = s.sizes.rate_rows;
    let limit = 200.0;
    println!("\n== unknown rate limit: {n} rows, sandbox admits {limit} req/s (burst {limit})");
    let sandbox = Arc::new(SandboxProc::start(
        s,
        "ratelimit",
        &["--fault", "securegate.rate_limit=200"],
    )?);
    let dir = s.work.join("ratelimit");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let config = write_config(&dir, "config", &sandbox.base, 64)?;
    let input = dir.join("gate.csv");
    write_input(&input, n, false)?;
    let state = dir.join("state.db");
    let results = dir.join("results.csv");
    rt.block_on(sandbox.reset())?;
    let origin = Instant::now();
    let (stop, task) = sandbox.poll(rt, origin, Duration::from_millis(50));
    let job = Job {
        input: &input,
        config: &config,
        state: &state,
        results: &results,
        args: &[],
        fresh: true,
    };
    let run = run_pipeline(s, &job);
    stop.cancel();
    let samples = rt.block_on(task).map_err(|e| e.to_string())?;
    run?;
    let snap = rt.block_on(sandbox.stats())?;
    let (requests, ok, throttled, other) = totals(&snap);
    if ok != n as u64 {
        return Err(format!("{ok} of {n} accepted ({other} other answers)"));
    }
    let t0 = first_request(&samples).ok_or("no request seen")?;
    let t1 = samples
        .iter()
        .find(|x| x.ok >= ok)
        .map_or(origin.elapsed(), |x| x.at);
    let span = (t1 - t0).as_secs_f64();
    // The bucket starts full: one second's worth comes on top of the rate.
    let achieved = (ok as f64 - limit) / span;
    let steady = steady_rate(&samples).unwrap_or(0.0);
    let share = throttled as f64 / requests as f64;
    report.detail(format!(
        "unknown rate limit ({n} rows, 200 req/s, burst 200, zero latency, default config: concurrency 64, adaptive): {ok} accepted in {span:.1} s; (accepted - burst) / time = {achieved:.0} req/s, between 20 % and 90 % of the rows {steady:.0} req/s; {throttled} of {requests} requests answered 429"
    ));
    let ratio = achieved / limit;
    report.row(
        "unknown rate limit: achieved / limit",
        format!("{ratio:.2} ({achieved:.0} of 200 req/s)"),
        ">= 0.90",
        Some(ratio >= 0.90),
    );
    report.row(
        "unknown rate limit: share answered 429",
        format!("{:.2} % ({throttled} of {requests})", share * 100.0),
        "< 2 %",
        Some(share < 0.02),
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Scenarios 6 and 7: memory at 10 k and 1 M rows, then resume the 1 M run

fn memory_and_resume(s: &Settings, rt: &Runtime, report: &mut Report) -> Res<()> {
    let (small, large) = (s.sizes.memory_small, s.sizes.memory_large);
    println!("\n== memory: peak RSS of invitesync run at {small} and {large} rows");
    let sandbox = Arc::new(SandboxProc::start(s, "memory", &[])?);
    let dir = s.work.join("memory");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let config = write_config(&dir, "config", &sandbox.base, 64)?;
    let mut rss = Vec::new();
    let mut large_run = None;
    for n in [small, large] {
        let input = dir.join(format!("gate-{n}.csv"));
        write_input(&input, n, false)?;
        let state = dir.join(format!("state-{n}.db"));
        let results = dir.join(format!("results-{n}.csv"));
        rt.block_on(sandbox.reset())?;
        let job = Job {
            input: &input,
            config: &config,
            state: &state,
            results: &results,
            args: &[],
            fresh: true,
        };
        let p = run_pipeline(s, &job)?;
        check_all_ok(rt, &sandbox, n)?;
        println!(
            "  {n} rows: peak RSS {:.1} MiB, {:.1} s ({:.0} rows/s)",
            p.peak_rss_kib as f64 / 1024.0,
            p.elapsed.as_secs_f64(),
            n as f64 / p.elapsed.as_secs_f64()
        );
        rss.push((n, p.peak_rss_kib as f64 / 1024.0, p.elapsed));
        large_run = Some((input, state, results));
    }
    if s.wants("memory") {
        let (_, small_mib, _) = rss[0];
        let (_, large_mib, large_t) = rss[1];
        report.detail(format!(
            "memory (default config, concurrency 64, zero latency; ru_maxrss of the `invitesync run` process): {small} rows {small_mib:.1} MiB, {large} rows {large_mib:.1} MiB in {:.1} s",
            large_t.as_secs_f64()
        ));
        report.row(
            &format!("memory: peak RSS at {}", human(large)),
            format!("{large_mib:.1} MiB"),
            "< 64 MiB",
            Some(large_mib < 64.0),
        );
        let growth = large_mib - small_mib;
        report.row(
            &format!("memory: {} minus {}", human(large), human(small)),
            format!("{growth:+.1} MiB ({small_mib:.1} -> {large_mib:.1})"),
            "<= 10 MiB",
            Some(growth <= 10.0),
        );
    }
    if s.wants("resume") {
        let (input, state, results) = large_run.ok_or("no large run")?;
        resume(
            s, rt, report, &sandbox, &input, &config, &state, &results, large,
        )?;
    }
    Ok(())
}

fn human(n: usize) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{} M rows", n / 1_000_000)
    } else if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{} k rows", n / 1_000)
    } else {
        format!("{n} rows")
    }
}

/// Takes the last `undone` rows of the run back out of the state file (and
/// their ledger entries, merged or still in the journal, or they would end
/// `unchanged`), and marks the run interrupted, as if it had been killed
/// near its end.
fn undo_rows(state: &Path, total: usize, undone: usize) -> Res<()> {
    let sql = |e: rusqlite::Error| e.to_string();
    let mut conn = rusqlite::Connection::open(state).map_err(sql)?;
    let tx = conn.transaction().map_err(sql)?;
    let run: i64 = tx
        .query_row("SELECT max(id) FROM runs", [], |r| r.get(0))
        .map_err(sql)?;
    let from = (total - undone) as i64;
    let keys: Vec<String> = {
        let mut stmt = tx
            .prepare("SELECT invite_key FROM run_rows WHERE run_id = ?1 AND row_index >= ?2")
            .map_err(sql)?;
        stmt.query_map(rusqlite::params![run, from], |r| r.get(0))
            .map_err(sql)?
            .collect::<Result<_, _>>()
            .map_err(sql)?
    };
    for key in &keys {
        let (vendor, rest) = key.split_once('/').ok_or("odd invite key")?;
        let hash = InviteKey::new(vendor, rest).hash;
        for table in ["ledger", "ledger_journal"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE key_hash = ?1"),
                [hash as i64],
            )
            .map_err(sql)?;
        }
    }
    let deleted = tx
        .execute(
            "DELETE FROM run_rows WHERE run_id = ?1 AND row_index >= ?2",
            rusqlite::params![run, from],
        )
        .map_err(sql)?;
    if deleted != undone {
        return Err(format!("deleted {deleted} rows, meant {undone}"));
    }
    tx.execute(
        "UPDATE runs SET status = 'interrupted', exit_code = 3 WHERE id = ?1",
        [run],
    )
    .map_err(sql)?;
    tx.commit().map_err(sql)
}

#[allow(clippy::too_many_arguments)]
fn resume(
    s: &Settings,
    rt: &Runtime,
    report: &mut Report,
    sandbox: &Arc<SandboxProc>,
    input: &Path,
    config: &Path,
    state: &Path,
    results: &Path,
    total: usize,
) -> Res<()> {
    let undone = 1_000;
    println!("\n== resume: the {total}-row run with its last {undone} rows undone");
    undo_rows(state, total, undone)?;
    rt.block_on(sandbox.reset())?;
    let origin = Instant::now();
    let (stop, task) = sandbox.poll(rt, origin, Duration::from_millis(2));
    let job = Job {
        input,
        config,
        state,
        results,
        args: &[],
        fresh: false,
    };
    // Started only once the poller is polling.
    std::thread::sleep(Duration::from_millis(20));
    let spawn_at = origin.elapsed();
    let run = run_pipeline(s, &job);
    stop.cancel();
    let samples = rt.block_on(task).map_err(|e| e.to_string())?;
    let p = run?;
    check_all_ok(rt, sandbox, undone)?;
    let first = first_request(&samples)
        .ok_or("no request seen")?
        .saturating_sub(spawn_at);
    let finished = p.elapsed;
    report.detail(format!(
        "resume ({total}-row run, last {undone} rows and their ledger entries removed, run marked interrupted; the same command again): first request {:.0} ms after start, finished (results file of {total} rows written) in {:.2} s, exit {}",
        first.as_secs_f64() * 1000.0,
        finished.as_secs_f64(),
        p.code
    ));
    report.row(
        "resume: first new request after start",
        format!("{:.2} s", first.as_secs_f64()),
        "< 1 s",
        Some(first < Duration::from_secs(1)),
    );
    report.row(
        "resume: finished",
        format!("{:.2} s", finished.as_secs_f64()),
        "< 3 s",
        Some(finished < Duration::from_secs(3)),
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Scenario 8: the state writer against a bare insert loop

fn checkpoint(s: &Settings, _rt: &Runtime, report: &mut Report) -> Res<()> {
    let (rows, rounds) = (s.sizes.writer_rows, s.sizes.writer_rounds);
    println!(
        "\n== checkpoint: state writer vs bare batched inserts, {rows} rows, best of {rounds}"
    );
    let b = invitesync::state::bench::bench_writer(rows, rounds).map_err(|e| e.to_string())?;
    report.detail(format!(
        "checkpoint ({rows} rows, best of {rounds} alternating rounds, commit every 1,000): writer {:.0} rows/s, bare rusqlite loop {:.0} rows/s",
        b.writer_rows_per_s, b.bare_rows_per_s
    ));
    let ratio = b.ratio();
    report.row(
        "checkpoint: writer / bare insert loop",
        format!("{ratio:.2}"),
        ">= 0.70",
        Some(ratio >= 0.70),
    );
    report.row(
        "checkpoint: writer rows/s",
        format!("{:.0}", b.writer_rows_per_s),
        "> 200,000",
        Some(b.writer_rows_per_s > 200_000.0),
    );
    Ok(())
}
