//! Vendors that answer junk: unreadable bodies, binary error text, huge
//! bodies, and things that are not HTTP at all. Clear errors, no panic.

mod common;

use std::path::PathBuf;

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
    vendor_with(name, port, "max_attempts = 2\n")
}

/// A Securegate table for the server on `port`, with `keys` (lines) of its own.
fn vendor_with(name: &str, port: u16, keys: &str) -> String {
    format!(
        "\n[vendors.{name}]\nkind = \"securegate\"\nbase_url = \"http://127.0.0.1:{port}\"\napi_key = {{ file = \"secrets/gate\" }}\n{keys}"
    )
}

/// An answer with `status` ("200 OK"), more header lines (each ending in
/// CRLF) and `body`, after which the connection closes.
fn answer(status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Runs `n` rows for each vendor named against the vendor `tables` (the
/// sandbox's too), expecting the run to stop early (exit 3): the world,
/// the input, and what the run said of the vendors it stopped.
async fn a_run_that_stops(tables: &str, vendors: &[&str], n: usize) -> (World, PathBuf, String) {
    let world = World::start(None, tables).await;
    let input = world.write("in.csv", &rows(vendors, n));
    let report = world.run(&input).await;
    assert_eq!(
        report.exit_code, 3,
        "stopped, resumable: {:?}",
        report.stopped
    );
    let said = report.stopped.join("\n");
    (world, input, said)
}

/// Each result's vendor and outcome, in input order.
fn outcomes(world: &World) -> Vec<(String, String)> {
    let rows = read_csv(&world.path("in.results.csv"));
    column(&rows, "vendor")
        .into_iter()
        .zip(column(&rows, "outcome"))
        .collect()
}

/// An input of `n` rows for each vendor named, one of each in turn.
fn rows(vendors: &[&str], n: usize) -> String {
    let mut text = String::from("vendor,scope,invite_id,status\n");
    for i in 0..n {
        for v in vendors {
            text.push_str(&format!("{v},e,{v}{i},sent\n"));
        }
    }
    text
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
    // A success that is not the API's JSON confirms nothing: tried again,
    // then failed, never `updated` (the ledger would skip it from then on).
    assert_eq!(
        column(&rows, "outcome"),
        ["failed", "rejected", "failed", "failed"]
    );
    let errors = column(&rows, "error");
    assert_eq!(
        errors[0],
        "gave up after 2 attempts: HTTP 200, but not an answer of the vendor's API: \
         6 bytes of binary data, not JSON; check that `base_url` is the API's address, not a \
         web site's, and what any proxy in between answers"
    );
    assert!(
        errors[2].contains("text, not JSON: \"xxxx"),
        "{}",
        errors[2]
    );
    assert!(errors[1].starts_with("HTTP 400"), "{}", errors[1]);
    assert!(!errors[1].contains('\n'), "one line: {}", errors[1]);
    assert!(
        errors[3].contains("gave up after 2 attempts"),
        "{}",
        errors[3]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_page_at_the_vendors_address_stops_it_and_a_resume_finishes_it() {
    // What a `base_url` that points at a web site (or a proxy's sign-in
    // page) answers to every request: 200 and HTML.
    let page = "<!DOCTYPE html><html><head><title>Welcome to\n Example Corp</title></head><body>Hi</body></html>";
    let site = canned(answer(
        "200 OK",
        "Content-Type: text/html\r\n",
        page.as_bytes(),
    ))
    .await;
    // The default attempts: a row cannot use them all up before the
    // vendor's first three answers have come.
    let (world, input, said) =
        a_run_that_stops(&vendor_with("site", site, ""), &["site", "gate"], 30).await;
    assert!(
        said.contains(
            "[vendors.site] answered 3 times in a row with something that is not its API \
             (last: HTTP 200, an HTML page titled \"Welcome to Example Corp\")"
        ),
        "{said}"
    );
    assert!(
        said.contains("check that `base_url` is the API's address"),
        "{said}"
    );
    for (v, o) in outcomes(&world) {
        assert_eq!(o, if v == "site" { "pending" } else { "updated" }, "{v}");
    }

    // `base_url` fixed: the same command finishes the run.
    world.edit_config(&[(&format!("http://127.0.0.1:{site}"), &world.base_url())]);
    let report = world.run(&input).await;
    assert_eq!(report.exit_code, 0, "{:?}", report.stopped);
    assert!(report.resumed);
    let rows = read_csv(&world.path("in.results.csv"));
    assert!(column(&rows, "outcome").iter().all(|o| o == "updated"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firewalls_block_page_is_named_when_it_stops_a_vendor() {
    // What a web application firewall in front of a vendor answers a
    // machine it blocks: 403 and its own page, not the API's refusal.
    let page = "<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title></head><body>blocked</body></html>";
    let waf = canned(answer(
        "403 Forbidden",
        "Content-Type: text/html\r\n",
        page.as_bytes(),
    ))
    .await;
    // How many APIs refuse a key: plain text, which is no block page.
    let plain = canned(answer(
        "401 Unauthorized",
        "Content-Type: text/plain\r\n",
        b"Unauthorized",
    ))
    .await;
    let tables = [vendor("waf", waf), vendor("plain", plain)].concat();
    let (_, _, said) = a_run_that_stops(&tables, &["waf", "plain"], 10).await;
    assert!(
        said.contains(
            "refused our credentials (HTTP 403) 3 times in a row; check vendors.waf.api_key"
        ),
        "{said}"
    );
    assert!(
        said.contains(
            "The last refusal was an HTML page titled \"Attention Required! | Cloudflare\", \
             not an answer of the API: a firewall or proxy in front of the vendor may be \
             refusing this machine"
        ),
        "{said}"
    );
    let plain = said
        .lines()
        .find(|s| s.contains("vendors.plain.api_key"))
        .expect("plain stopped");
    assert!(
        plain.contains("3 times in a row; check vendors.plain.api_key (file ")
            && !plain.contains("The last refusal"),
        "{plain}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_that_moved_is_stopped_with_where_it_went_and_nothing_follows_it() {
    // Every request redirected: the API moved (or a sign-in redirect).
    let moved = canned(answer(
        "301 Moved Permanently",
        "Location: https://api.example.com/v2/events/e/invites/i\r\n",
        b"",
    ))
    .await;
    // Stopped, resumable, not rejected.
    let (world, _, said) = a_run_that_stops(&vendor_with("moved", moved, ""), &["moved"], 10).await;
    assert!(
        said.contains(
            "(last: HTTP 301, a redirect to https://api.example.com/v2/events/e/invites/i). \
             Fix: if the vendor's API has moved there, set `base_url` to its new address"
        ),
        "{said}"
    );
    assert!(outcomes(&world).iter().all(|(_, o)| o == "pending"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_compressed_unasked_is_read() {
    use std::io::Write;
    // A vendor (or a gateway in front of it) that compresses its answers
    // although no Accept-Encoding asked for it.
    let json = br#"{"id":"remote-7","updated_at":"2026-01-02T03:04:05Z"}"#;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(json).unwrap();
    let zipped = canned(answer(
        "200 OK",
        "Content-Type: application/json\r\nContent-Encoding: gzip\r\n",
        &gz.finish().unwrap(),
    ))
    .await;
    let world = World::start(None, &vendor("zipped", zipped)).await;
    let input = world.write("in.csv", "vendor,scope,invite_id,status\nzipped,e,i,sent\n");
    let report = world.run(&input).await;
    assert_eq!(report.exit_code, 0, "{:?}", report.stopped);
    let rows = read_csv(&world.path("in.results.csv"));
    assert_eq!(column(&rows, "outcome"), ["updated"]);
    assert_eq!(column(&rows, "remote_id"), ["remote-7"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_that_takes_no_more_is_stopped_not_hammered_row_by_row() {
    // A quota used up for the day: every request answered 429.
    let spent = canned(answer(
        "429 Too Many Requests",
        "Content-Type: application/json\r\n",
        br#"{"error":"daily quota exceeded"}"#,
    ))
    .await;
    let table = vendor_with(
        "spent",
        spent,
        "max_attempts = 3\nbackoff_base = \"1ms\"\nbackoff_cap = \"5ms\"\n",
    );
    let (world, _, said) = a_run_that_stops(&table, &["spent", "gate"], 300).await;
    assert!(
        said.contains(
            "[vendors.spent] answered nothing but 429 (too many requests) (last: HTTP 429)"
        ),
        "{said}"
    );
    assert!(said.contains("run the same command again later"), "{said}");
    let outcomes = outcomes(&world);
    // The other vendor is not held back; most of this one's rows never went.
    assert!(
        outcomes
            .iter()
            .filter(|(v, _)| v == "gate")
            .all(|(_, o)| o == "updated")
    );
    let pending = outcomes
        .iter()
        .filter(|(v, o)| v == "spent" && o == "pending")
        .count();
    assert!(pending >= 250, "{pending} of 300 pending");
}
