//! `samples/` against the sandbox: every row the README says is `updated`
//! gets a 2xx, every `rejected` one a 404, and the repeated invites land in
//! file order. Sends the requests the way the adapters are specified to
//! (DESIGN §1), without the runner.

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::testkit::*;
use super::*;

fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(name)
}

fn read_csv(name: &str) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_path(sample(name)).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            header
                .iter()
                .cloned()
                .zip(rec.iter().map(str::to_string))
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn samples_apply_as_documented() {
    let options = SandboxOptions {
        seed: Some(sample("seed.csv")),
        ..SandboxOptions::ephemeral()
    };
    let t = Kit::with(options).await;
    let rows = read_csv("invites.csv");
    let expected = read_csv("expected.csv");
    assert!(rows.len() >= 1000);
    assert_eq!(rows.len(), expected.len());

    let mut signer = Signer::new("sandbox-om-private");
    let mut counts: HashMap<String, usize> = HashMap::new();
    for (row, want) in rows.iter().zip(&expected) {
        let outcome = want["outcome"].as_str();
        *counts.entry(outcome.to_string()).or_default() += 1;
        if outcome == "invalid" {
            continue;
        }
        let f = |k: &str| row[k].as_str();
        let request = match f("vendor") {
            "mighty" => {
                let mut body = json!({ "recipient_email": f("email") });
                for (col, field) in [
                    ("first_name", "recipient_first_name"),
                    ("last_name", "recipient_last_name"),
                ] {
                    if !f(col).is_empty() {
                        body[field] = json!(f(col));
                    }
                }
                if !f("sender_id").is_empty() {
                    body["user_id"] = json!(f("sender_id").parse::<u64>().unwrap());
                }
                let path = format!(
                    "/admin/v1/networks/{}/invites/{}/",
                    f("scope"),
                    f("invite_id")
                );
                t.client
                    .patch(t.url(&path))
                    .bearer_auth("sandbox-mighty-token")
                    .header("content-type", "application/json")
                    .body(body.to_string())
            }
            "gate" => t
                .client
                .put(t.url(&format!(
                    "/events/{}/invites/{}",
                    f("scope"),
                    f("invite_id")
                )))
                .header("x-api-key", "sandbox-securegate-key")
                .header("content-type", "application/json")
                .body(json!({ "status": f("status") }).to_string()),
            "om" => {
                let path = format!("/api/public/v1.0/orgs/{}/invites", f("scope"));
                if signer.prompt.is_none() {
                    let r = t.client.patch(t.url(&path)).send().await.unwrap();
                    signer.learn(&r);
                }
                let roles: Vec<&str> = f("roles").split(';').collect();
                t.client
                    .patch(t.url(&path))
                    .header("authorization", signer.sign(&path))
                    .header("content-type", "application/json")
                    .body(json!({ "roles": roles, "username": f("email") }).to_string())
            }
            "hub" => {
                let doc = json!({"data": {"type": "user-invitations", "id": f("invite_id"),
                                          "attributes": {"status": f("status")}}});
                t.client
                    .patch(t.url(&format!("/v3/user-invitations/{}", f("invite_id"))))
                    .header("X-Session-Token", "sandbox-ctrlhub-token")
                    .header("content-type", "application/vnd.api+json")
                    .body(doc.to_string())
            }
            other => panic!("line {}: vendor {other} should be invalid", want["line"]),
        };
        let r = request.send().await.unwrap();
        let status = r.status().as_u16();
        let want_status = if outcome == "updated" { 200 } else { 404 };
        assert_eq!(
            status,
            want_status,
            "line {}: {row:?}: {}",
            want["line"],
            r.text().await.unwrap()
        );
    }
    assert_eq!(counts["invalid"], 10);
    assert_eq!(counts["rejected"], 4);

    let s = t.sandbox.stats();
    let updates: u64 = s.vendors.values().map(|v| v.updates).sum();
    assert_eq!(updates as usize, counts["updated"]);
    let statuses = |key: &str| -> Vec<Value> {
        s.invite(key)
            .unwrap()
            .applied
            .iter()
            .map(|a| serde_json::to_value(&a.value).unwrap())
            .collect()
    };
    assert_eq!(
        statuses("securegate/evt-partner-day/inv-twice-1"),
        [json!({"status": "sent"}), json!({"status": "accepted"})]
    );
    assert_eq!(
        statuses("ops_manager/60af924b1c2d3e4f5a6b7c8d/twice.roles@example.com"),
        [
            json!({"roles": ["ORG_MEMBER"]}),
            json!({"roles": ["ORG_OWNER", "ORG_MEMBER"]})
        ]
    );
    assert_eq!(statuses("mighty_networks/acme/424242").len(), 2);
    let twice = s.invites.values().filter(|i| i.updates == 2).count();
    assert_eq!(twice, 3);
    assert!(s.invites.values().all(|i| i.updates <= 2));
    t.stop().await;
}

#[test]
fn sample_config_reads_the_sample_secrets() {
    let config = crate::config::Config::load(&sample("sandbox.toml"), true).unwrap();
    let want = [
        (
            "gate",
            "securegate",
            vec![("api_key", "sandbox-securegate-key")],
        ),
        (
            "hub",
            "ctrl_hub",
            vec![("session_token", "sandbox-ctrlhub-token")],
        ),
        (
            "mighty",
            "mighty_networks",
            vec![("token", "sandbox-mighty-token")],
        ),
        (
            "om",
            "ops_manager",
            vec![
                ("public_key", "sandbox-om-public"),
                ("private_key", "sandbox-om-private"),
            ],
        ),
    ];
    assert_eq!(config.vendors.len(), want.len());
    let defaults = SandboxOptions::default().credentials();
    assert_eq!(defaults.om_private_key, "sandbox-om-private");
    for ((vendor, mut settings), (name, kind, secrets)) in config.vendors.into_iter().zip(want) {
        assert_eq!((vendor.name.as_str(), vendor.kind.as_str()), (name, kind));
        assert_eq!(vendor.base_url.as_str(), "http://127.0.0.1:8787/");
        for (key, value) in secrets {
            assert_eq!(
                settings.secret(key).unwrap().expose(),
                value,
                "{name}.{key}"
            );
        }
        settings.finish().unwrap();
    }
}
