//! The sandbox as a whole: statistics, fault knobs, modes, shutdown.

use std::time::Duration;

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

    // An hour of latency: the client gives up long before the answer.
    t.sandbox
        .set_faults(faults(Faults {
            latency_ms: Some(3_600_000),
            ..Faults::default()
        }))
        .unwrap();
    let err = gate_put(&t, "ev", "a", "sent")
        .timeout(Duration::from_millis(200))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    t.stop().await;
}

/// Polls `done` every 20 ms, up to a generous bound; whether it came true.
async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..1000 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done()
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
    let in_flight = || t.sandbox.vendor_stats().vendor(Kind::Securegate).in_flight;
    assert!(eventually(|| in_flight() == 0).await);
    // A hung request still open at shutdown is answered then, not left hanging.
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
    assert!(eventually(|| in_flight() == 1).await);
    t.stop().await;
    let answer = pending.await.unwrap().expect("an answer");
    assert_eq!(answer.status(), 503);
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
    let mut empty_key = SandboxOptions::ephemeral();
    assert!(empty_key.credentials.set("mighty-token", ""));
    assert!(matches!(
        Sandbox::start(&empty_key).await,
        Err(SandboxError::Options(_))
    ));
}
