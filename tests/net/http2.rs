//! HTTP/2, when ALPN chooses it: a vendor that refuses a stream unprocessed
//! (`REFUSED_STREAM`, as a server does while it rotates a connection) has
//! that request sent again at once, on another stream, without costing the
//! row an attempt; every row lands once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::harness::{Net, stderr, tls_server};

/// What the server saw: streams refused, and the paths it answered.
#[derive(Default)]
struct Seen {
    refused: usize,
    answered: HashMap<String, usize>,
    alpn: Vec<Option<Vec<u8>>>,
}

/// An HTTP/2-only server over TLS on 127.0.0.1 that refuses the first
/// stream of every connection and answers every other one as Securegate
/// would. Returns its base URL.
fn refusing_h2_server(net: &Net, seen: Arc<Mutex<Seen>>) -> String {
    tls_server(net, &[b"h2"], move |tls| {
        let seen = seen.clone();
        async move {
            let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
            lock(&seen).alpn.push(alpn);
            let Ok(mut conn) = h2::server::handshake(tls).await else {
                return;
            };
            let mut first = true;
            while let Some(Ok((req, mut respond))) = conn.accept().await {
                if std::mem::take(&mut first) {
                    lock(&seen).refused += 1;
                    respond.send_reset(h2::Reason::REFUSED_STREAM);
                    continue;
                }
                let seen = seen.clone();
                tokio::spawn(async move {
                    let path = req.uri().path().to_string();
                    let mut body = req.into_body();
                    while let Some(Ok(chunk)) = body.data().await {
                        let _ = body.flow_control().release_capacity(chunk.len());
                    }
                    *lock(&seen).answered.entry(path.clone()).or_default() += 1;
                    let id = path.rsplit('/').next().unwrap_or_default().to_string();
                    let answer = http::Response::builder()
                        .status(200)
                        .header("content-type", "application/json")
                        .body(())
                        .expect("response");
                    let Ok(mut stream) = respond.send_response(answer, false) else {
                        return;
                    };
                    let json = format!(r#"{{"id":"{id}","status":"accepted"}}"#);
                    let _ = stream.send_data(Bytes::from(json), true);
                });
            }
        }
    })
}

fn lock(seen: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|p| p.into_inner())
}

#[test]
fn a_stream_refused_unprocessed_is_sent_again_without_costing_an_attempt() {
    let net = Net::new();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let base = refusing_h2_server(&net, seen.clone());
    net.write("secrets/gate", "key\n");
    std::fs::set_permissions(
        net.path("secrets/gate"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("secret file mode");
    net.config(&base, "", "ca_cert = \"ca.pem\"");
    net.input(20);
    let o = net.run(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    let seen = lock(&seen);
    assert!(
        seen.alpn.iter().all(|a| a.as_deref() == Some(b"h2")),
        "every connection spoke HTTP/2: {:?}",
        seen.alpn
    );
    assert!(seen.refused >= 1, "the server refused a stream");
    for i in 0..20 {
        let path = format!("/events/ev1/invites/inv{i}");
        assert_eq!(seen.answered.get(&path), Some(&1), "{path} answered once");
    }
    assert!(net.outcomes().iter().all(|o| o == "updated"));
    for attempts in net.results_column("attempts") {
        assert_eq!(attempts, "1", "a refused stream is not an attempt");
    }
}
