//! Per-invite order: the changes to one invite land in file order, one at a
//! time, without holding up the other invites.

use invitesync::sandbox::{Faults, Kind};

use crate::common::{HEADER, ORG, World};
use crate::model::{GATE, latency, outcomes, set_faults};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_rows_for_one_invite_land_in_file_order_and_others_do_not_wait() {
    let world = World::start(None, "").await;
    set_faults(&world, latency(3), &[]);
    // 500 changes to one invite first, each different from the one before,
    // then 2,000 other invites: they must get past the queue of the first.
    let mut rng = fastrand::Rng::with_seed(3);
    let mut text = String::from(HEADER) + "\n";
    let mut hot = Vec::new();
    let mut s = 0usize;
    for _ in 0..500 {
        s = (s + 1 + rng.usize(..3)) % 4;
        text.push_str(&format!("gate,ev1,hot,,,,,{},,\n", GATE[s]));
        hot.push(GATE[s].to_string());
    }
    for i in 0..2000 {
        text.push_str(&format!("gate,ev2,cold{i},,,,,sent,,\n"));
    }
    let input = world.write("order.csv", &text);
    let mut opts = world.options(&input);
    opts.fixed_concurrency = true;
    let report = world.run_with(opts).await.expect("run");
    assert_eq!(report.exit_code, 0);

    let stats = world.sandbox.stats();
    let applied = &stats.invite("securegate/ev1/hot").expect("hot").applied;
    let landed: Vec<String> = applied
        .iter()
        .map(|a| match &a.value {
            invitesync::sandbox::AppliedValue::Status { status } => status.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(landed, hot, "the hot invite's changes land in file order");

    let mut last_cold = 0;
    for i in 0..2000 {
        let c = stats
            .invite(&format!("securegate/ev2/cold{i}"))
            .expect("cold invite");
        assert_eq!(c.updates, 1);
        last_cold = last_cold.max(c.applied[0].seq);
    }
    let hot_before = applied.iter().filter(|a| a.seq < last_cold).count();
    assert!(
        hot_before < 350,
        "the other invites finished while the hot one was still going \
         ({hot_before} of its 500 changes had landed)"
    );
}

/// A row queued behind its invite must not be judged against a ledger
/// lookup made before an earlier row of the same invite was applied, even
/// when the row in between was refused and other rows moved the commit
/// watermark on meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_row_sees_what_its_invite_received_before_it() {
    let world = World::start(None, "").await;
    let email = "queue@example.com";
    let key = format!("ops_manager/{ORG}/{email}");
    let input = world.write(
        "q.csv",
        &format!("{HEADER}\nom,{ORG},,{email},,,,,ORG_MEMBER,\n"),
    );
    assert_eq!(world.run(&input).await.exit_code, 0);

    // Slow Ops Manager, so the rows behind the first wait long enough for
    // the writer to commit it while many Securegate rows are read.
    set_faults(
        &world,
        Faults::default(),
        &[
            (Kind::OpsManager, latency(1000)),
            (Kind::Securegate, latency(10)),
        ],
    );
    let mut text = format!(
        "{HEADER}\n\
         om,{ORG},,{email},,,,,ORG_OWNER,first\n\
         om,{ORG},,{email},,,,,ORG_WIZARD,refused\n\
         om,{ORG},,{email},,,,,ORG_MEMBER,back\n"
    );
    for i in 0..6000 {
        text.push_str(&format!("gate,ev1,q{i},,,,,sent,,\n"));
    }
    world.write("q.csv", &text);
    world.sandbox.reset_stats();
    let report = world.run(&input).await;
    assert_eq!(report.exit_code, 1, "the refused row needs attention");
    let outs = outcomes(&world.path("q.results.csv"));
    assert_eq!(&outs[..3], ["updated", "rejected", "updated"]);
    let stats = world.sandbox.stats();
    let roles: Vec<_> = stats
        .invite(&key)
        .expect("invite")
        .applied
        .iter()
        .map(|a| serde_json::to_value(&a.value).expect("json")["roles"].clone())
        .collect();
    assert_eq!(
        roles,
        [
            serde_json::json!(["ORG_OWNER"]),
            serde_json::json!(["ORG_MEMBER"])
        ],
        "the vendor ends with the file's last value"
    );
}
