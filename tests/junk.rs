//! Vendors that answer junk: unreadable bodies, binary error text, huge
//! bodies, and things that are not HTTP at all. Clear errors, no panic.

mod common;

use common::{World, column, read_csv};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A server on 127.0.0.1 that answers every request with `answer`.
async fn canned(answer: Vec<u8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                // Read the head and the announced body, then answer and close.
                loop {
                    let Ok(n) = sock.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&seen).to_ascii_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if seen.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let _ = sock.write_all(&answer).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    port
}

fn vendor(name: &str, port: u16) -> String {
    format!(
        "\n[vendors.{name}]\nkind = \"securegate\"\nbase_url = \"http://127.0.0.1:{port}\"\napi_key = {{ file = \"secrets/gate\" }}\nmax_attempts = 2\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_answers_end_as_clear_outcomes() {
    let ok_junk = canned(
        b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\n\x00\x01{{[\xff"
            .to_vec(),
    )
    .await;
    let bad_junk =
        canned(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 9\r\nConnection: close\r\n\r\nno\x00\xffway\n!".to_vec()).await;
    let mut huge =
        b"HTTP/1.1 200 OK\r\nContent-Length: 20000000\r\nConnection: close\r\n\r\n".to_vec();
    huge.extend(std::iter::repeat_n(b'x', 20_000_000));
    let huge = canned(huge).await;
    let not_http = canned(b"SSH-2.0-OpenSSH_9.6\r\n".to_vec()).await;

    let extra = [
        vendor("okjunk", ok_junk),
        vendor("badjunk", bad_junk),
        vendor("huge", huge),
        vendor("nothttp", not_http),
    ]
    .concat();
    let world = World::start(None, &extra).await;
    let input = world.write(
        "in.csv",
        "vendor,scope,invite_id,status\nokjunk,e,i,sent\nbadjunk,e,i,sent\nhuge,e,i,sent\nnothttp,e,i,sent\n",
    );
    let report = world.run(&input).await;
    assert_eq!(report.exit_code, 1);
    let rows = read_csv(&world.path("in.results.csv"));
    assert_eq!(
        column(&rows, "outcome"),
        ["updated", "rejected", "updated", "failed"]
    );
    let errors = column(&rows, "error");
    assert!(errors[1].starts_with("HTTP 400"), "{}", errors[1]);
    assert!(!errors[1].contains('\n'), "one line: {}", errors[1]);
    assert!(
        errors[3].contains("gave up after 2 attempts"),
        "{}",
        errors[3]
    );
}
