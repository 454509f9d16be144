//! Ops Manager's HTTP Digest: one challenge, then a counting nonce, and a
//! stale nonce answered by one retry, never a 401 round trip per row.

mod common;

use common::{HEADER, ORG, World, column, read_csv};
use invitesync::sandbox::{Kind, Sandbox, SandboxOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_reuses_the_nonce_and_rides_through_stale_ones() {
    let mut world = World::start(None, "").await;
    // A sandbox whose nonces go stale every 100 uses.
    let options = SandboxOptions {
        nonce_max_uses: 100,
        ..SandboxOptions::ephemeral()
    };
    world.sandbox = Sandbox::start(&options).await.unwrap();
    world.write_config("");
    let rows = 1000;
    let mut text = String::from(HEADER) + "\n";
    for i in 0..rows {
        text.push_str(&format!("om,{ORG},,user{i}@example.com,,,,,ORG_MEMBER,\n"));
    }
    let input = world.write("om.csv", &text);
    let report = world.run(&input).await;
    assert_eq!(report.exit_code, 0, "{report:?}");
    let results = read_csv(&world.path("om.results.csv"));
    assert!(column(&results, "outcome").iter().all(|o| o == "updated"));
    let om = world.sandbox.stats().vendor(Kind::OpsManager);
    assert_eq!(om.updates, rows as u64);
    let challenges = om.status(401);
    // One challenge to start, one per stale nonce (about rows / 100), plus a
    // few for requests in flight when a nonce went stale.
    assert!(
        challenges >= 5,
        "nonces did go stale ({challenges} challenges)"
    );
    assert!(
        challenges < rows as u64 / 5,
        "{challenges} challenges for {rows} rows: the nonce is not reused"
    );
}
