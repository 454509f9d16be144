//! The sandbox as a whole: statistics, fault knobs, modes, shutdown.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::testkit::*;
use super::*;

fn gate_put(t: &Kit, event: &str, invite: &str, status: &str) -> reqwest::RequestBuilder {
    t.client
        .put(t.url(&format!("/events/{event}/invites/{invite}")))
        .header("x-api-key", "sandbox-securegate-key")
        .header("content-type", "application/json")
        .body(format!("{{\"status\":\"{status}\"}}"))
}

fn faults(f: Faults) -> FaultSettings {
    FaultSettings {
        vendors: [(Kind::Securegate, f)].into(),
        ..FaultSettings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_land_once_each_and_in_order_per_invite() {
    let t = Kit::open().await;
    const INVITES: usize = 100;
    const STATUSES: [&str; 3] = ["sent", "accepted", "rejected"];
    let mut tasks = Vec::new();
    for i in 0..INVITES {
        let client = t.client.clone();
        let url = t.url(&format!("/events/ev/invites/inv-{i}"));
        tasks.push(tokio::spawn(async move {
            // One invite's updates go one after another, as the runner sends them.
            for s in STATUSES {
                let r = client
                    .put(&url)
                    .header("x-api-key", "sandbox-securegate-key")
                    .header("content-type", "application/json")
                    .body(format!("{{\"status\":\"{s}\"}}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let s = t.sandbox.stats();
    let v = s.vendor(Kind::Securegate);
    assert_eq!((v.requests, v.updates, v.status(200)), (300, 300, 300));
    assert_eq!(s.invites.len(), INVITES);
    for (key, inv) in &s.invites {
        let got: Vec<_> = inv
            .applied
            .iter()
            .map(|a| match &a.value {
                AppliedValue::Status { status } => status.as_str(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(got, STATUSES, "{key}");
        assert!(inv.applied.windows(2).all(|w| w[0].seq < w[1].seq), "{key}");
    }
    let mut seqs: Vec<u64> = s.applied_in_order().iter().map(|(_, a)| a.seq).collect();
    seqs.dedup();
    assert_eq!(seqs, (1..=300).collect::<Vec<u64>>());
    assert_eq!(s.last_seq, 300);

    // The HTTP view is the same data.
    let r = t.client.get(t.url("/_sandbox/stats")).send().await.unwrap();
    let over_http: StatsSnapshot = r.body_json().await.unwrap();
    assert_eq!(over_http, s);
    let r = t
        .client
        .get(t.url("/_sandbox/stats?invites=false"))
        .send()
        .await
        .unwrap();
    let light: StatsSnapshot = r.body_json().await.unwrap();
    assert!(light.invites.is_empty());
    assert_eq!(light.vendors, s.vendors);

    let r = t
        .client
        .post(t.url("/_sandbox/reset-stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let s = t.sandbox.stats();
    assert!(s.invites.is_empty());
    assert_eq!(s.vendor(Kind::Securegate), VendorStats::default());
    t.stop().await;
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let t = Kit::open().await;
    t.sandbox
        .set_faults(faults(Faults {
            rate_limit: Some(2.0),
            burst: Some(3.0),
            ..Faults::default()
        }))
        .unwrap();
    let mut codes = Vec::new();
    for i in 0..6 {
        let r = gate_put(&t, "ev", &format!("i{i}"), "sent")
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            let after: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=2).contains(&after), "{after}");
        }
        codes.push(r.status().as_u16());
    }
    assert_eq!(&codes[..3], &[200, 200, 200]);
    assert!(codes[3..].contains(&429), "{codes:?}");
    // Other vendors are not limited.
    let r = t
        .client
        .patch(t.url("/v3/user-invitations/x"))
        .header("X-Session-Token", "sandbox-ctrlhub-token")
        .header("content-type", "application/vnd.api+json")
        .body(r#"{"data":{"attributes":{"status":"accepted"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let s = t.sandbox.stats();
    assert!(s.vendor(Kind::Securegate).status(429) >= 1);
    t.stop().await;
}

#[tokio::test]
async fn errors_resets_and_latency_are_injected() {
    let t = Kit::open().await;
    t.sandbox
        .set_faults(faults(Faults {
            error_rate: Some(1.0),
            ..Faults::default()
        }))
        .unwrap();
    for _ in 0..20 {
        let r = gate_put(&t, "ev", "a", "sent").send().await.unwrap();
        assert!(
            [500, 502, 503, 504].contains(&r.status().as_u16()),
            "{}",
            r.status()
        );
    }

    t.sandbox
        .set_faults(faults(Faults {
            reset_rate: Some(1.0),
            ..Faults::default()
        }))
        .unwrap();
    let err = gate_put(&t, "ev", "a", "sent").send().await.unwrap_err();
    // The client sees the peer go away (ECONNRESET), not an HTTP answer.
    let text = format!("{err:?}");
    assert!(err.status().is_none() && !err.is_timeout(), "{text}");
    assert!(
        text.contains("ConnectionReset") || text.contains("closed"),
        "{text}"
    );
    let s = t.sandbox.stats();
    assert_eq!(s.vendor(Kind::Securegate).resets, 1);
    assert_eq!(s.vendor(Kind::Securegate).updates, 0);
    // Nothing was applied, so the invite has no record yet.
    assert!(s.invite("securegate/ev/a").is_none());

    t.sandbox
        .set_faults(faults(Faults {
            latency_ms: Some(150),
            ..Faults::default()
        }))
        .unwrap();
    let start = Instant::now();
    assert_eq!(
        gate_put(&t, "ev", "a", "sent")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(start.elapsed() >= Duration::from_millis(150));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_grows_past_the_knee() {
    let t = Kit::open().await;
    t.sandbox
        .set_faults(faults(Faults {
            latency_ms: Some(100),
            knee: Some(1),
            ..Faults::default()
        }))
        .unwrap();
    let start = Instant::now();
    let sends = (0..4).map(|i| gate_put(&t, "ev", &format!("k{i}"), "sent").send());
    for r in futures::future::join_all(sends).await {
        assert_eq!(r.unwrap().status(), 200);
    }
    // Alone, each would take 100 ms; four in flight past a knee of one take
    // up to four times as long.
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "{:?}",
        start.elapsed()
    );
    t.stop().await;
}

#[tokio::test]
async fn hangs_outlast_the_client_and_end_at_shutdown() {
    let t = Kit::open().await;
    t.sandbox
        .set_faults(faults(Faults {
            hang_rate: Some(1.0),
            ..Faults::default()
        }))
        .unwrap();
    let err = gate_put(&t, "ev", "h", "sent")
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    // The client gave up and closed; the server drops the hung request.
    let mut in_flight = 1;
    for _ in 0..50 {
        in_flight = t.sandbox.vendor_stats().vendor(Kind::Securegate).in_flight;
        if in_flight == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(in_flight, 0);
    // A hung request still open at shutdown does not hold it up.
    let client = t.client.clone();
    let url = t.url("/events/ev/invites/h");
    let pending = tokio::spawn(async move {
        client
            .put(url)
            .header("x-api-key", "sandbox-securegate-key")
            .header("content-type", "application/json")
            .body(r#"{"status":"sent"}"#)
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = Instant::now();
    t.stop().await;
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    let answer = pending.await.unwrap();
    assert!(answer.map(|r| r.status() == 503).unwrap_or(true));
}

#[tokio::test]
async fn faults_over_http_and_auth_rejection() {
    let t = Kit::open().await;
    let body =
        json!({"global": {"reject_auth": true}, "vendors": {"securegate": {"reject_auth": false}}});
    let r = t
        .client
        .post(t.url("/_sandbox/faults"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let now: Value = r.body_json().await.unwrap();
    assert_eq!(now, body);
    assert_eq!(
        gate_put(&t, "ev", "a", "sent")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = t
        .client
        .patch(t.url("/v3/user-invitations/x"))
        .header("X-Session-Token", "sandbox-ctrlhub-token")
        .header("content-type", "application/vnd.api+json")
        .body(r#"{"data":{"attributes":{"status":"accepted"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    for bad in [
        r#"{"global":{"error_rate":3}}"#,
        r#"{"global":{"nope":1}}"#,
        "{",
    ] {
        let r = t
            .client
            .post(t.url("/_sandbox/faults"))
            .body(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        assert!(r.body_json::<Value>().await.unwrap()["error"].is_string());
    }
    assert_eq!(t.sandbox.faults(), serde_json::from_value(body).unwrap());
    let r = t
        .client
        .get(t.url("/_sandbox/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    t.stop().await;
}

#[tokio::test]
async fn stateless_mode_keeps_nothing() {
    let t = Kit::with(SandboxOptions {
        stateless: true,
        ..SandboxOptions::ephemeral()
    })
    .await;
    for s in ["sent", "accepted"] {
        let r = gate_put(&t, "ev", "a", s).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.body_json().await.unwrap();
        assert_eq!(v["status"], s);
    }
    let s = t.sandbox.stats();
    assert_eq!(s.vendor(Kind::Securegate).updates, 2);
    assert!(s.invites.is_empty());
    t.stop().await;
}

#[tokio::test]
async fn bad_seeds_and_options_are_refused() {
    let bad = [
        "kind,scope,invite_id\nmighty_networks,acme,x\n",
        "kind,scope,invite_id,status\nsecuregate,e,i,maybe\n",
        "kind,scope,email,roles\nops_manager,123,a@b.co,ORG_OWNER\n",
        "kind,scope,email,roles\nops_manager,5f1a2b3c4d5e6f7a8b9c0d1e,a@b.co,ORG_GOD\n",
        "kind,invite_id,status\nctrl_hub,x,sent\n",
        "scope\nx\n",
    ];
    for seed in bad {
        let e = Sandbox::start_with_seed(&SandboxOptions::ephemeral(), seed).await;
        assert!(matches!(e, Err(SandboxError::Seed { .. })), "{seed}");
    }
    let missing = SandboxOptions {
        seed: Some("/nonexistent/seed.csv".into()),
        ..SandboxOptions::ephemeral()
    };
    assert!(matches!(
        Sandbox::start(&missing).await,
        Err(SandboxError::SeedFile { .. })
    ));
    let empty_key = SandboxOptions {
        mighty_token: String::new(),
        ..SandboxOptions::ephemeral()
    };
    assert!(matches!(
        Sandbox::start(&empty_key).await,
        Err(SandboxError::Options(_))
    ));
}

/// A rough throughput check of the vendor path against the bare health
/// route, same client and concurrency: `cargo test --release -- --ignored
/// throughput --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn throughput() {
    let t = Kit::open().await;
    const N: usize = 20_000;
    const CONCURRENCY: usize = 64;
    for round in 0..2 {
        for vendor in [false, true] {
            let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let start = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..CONCURRENCY {
                let (client, next) = (t.client.clone(), next.clone());
                let base = t.sandbox.base_url();
                tasks.push(tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= N {
                            break;
                        }
                        let r = if vendor {
                            client
                                .put(format!("{base}/events/ev/invites/inv-{i}"))
                                .header("x-api-key", "sandbox-securegate-key")
                                .header("content-type", "application/json")
                                .body(r#"{"status":"accepted"}"#)
                                .send()
                                .await
                        } else {
                            client.get(format!("{base}/_sandbox/health")).send().await
                        };
                        let r = r.unwrap();
                        assert!(r.status().is_success());
                        r.bytes().await.unwrap();
                    }
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
            let rate = N as f64 / start.elapsed().as_secs_f64();
            let what = if vendor {
                "securegate PUT"
            } else {
                "health GET"
            };
            eprintln!("round {round}: {what}: {rate:.0} requests/s");
        }
    }
    t.stop().await;
}
