//! Scenario 8: the state writer against a bare insert loop.

use tokio::runtime::Runtime;

use crate::Res;
use crate::report::Report;
use crate::settings::Settings;

pub(crate) fn checkpoint(s: &Settings, _rt: &Runtime, report: &mut Report) -> Res<()> {
    let (rows, rounds) = (s.sizes.writer_rows, s.sizes.writer_rounds);
    println!(
        "\n== checkpoint: state writer vs bare batched inserts, {rows} rows, best of {rounds}"
    );
    let b = invitesync::state::bench::bench_writer(rows, rounds).map_err(|e| e.to_string())?;
    report.detail(format!(
        "checkpoint ({rows} rows, best of {rounds} alternating rounds, commit every 1,000): writer {:.0} rows/s, bare rusqlite loop {:.0} rows/s",
        b.writer_rows_per_s, b.bare_rows_per_s
    ));
    let ratio = b.ratio();
    report.row(
        "checkpoint: writer / bare insert loop",
        format!("{ratio:.2}"),
        ">= 0.70",
        Some(ratio >= 0.70),
    );
    report.row(
        "checkpoint: writer rows/s",
        format!("{:.0}", b.writer_rows_per_s),
        "> 200,000",
        Some(b.writer_rows_per_s > 200_000.0),
    );
    Ok(())
}
