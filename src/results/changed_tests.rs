//! The results file of an input that is no longer the file the run read:
//! never written, and the error says how it differs.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Ending, ResultsWriter, Select, WriteError};
use crate::input::{Held, InputRow, Layout};

const FOUR: &str = "vendor,invite_id\ngate,a\ngate,b\ngate,c\ngate,d\n";

/// A writer for which every row is this run's.
type EveryRow = ResultsWriter<fn(&InputRow) -> bool>;

fn updated() -> Ending<'static> {
    Ending {
        outcome: "updated",
        ..Ending::default()
    }
}

/// `in` (named `name` in `dir`) as the run read and fingerprinted it, then
/// `now` in its place (unless `None`), and a writer of the results to
/// `out.csv`, where an earlier results file lies.
fn writer(dir: &Path, name: &str, read: &[u8], now: Option<&[u8]>) -> (PathBuf, EveryRow) {
    let input = dir.join(name);
    std::fs::write(&input, read).unwrap();
    let recorded = crate::input::scan(&input, &Layout::default())
        .unwrap()
        .0
        .now;
    if let Some(now) = now {
        std::fs::write(&input, now).unwrap();
    }
    let out = dir.join("out.csv");
    std::fs::write(&out, "earlier results\n").unwrap();
    let all: fn(&InputRow) -> bool = |_| true;
    let w = ResultsWriter::create(
        &input,
        &Layout::default(),
        &recorded,
        &out,
        Select::All,
        all,
    )
    .unwrap();
    (out, w)
}

/// The earlier results file is still there, and nothing else was left.
fn untouched(dir: &Path, out: &Path) {
    assert_eq!(std::fs::read_to_string(out).unwrap(), "earlier results\n");
    let tmp: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
}

#[test]
fn an_input_cut_short_says_how_many_rows_it_still_has() {
    let dir = tempfile::tempdir().unwrap();
    let cut = "vendor,invite_id\ngate,a\ngate,b\n";
    let (out, mut w) = writer(dir.path(), "in.csv", FOUR.as_bytes(), Some(cut.as_bytes()));
    w.row(0, &updated()).unwrap();
    let e = w.row(2, &updated()).unwrap_err();
    assert_eq!(
        e,
        WriteError::InputChanged("it now ends after 2 rows, but the run recorded row 3".into())
    );
    drop(w);
    untouched(dir.path(), &out);
}

#[test]
fn rows_appended_after_the_count_leave_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let more = format!("{FOUR}gate,e\n");
    let (out, mut w) = writer(dir.path(), "in.csv", FOUR.as_bytes(), Some(more.as_bytes()));
    for index in 0..4 {
        w.row(index, &updated()).unwrap();
    }
    let e = w.finish().unwrap_err();
    assert!(
        matches!(&e, WriteError::InputChanged(how) if how.contains("fingerprint")),
        "{e:?}"
    );
    untouched(dir.path(), &out);
}

#[test]
fn rows_appended_to_a_held_input_are_not_read_and_leave_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(&input, FOUR).unwrap();
    let held = Held::open(&input).unwrap();
    let (out, mut w) = writer(dir.path(), "in.csv", FOUR.as_bytes(), None);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&input)
        .unwrap();
    f.write_all(b"gate,e\n").unwrap();
    for index in 0..4 {
        w.row(index, &updated()).unwrap();
    }
    let e = w.finish().unwrap_err();
    assert_eq!(
        e,
        WriteError::InputChanged(
            "7 bytes were added at its end after the run counted its rows, and were not sent"
                .into()
        )
    );
    drop(held);
    untouched(dir.path(), &out);
}

#[test]
fn an_edit_in_place_that_keeps_every_row_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let edited = FOUR.replace("gate,b", "gate,z");
    let (out, mut w) = writer(
        dir.path(),
        "in.csv",
        FOUR.as_bytes(),
        Some(edited.as_bytes()),
    );
    w.row(1, &updated()).unwrap();
    let e = w.finish().unwrap_err();
    assert!(matches!(e, WriteError::InputChanged(_)), "{e:?}");
    untouched(dir.path(), &out);
}

#[test]
fn a_compressed_input_is_checked_by_its_bytes_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(FOUR.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let (out, mut w) = writer(dir.path(), "in.csv.gz", &gz, None);
    w.row(3, &updated()).unwrap();
    w.finish().unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(text.ends_with("gate,d,updated,,0,,,,\n"), "{text}");
}

#[test]
fn a_compressed_input_cut_short_in_place_is_a_change_not_damage() {
    let dir = tempfile::tempdir().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(FOUR.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let cut = &gz[..gz.len() - 4];
    let (out, mut w) = writer(dir.path(), "in.csv.gz", &gz, Some(cut));
    // Its rows are all there; its end is not.
    w.row(3, &updated()).unwrap();
    let e = w.finish().unwrap_err();
    assert!(
        matches!(&e, WriteError::InputChanged(how) if how.contains("truncated")),
        "{e:?}"
    );
    untouched(dir.path(), &out);
}

#[test]
fn an_input_emptied_in_place_is_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(&input, FOUR).unwrap();
    let recorded = crate::input::scan(&input, &Layout::default())
        .unwrap()
        .0
        .now;
    std::fs::write(&input, "").unwrap();
    let out = dir.path().join("out.csv");
    let all: fn(&InputRow) -> bool = |_| true;
    let e = ResultsWriter::create(
        &input,
        &Layout::default(),
        &recorded,
        &out,
        Select::All,
        all,
    )
    .err()
    .unwrap();
    assert!(
        matches!(&e, WriteError::InputChanged(how) if how.contains("the file is empty")),
        "{e:?}"
    );
}

#[test]
fn a_file_moved_over_a_held_input_is_not_the_one_read() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(&input, FOUR).unwrap();
    let held = Held::open(&input).unwrap();
    let recorded = crate::input::scan(&input, &Layout::default())
        .unwrap()
        .0
        .now;
    let other = dir.path().join("other.csv");
    std::fs::write(&other, FOUR.replace("gate,", "gate,new-")).unwrap();
    std::fs::rename(&other, &input).unwrap();
    let out = dir.path().join("out.csv");
    let all: fn(&InputRow) -> bool = |_| true;
    let mut w = ResultsWriter::create(
        &input,
        &Layout::default(),
        &recorded,
        &out,
        Select::All,
        all,
    )
    .unwrap();
    w.row(0, &updated()).unwrap();
    w.finish().unwrap();
    drop(held);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("gate,a,updated"), "{text}");
    assert!(!text.contains("new-"), "{text}");
}
