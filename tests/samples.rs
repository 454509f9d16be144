//! The shipped sample: every row ends with the outcome `samples/expected.csv` gives it.

mod common;

use common::{World, column, read_csv};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_migration_ends_as_expected() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let seed = std::fs::read_to_string(root.join("seed.csv")).unwrap();
    let world = World::start(Some(&seed), "").await;
    let input = world.write(
        "invites.csv",
        &std::fs::read_to_string(root.join("invites.csv")).unwrap(),
    );
    let report = world.run(&input).await;
    assert_eq!(report.exit_code, 1);

    let expected = read_csv(&root.join("expected.csv"));
    let want = column(&expected, "outcome");
    let got = column(&read_csv(&world.path("invites.results.csv")), "outcome");
    assert_eq!(got.len(), want.len());
    let wrong: Vec<String> = got
        .iter()
        .zip(&want)
        .enumerate()
        .filter(|(_, (g, w))| g != w)
        .map(|(i, (g, w))| format!("line {}: got {g}, expected {w}", i + 2))
        .collect();
    assert!(wrong.is_empty(), "{wrong:?}");

    // The repeated invites landed in file order.
    let stats = world.sandbox.stats();
    let twice = stats
        .invite("securegate/evt-partner-day/inv-twice-1")
        .expect("twice");
    let statuses: Vec<String> = twice
        .applied
        .iter()
        .map(|a| {
            serde_json::to_value(&a.value).unwrap()["status"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(statuses, ["sent", "accepted"]);
}
