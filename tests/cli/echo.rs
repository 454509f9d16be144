//! A vendor gone wrong for the redaction tests: an HTTP server on 127.0.0.1
//! that quotes the credentials it was sent back in every answer, raw,
//! percent-encoded and JSON-escaped, in the shapes each vendor's errors take,
//! and in a response header too.
//!
//! Paths decide the answer: an invite id containing `ok` gets a 2xx whose
//! ids are the echo, `plain` a text 422, `r401` a 401; anything else a JSON
//! 422. Ops Manager's path is first answered with a Digest challenge, so
//! that the echo holds its `Authorization` line.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub struct EchoServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EchoServer {
    pub fn start() -> EchoServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = answer(stream);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        EchoServer {
            port,
            stop,
            thread: Some(thread),
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Every byte but ASCII letters and digits as `%XX`.
fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn answer(stream: TcpStream) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let mut credentials = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_string());
        match name.as_str() {
            "content-length" => length = value.parse().unwrap_or(0),
            "authorization" | "x-api-key" | "x-session-token" => credentials.push(value),
            _ => {}
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;

    let raw = credentials.join(" ");
    let echo = format!("you sent {raw} (as a URL: {})", percent(&raw));
    let json = |v: serde_json::Value| v.to_string();
    let (status, content_type, text, extra) = if path.contains("/api/public/")
        && credentials.is_empty()
    {
        (
            401,
            "application/json",
            json(serde_json::json!({"detail": "log in"})),
            "WWW-Authenticate: Digest realm=\"echo\", nonce=\"n0nce\", qop=\"auth\", algorithm=MD5\r\n",
        )
    } else if path.contains("ok") {
        (
            200,
            "application/json",
            json(serde_json::json!({
                "id": echo, "updated_at": echo, "status": "sent",
                "data": {"id": echo, "type": "user-invitations",
                         "attributes": {"status": "accepted", "updated_at": echo}},
            })),
            "",
        )
    } else if path.contains("plain") {
        let escaped = serde_json::to_string(&raw).unwrap_or_default();
        (422, "text/plain", format!("{echo}; in JSON: {escaped}"), "")
    } else {
        let status = if path.contains("r401") { 401 } else { 422 };
        (
            status,
            "application/json",
            json(serde_json::json!({
                "detail": echo, "error": echo, "errors": [{"detail": echo}],
                "errorCode": "ECHO", "reason": echo,
            })),
            "",
        )
    };
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {status} Echo\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         X-Echo: {raw}\r\n{extra}Connection: close\r\n\r\n{text}",
        text.len()
    )?;
    out.flush()
}
