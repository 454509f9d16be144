//! The terminal display: one bar for the whole run (rows, rate, ETA) and one
//! line per vendor account with its counts, retries and concurrency.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use console::style;
use indicatif::{
    HumanCount, HumanDuration, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState,
    ProgressStyle,
};
use tokio_util::sync::CancellationToken;

use crate::outcome::Outcome;
use crate::send::Target;
use crate::tally::{Tally, VendorTally};

use super::{Expected, through};

/// Redraws per second: enough to look alive, cheap enough to be invisible.
const HZ: u8 = 5;

const TEMPLATE: &str = "{spinner:.green} {elapsed_precise} [{wide_bar:.cyan/blue}] \
{human_pos}/{human_len} rows  {per_sec:0}  ETA {eta}{msg}";

/// The ETA, or `?` until the first row is done: indicatif's own says `0s`
/// then, which reads as "almost finished" at the very start.
fn eta(state: &ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = if state.pos() == 0 {
        w.write_str("?")
    } else {
        write!(w, "{:#}", HumanDuration(state.eta()))
    };
}

/// Draws the bars until `stop`, then clears them (the summary follows).
pub(super) fn spawn(
    tally: Arc<Tally>,
    targets: Arc<Vec<Target>>,
    expected: Expected,
    dry_run: bool,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(HZ));
    let bar = multi.add(ProgressBar::new(expected.rows(&tally)));
    // The template is a constant: it parses, and if it ever did not, a bar
    // without it is still a bar.
    bar.set_style(
        ProgressStyle::with_template(TEMPLATE)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ")
            .with_key("eta", eta),
    );
    if dry_run {
        bar.set_message("  (dry run: nothing is sent)");
    }
    let width = targets
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(0)
        .max(UNROUTED.len());
    let line_style =
        ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_spinner());
    let header = multi.add(ProgressBar::new_spinner());
    header.set_style(line_style.clone());
    header.set_message(header_line(width, dry_run));
    let lines: Vec<ProgressBar> = targets
        .iter()
        .map(|_| {
            let l = multi.add(ProgressBar::new_spinner());
            l.set_style(line_style.clone());
            l
        })
        .collect();
    // Rows naming no configured vendor get a line once there are any.
    let unrouted = ProgressBar::new_spinner();
    unrouted.set_style(line_style);
    through::show(&multi);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(1000 / u64::from(HZ)));
        let mut unrouted_shown = false;
        loop {
            let stopping = tokio::select! {
                _ = tick.tick() => false,
                _ = stop.cancelled() => true,
            };
            let finished = tally.finished();
            bar.set_length(expected.rows(&tally).max(finished));
            bar.set_position(finished);
            for (l, t) in lines.iter().zip(targets.iter()) {
                l.set_message(vendor_line(
                    tally.vendor(Some(t.id)),
                    Some(t),
                    width,
                    dry_run,
                ));
            }
            if tally.unrouted().finished() > 0 {
                if !unrouted_shown {
                    multi.add(unrouted.clone());
                    unrouted_shown = true;
                }
                unrouted.set_message(vendor_line(tally.unrouted(), None, width, dry_run));
            }
            if stopping {
                bar.finish_and_clear();
                header.finish_and_clear();
                lines.iter().for_each(ProgressBar::finish_and_clear);
                unrouted.finish_and_clear();
                let _ = multi.clear();
                through::hide();
                return;
            }
        }
    })
}

/// The name shown for rows that name no configured vendor (as in the summary).
const UNROUTED: &str = "(no vendor)";

/// A column of the vendor table after the vendor's name.
#[derive(Clone, Copy)]
enum Col {
    Outcome(Outcome),
    Retrying,
    Concurrency,
}

/// The table's columns: a dry run sends nothing, so it has no retries,
/// refusals or concurrency to show.
fn columns(dry_run: bool) -> &'static [(&'static str, Col)] {
    if dry_run {
        &[
            ("would send", Col::Outcome(Outcome::Updated)),
            ("unchanged", Col::Outcome(Outcome::Unchanged)),
            ("invalid", Col::Outcome(Outcome::Invalid)),
        ]
    } else {
        &[
            ("updated", Col::Outcome(Outcome::Updated)),
            ("unchanged", Col::Outcome(Outcome::Unchanged)),
            ("invalid", Col::Outcome(Outcome::Invalid)),
            ("rejected", Col::Outcome(Outcome::Rejected)),
            ("failed", Col::Outcome(Outcome::Failed)),
            ("retrying", Col::Retrying),
            ("concurrency", Col::Concurrency),
        ]
    }
}

/// Room for the label, and for counts up to 9,999,999 under short labels:
/// the table stays within about 80 columns.
fn cell_width(label: &str) -> usize {
    label.len().max(7)
}

/// How a count is coloured when it is not zero (and colours are on: a
/// terminal, no `NO_COLOR`).
#[derive(Clone, Copy)]
enum Tone {
    Plain,
    Good,
    Warn,
    Bad,
}

fn paint(text: String, tone: Tone) -> String {
    let s = style(text).for_stderr();
    match tone {
        Tone::Plain => s,
        Tone::Good => s.green(),
        Tone::Warn => s.yellow(),
        Tone::Bad => s.red(),
    }
    .to_string()
}

fn tone(o: Outcome) -> Tone {
    match o {
        Outcome::Updated => Tone::Good,
        Outcome::Unchanged => Tone::Plain,
        Outcome::Invalid | Outcome::Rejected => Tone::Warn,
        Outcome::Failed => Tone::Bad,
    }
}

/// The table's header: `vendor  updated  unchanged ... concurrency`.
pub fn header_line(width: usize, dry_run: bool) -> String {
    let mut s = format!("{:<width$}", "vendor");
    for (label, _) in columns(dry_run) {
        s.push_str(&format!("  {label:>w$}", w = cell_width(label)));
    }
    s
}

/// One vendor's row of the table. `target` is `None` for the rows that
/// named no known vendor: they are all invalid, and nothing is sent for them.
pub fn vendor_line(
    counts: &VendorTally,
    target: Option<&Target>,
    width: usize,
    dry_run: bool,
) -> String {
    let name = target.map_or(UNROUTED, |t| t.name.as_str());
    let mut s = format!("{name:<width$}");
    for (label, col) in columns(dry_run) {
        let w = cell_width(label);
        let (n, tone) = match (col, target) {
            (Col::Outcome(o), Some(_)) | (Col::Outcome(o @ Outcome::Invalid), None) => {
                (counts.count(*o), tone(*o))
            }
            (Col::Retrying, Some(_)) => (counts.retrying.load(Ordering::Relaxed), Tone::Warn),
            (Col::Concurrency, Some(t)) => (t.limit.limit() as u64, Tone::Plain),
            _ => {
                s.push_str(&format!("  {:w$}", ""));
                continue;
            }
        };
        let cell = format!("{:>w$}", HumanCount(n).to_string());
        s.push_str("  ");
        s.push_str(&if n > 0 { paint(cell, tone) } else { cell });
    }
    let Some(target) = target else {
        return s.trim_end().to_string();
    };
    if dry_run {
        return s;
    }
    if let Some(r) = target.pace.learned_rate() {
        s.push_str(&format!("  pace {r:.0}/s"));
    }
    if target.circuit.is_open() {
        s.push_str("  ");
        s.push_str(&style("STOPPED").for_stderr().red().bold().to_string());
    }
    s
}
