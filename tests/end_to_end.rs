//! The whole path, CSV in to results out, against the in-process sandbox.

mod common;

use common::{HEADER, ORG, World, column, read_csv};
use invitesync::sandbox::Kind;

fn seed() -> String {
    format!(
        "kind,scope,invite_id,email,first_name,last_name,status,roles\n\
         mighty_networks,acme,1001,ann@example.com,Ann,Lee,,\n\
         securegate,ev1,inv1,gus@example.com,Gus,Ray,pending,\n\
         securegate,ev1,inv2,hal@example.com,Hal,Ng,pending,\n\
         ops_manager,{ORG},,bob@example.com,,,,ORG_MEMBER\n\
         ctrl_hub,,uuid-1,cat@example.com,,,pending,\n"
    )
}

/// A vendor nothing listens for: its rows stay pending, never `failed`.
const DOWN: &str = r#"
[vendors.down]
kind = "securegate"
base_url = "http://127.0.0.1:1"
api_key = { file = "secrets/gate" }
max_attempts = 2
"#;

fn input() -> String {
    [
        HEADER,
        "mighty,acme,1001,ann@example.com,Ann,Lee,,,,first",
        "gate,ev1,inv1,,,,,accepted,,",
        &format!("om,{ORG},,Bob@Example.com,,,,,ORG_MEMBER;ORG_OWNER,"),
        "hub,,uuid-1,,,,,rejected,,",
        "gate,ev1,inv2,,,,,maybe,,",
        "gate,ev1,nope,,,,,sent,,",
        "hub,,uuid-1,,,,,pending,,",
        "down,ev1,inv9,,,,,sent,,",
        "nobody,ev1,inv1,,,,,sent,,",
        "gate,ev1",
        "gate,ev1,inv2,,,,,sent,,=HYPERLINK(\"http://evil\")",
    ]
    .join("\n")
        + "\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_outcome_is_right_and_each_valid_row_lands_once() {
    let world = World::start(Some(&seed()), DOWN).await;
    let input = world.write("invites.csv", &input());
    let report = world.run(&input).await;
    assert_eq!(report.exit_code, 3, "a vendor stopped: resumable");
    assert!(
        report.stopped.len() == 1
            && report.stopped[0].contains("[vendors.down] 127.0.0.1:1 refused the connection"),
        "{:?}",
        report.stopped
    );

    let results = read_csv(&world.path("invites.results.csv"));
    assert_eq!(results.len(), 12, "header plus one line per input row");
    assert_eq!(
        column(&results, "outcome"),
        [
            "updated", "updated", "updated", "updated", "invalid", "rejected", "invalid",
            "pending", "invalid", "invalid", "updated"
        ]
    );
    assert_eq!(
        column(&results, "note")[0],
        "first",
        "unknown columns are carried"
    );
    assert_eq!(
        column(&results, "note")[10],
        "'=HYPERLINK(\"http://evil\")",
        "formulas are neutralised"
    );
    assert_eq!(column(&results, "http_status")[5], "404");
    let errors = column(&results, "error");
    assert!(errors[4].contains("status"), "{}", errors[4]);
    assert!(errors[6].contains("status"), "{}", errors[6]);
    assert_eq!(errors[7], "", "nothing is wrong with the row");
    assert!(
        errors[8].contains("unknown vendor `nobody`"),
        "{}",
        errors[8]
    );
    assert!(errors[9].contains("line 11"), "{}", errors[9]);
    assert_eq!(column(&results, "remote_id")[1], "inv1");

    let stats = world.sandbox.stats();
    for key in [
        "mighty_networks/acme/1001".to_string(),
        "securegate/ev1/inv1".to_string(),
        format!("ops_manager/{ORG}/bob@example.com"),
        "ctrl_hub/uuid-1".to_string(),
        "securegate/ev1/inv2".to_string(),
    ] {
        let s = stats
            .invite(&key)
            .unwrap_or_else(|| panic!("{key} reached the sandbox"));
        assert_eq!(s.updates, 1, "{key} applied exactly once");
    }
    assert_eq!(stats.vendor(Kind::Securegate).updates, 2);

    // The failed-rows file is in the input format, ready to fix and feed back.
    let failed = read_csv(&world.path("invites.failed.csv"));
    assert_eq!(failed[0].last().map(String::as_str), Some("error"));
    assert_eq!(failed.len(), 1 + 5);

    // A new run of the same file: the ledger knows every applied change.
    let again = world
        .run_with(invitesync::job::RunOptions {
            new_run: true,
            ..world.options(&input)
        })
        .await
        .expect("run completes");
    let results = read_csv(&world.path("invites.results.csv"));
    assert_eq!(
        column(&results, "outcome"),
        [
            "unchanged",
            "unchanged",
            "unchanged",
            "unchanged",
            "invalid",
            "rejected",
            "invalid",
            "pending",
            "invalid",
            "invalid",
            "unchanged"
        ]
    );
    assert_eq!(again.exit_code, 3);
    let stats2 = world.sandbox.stats();
    assert_eq!(
        stats2.vendor(Kind::Securegate).updates,
        2,
        "nothing already applied was sent again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_for_one_invite_land_in_file_order() {
    let world = World::start(None, "").await;
    let statuses = ["pending", "sent", "accepted", "rejected"];
    let mut text = String::from(HEADER) + "\n";
    let mut expected = Vec::new();
    for i in 0..400 {
        let s = statuses[(i * 7 + i / 3) % 4];
        text.push_str(&format!("gate,ev1,hot,,,,,{s},,\n"));
        expected.push(s.to_string());
        // Other invites in between, which must not wait for the hot one.
        text.push_str(&format!("gate,ev1,cold{i},,,,,sent,,\n"));
    }
    let input = world.write("order.csv", &text);
    let report = world.run(&input).await;
    assert_eq!(report.exit_code, 0);
    let stats = world.sandbox.stats();
    let hot = stats.invite("securegate/ev1/hot").expect("hot invite");
    let landed: Vec<String> = hot
        .applied
        .iter()
        .map(|a| {
            serde_json::to_value(&a.value).unwrap()["status"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    // Consecutive equal statuses collapse into `unchanged` (the ledger), so
    // compare with the file's order with repeats removed.
    let mut dedup = expected.clone();
    dedup.dedup();
    assert_eq!(landed, dedup);
    assert_eq!(
        stats.vendor(Kind::Securegate).updates as usize,
        dedup.len() + 400
    );
}

#[test]
fn the_binary_runs_validates_reports_and_exports() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let world = rt.block_on(World::start(Some(&seed()), DOWN));
    let input = world.write("invites.csv", &input());
    let cfg = world.config.to_str().unwrap().to_string();

    let v = world.cli(&["validate", "invites.csv", "--config", &cfg]);
    assert_eq!(v.status.code(), Some(1));
    let out = String::from_utf8_lossy(&v.stdout);
    assert!(out.contains("11 rows, 7 valid, 4 invalid"), "{out}");

    let r = world.cli(&["run", "invites.csv", "--config", &cfg]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(3), "{err}");
    assert!(err.contains("results:"), "{err}");
    assert!(err.contains("to resume:"), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "no terminal codes when stderr is not a terminal: {err}"
    );
    assert!(input.with_file_name("invites.results.csv").exists());

    let s = world.cli(&["status"]);
    assert_eq!(s.status.code(), Some(0));
    let out = String::from_utf8_lossy(&s.stdout);
    assert!(out.contains("interrupted"), "{out}");

    let e = world.cli(&["export", "--only", "failed", "--output", "fix.csv"]);
    assert_eq!(
        e.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&e.stderr)
    );
    let fix = read_csv(&world.path("fix.csv"));
    assert_eq!(fix.len(), 6);
    rt.block_on(async { drop(world) });
}
