//! A sandbox over HTTPS with certificates made here, a CONNECT proxy that
//! records what it sees, and the built binary run against them with an
//! environment of this test's choosing.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Output;
use std::sync::{Arc, Mutex};

use invitesync::sandbox::tls::{Authority, Leaf, Validity, server_config};
use invitesync::sandbox::{Kind, Sandbox, SandboxOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const HEADER: &str =
    "vendor,scope,invite_id,email,first_name,last_name,sender_id,status,roles,note";

/// Variables that would change where a request goes or what is trusted.
const CLEARED: [&str; 16] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "RUST_LOG",
    "NO_COLOR",
    "INVITESYNC_CONFIG",
    "INVITESYNC_LOG_FORMAT",
    "REQUEST_METHOD",
    "COLUMNS",
];

/// A test's world: a runtime serving the sandbox (and proxies), a temporary
/// directory with the secrets, and certificates.
pub struct Net {
    pub rt: tokio::runtime::Runtime,
    pub dir: tempfile::TempDir,
    sandbox: Option<Sandbox>,
    /// The CA that `ca_cert` trusts in these tests.
    pub ca: Authority,
    /// A CA nobody trusts.
    pub rogue: Authority,
}

impl Net {
    pub fn new() -> Net {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let net = Net {
            rt,
            dir,
            sandbox: None,
            ca: Authority::new("test CA").expect("CA"),
            rogue: Authority::new("rogue CA").expect("CA"),
        };
        net.write("ca.pem", &net.ca.pem());
        // The "system" roots of these runs: an unrelated CA, so that what is
        // trusted never depends on the machine.
        net.write(
            "system.pem",
            &Authority::new("system CA").expect("CA").pem(),
        );
        std::fs::create_dir(net.path("secrets")).expect("secrets dir");
        net
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write file");
        p
    }

    /// A server certificate for 127.0.0.1 signed by `by`.
    pub fn leaf(by: &Authority, names: &[&str], validity: Validity) -> Leaf {
        by.server(names, validity).expect("certificate")
    }

    /// Starts the sandbox over HTTPS with `leaf`, requiring client
    /// certificates signed by `client_ca` (PEM) if given; returns its base URL.
    pub fn https(&mut self, leaf: &Leaf, client_ca: Option<&str>) -> String {
        let config = server_config(
            leaf.cert.as_bytes(),
            leaf.key.as_bytes(),
            client_ca.map(str::as_bytes),
        )
        .expect("server config");
        let sandbox = self
            .rt
            .block_on(Sandbox::start_tls(
                &SandboxOptions::ephemeral(),
                Some(config),
            ))
            .expect("sandbox starts");
        self.start(sandbox)
    }

    fn start(&mut self, sandbox: Sandbox) -> String {
        let key = sandbox
            .credentials()
            .get("securegate-api-key")
            .unwrap_or_default()
            .to_string();
        let secret = self.write("secrets/gate", &format!("{key}\n"));
        // As a credential file should be: readable by its owner alone.
        std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("secret file mode");
        let url = sandbox.base_url();
        self.sandbox = Some(sandbox);
        url
    }

    pub fn api_key(&self) -> String {
        self.sandbox()
            .credentials()
            .get("securegate-api-key")
            .unwrap_or_default()
            .to_string()
    }

    pub fn sandbox(&self) -> &Sandbox {
        self.sandbox.as_ref().expect("sandbox started")
    }

    /// Requests that reached the Securegate routes.
    pub fn requests(&self) -> u64 {
        self.sandbox()
            .vendor_stats()
            .vendor(Kind::Securegate)
            .requests
    }

    /// A config with one Securegate vendor `gate` at `base`; `run` and
    /// `vendor` are lines added to `[run]` and `[vendors.gate]`.
    pub fn config(&self, base: &str, run: &str, vendor: &str) {
        self.write(
            "invitesync.toml",
            &format!(
                r#"[run]
concurrency = 4
max_attempts = 3
request_timeout = "5s"
backoff_base = "10ms"
backoff_cap = "50ms"
grace_period = "3s"
{run}

[vendors.gate]
kind = "securegate"
base_url = "{base}"
api_key = {{ file = "secrets/gate" }}
{vendor}
"#
            ),
        );
    }

    /// `in.csv` with `n` Securegate rows.
    pub fn input(&self, n: usize) {
        let mut text = String::from(HEADER) + "\n";
        for i in 0..n {
            text.push_str(&format!("gate,ev1,inv{i},,,,,accepted,,\n"));
        }
        self.write("in.csv", &text);
    }

    /// The binary in the world's directory with only `env` of the variables
    /// that steer networking, and `SSL_CERT_FILE` at the unrelated CA unless
    /// `env` sets `SSL_CERT_FILE` or `SSL_CERT_DIR`.
    /// `run in.csv` as a new run that sends every row again (`--new-run
    /// --force`), with `env`.
    pub fn run_again(&self, env: &[(&str, &str)]) -> Output {
        self.cli(
            &[
                "run",
                "in.csv",
                "-c",
                "invitesync.toml",
                "--new-run",
                "--force",
            ],
            env,
        )
    }

    pub fn cli(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = crate::common::binary();
        cmd.current_dir(self.dir.path());
        for var in CLEARED {
            cmd.env_remove(var);
        }
        if !env.iter().any(|(k, _)| k.starts_with("SSL_CERT_")) {
            cmd.env("SSL_CERT_FILE", self.path("system.pem"));
        }
        cmd.env("COLUMNS", "100");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.args(args).output().expect("binary runs")
    }

    /// `invitesync run in.csv -c invitesync.toml` with `env`.
    pub fn run(&self, env: &[(&str, &str)]) -> Output {
        self.cli(&["run", "in.csv", "-c", "invitesync.toml"], env)
    }

    /// The `outcome` column of the results file.
    pub fn outcomes(&self) -> Vec<String> {
        self.results_column("outcome")
    }

    /// A column of the results file.
    pub fn results_column(&self, name: &str) -> Vec<String> {
        let mut r = csv::Reader::from_path(self.path("in.results.csv")).expect("results");
        let i = r
            .headers()
            .expect("header")
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no {name} column"));
        r.records()
            .map(|rec| rec.expect("record")[i].to_string())
            .collect()
    }

    /// Every file the run left in the directory, as text.
    pub fn files_text(&self) -> String {
        let mut all = String::new();
        for entry in std::fs::read_dir(self.dir.path()).expect("dir").flatten() {
            if entry.path().is_file() {
                let bytes = std::fs::read(entry.path()).unwrap_or_default();
                all.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
        all
    }
}

impl Drop for Net {
    /// The sandbox's tasks belong to the runtime: stop them inside it.
    fn drop(&mut self) {
        let sandbox = self.sandbox.take();
        self.rt.block_on(async move { drop(sandbox) });
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A TLS server on 127.0.0.1 with a certificate from `net.ca`, offering the
/// ALPN protocols `alpn`; each connection, once its handshake is done, goes
/// to `serve` on a task of its own.
/// Returns its base URL.
pub fn tls_server<F, Fut>(net: &Net, alpn: &[&[u8]], serve: F) -> String
where
    F: Fn(tokio_rustls::server::TlsStream<TcpStream>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let leaf = Net::leaf(&net.ca, &["127.0.0.1"], None);
    let config = server_config(leaf.cert.as_bytes(), leaf.key.as_bytes(), None).expect("config");
    let mut config = (*config).clone();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = net
        .rt
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let serve = Arc::new(serve);
    net.rt.spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, serve) = (acceptor.clone(), serve.clone());
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    serve(tls).await;
                }
            });
        }
    });
    format!("https://127.0.0.1:{port}")
}

/// What the test proxy does with a CONNECT.
#[derive(Clone, Default)]
pub struct ProxyRules {
    /// The `Proxy-Authorization` value it demands (407 otherwise).
    pub auth: Option<String>,
    /// Answer every CONNECT with 403.
    pub refuse: bool,
    /// Speak TLS with this certificate (an `https://` proxy).
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// A CONNECT proxy on 127.0.0.1 that records every request head and every
/// byte a client sent it.
pub struct TestProxy {
    pub addr: SocketAddr,
    tls: bool,
    /// The first line of each request (`CONNECT host:port HTTP/1.1`).
    pub lines: Arc<Mutex<Vec<String>>>,
    /// Every byte clients sent, request heads and tunnelled bytes alike.
    pub seen: Arc<Mutex<Vec<u8>>>,
}

impl TestProxy {
    pub fn start(net: &Net, rules: ProxyRules) -> TestProxy {
        let listener = net
            .rt
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (l, s) = (lines.clone(), seen.clone());
        let tls = rules.tls.is_some();
        net.rt.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (l, s, rules) = (l.clone(), s.clone(), rules.clone());
                tokio::spawn(async move {
                    match rules.tls.clone() {
                        None => {
                            let _ = tunnel(client, rules, l, s).await;
                        }
                        Some(config) => {
                            let acceptor = tokio_rustls::TlsAcceptor::from(config);
                            if let Ok(client) = acceptor.accept(client).await {
                                let _ = tunnel(client, rules, l, s).await;
                            }
                        }
                    }
                });
            }
        });
        TestProxy {
            addr,
            tls,
            lines,
            seen,
        }
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    pub fn saw(&self, needle: &str) -> bool {
        let seen = self.seen.lock().unwrap();
        seen.windows(needle.len()).any(|w| w == needle.as_bytes())
    }
}

async fn tunnel<C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut client: C,
    rules: ProxyRules,
    lines: Arc<Mutex<Vec<String>>>,
    seen: Arc<Mutex<Vec<u8>>>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    // Bounded: a head longer than this is not one a client of ours sends.
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        if client.read(&mut byte).await? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    seen.lock().unwrap().extend_from_slice(&head);
    let text = String::from_utf8_lossy(&head).into_owned();
    let first = text.lines().next().unwrap_or_default().to_string();
    lines.lock().unwrap().push(first.clone());
    let authorized = match &rules.auth {
        None => true,
        Some(want) => text.lines().any(|l| {
            l.split_once(':').is_some_and(|(k, v)| {
                k.eq_ignore_ascii_case("proxy-authorization") && v.trim() == want
            })
        }),
    };
    let mut words = first.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    if method != "CONNECT" {
        client
            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            .await?;
        return Ok(());
    }
    if !authorized {
        client
            .write_all(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                  Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n",
            )
            .await?;
        return Ok(());
    }
    if rules.refuse {
        client
            .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            .await?;
        return Ok(());
    }
    let Ok(mut upstream) = TcpStream::connect(target).await else {
        client
            .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            .await?;
        return Ok(());
    };
    client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await?;
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut ur, mut uw) = upstream.split();
    let up = async {
        let mut buf = [0u8; 8192];
        loop {
            let n = cr.read(&mut buf).await?;
            if n == 0 {
                return uw.shutdown().await;
            }
            seen.lock().unwrap().extend_from_slice(&buf[..n]);
            uw.write_all(&buf[..n]).await?;
        }
    };
    let down = tokio::io::copy(&mut ur, &mut cw);
    let _ = tokio::join!(up, down);
    Ok(())
}
