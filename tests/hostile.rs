//! Malformed and hostile input: never a panic, never a lost row, every line
//! accounted for with its line number.

mod common;

use common::{World, column, read_csv};

async fn outcomes(world: &World, name: &str, bytes: &[u8]) -> (i32, Vec<Vec<String>>) {
    let path = world.path(name);
    std::fs::write(&path, bytes).unwrap();
    let report = world.run_with(world.options(&path)).await;
    match report {
        Ok(r) => {
            let results = path.with_file_name(name.replace(".csv", ".results.csv"));
            (r.exit_code, read_csv(&results))
        }
        Err(e) => (e.code, Vec::new()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_files_are_reported_row_by_row() {
    let world = World::start(None, "").await;

    // CRLF line ends, a BOM, a NUL byte, a 1 MB field, an open quote, junk bytes.
    let mut text = b"\xef\xbb\xbfvendor,scope,invite_id,status\r\ngate,ev1,a,sent\r\n".to_vec();
    text.extend_from_slice(b"gate,ev1,b\x00,sent\r\n");
    text.extend_from_slice(format!("gate,ev1,{},sent\r\n", "x".repeat(1_000_000)).as_bytes());
    text.extend_from_slice(b"gate,\"ev1,c,sent\r\n");
    text.extend_from_slice(b"\xff\xfe\xfd,\x80,\x81,\x82\r\n");
    text.extend_from_slice(b"gate,ev1,../../admin,sent\r\n");
    text.extend_from_slice(b"gate,ev1,d%2F..%2Fx,sent\r\n");
    text.extend_from_slice(b"gate,ev1,e,sent");
    let (code, rows) = outcomes(&world, "hostile.csv", &text).await;
    assert_eq!(code, 1);
    let got = column(&rows, "outcome");
    let errors = column(&rows, "error");
    assert_eq!(got.len(), 8, "one result per line: {got:?} {errors:?}");
    assert_eq!(got[0], "updated");
    assert_eq!(got[1], "invalid", "NUL is a control character in an id");
    assert_eq!(got[2], "invalid", "a 1 MB id is refused before sending");
    assert!(errors[2].contains("line 4: invite_id"), "{}", errors[2]);
    assert_eq!(got[3], "invalid", "open quote");
    assert!(
        errors[3].starts_with("line 5:"),
        "CRLF files keep exact line numbers: {}",
        errors[3]
    );
    assert_eq!(
        got[5], "updated",
        "`../../admin` is sent as one escaped path segment"
    );
    assert_eq!(got[4], "invalid", "not UTF-8");
    assert_eq!(got[7], "updated", "the last line has no line end");
    let stats = world.sandbox.stats();
    assert!(
        stats
            .invites
            .keys()
            .all(|k| k.starts_with("securegate/ev1/")),
        "no request escaped its path: {:?}",
        stats.invites.keys().collect::<Vec<_>>()
    );

    // Header only: a warning and exit 1 (an export that lost its rows), 0 when
    // allowed; empty file, no vendor column: usage errors.
    let (code, rows) = outcomes(&world, "header.csv", b"vendor,status\n").await;
    assert_eq!((code, rows.len()), (1, 1));
    let path = world.path("header.csv");
    let allowed = invitesync::job::RunOptions {
        allow_empty: true,
        new_run: true,
        ..world.options(&path)
    };
    assert_eq!(
        world.run_with(allowed).await.map(|r| r.exit_code).ok(),
        Some(0)
    );
    let (code, _) = outcomes(&world, "empty.csv", b"").await;
    assert_eq!(code, 2);
    let (code, _) = outcomes(&world, "novendor.csv", b"a,b\n1,2\n").await;
    assert_eq!(code, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_the_same_state_file_is_refused() {
    let world = World::start(None, "").await;
    let input = world.write("in.csv", "vendor,scope,invite_id,status\ngate,e,i,sent\n");
    let _held = invitesync::state::StateLock::acquire(&world.path("invitesync.db")).unwrap();
    let cfg = world.config.to_str().unwrap().to_string();
    let out = world.cli(&["run", input.to_str().unwrap(), "--config", &cfg]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains(&std::process::id().to_string()),
        "names the holder: {err}"
    );
}
