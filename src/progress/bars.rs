//! The terminal display: one bar for the whole run (rows, rate, ETA) and one
//! line per vendor account with its counts, retries and concurrency.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use console::style;
use indicatif::{HumanCount, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::outcome::Outcome;
use crate::send::Target;
use crate::tally::{Tally, VendorTally};

use super::{Expected, through};

/// Redraws per second: enough to look alive, cheap enough to be invisible.
const HZ: u8 = 5;

const TEMPLATE: &str = "{spinner:.green} {elapsed_precise} [{wide_bar:.cyan/blue}] \
{human_pos}/{human_len} rows  {per_sec:0}  ETA {eta}{msg}";

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
            .progress_chars("=> "),
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
    let line_style = ProgressStyle::with_template("  {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
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
                lines.iter().for_each(ProgressBar::finish_and_clear);
                unrouted.finish_and_clear();
                let _ = multi.clear();
                through::hide();
                return;
            }
        }
    })
}

/// The name shown for rows that name no configured vendor.
const UNROUTED: &str = "(no vendor)";

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

/// `  label 1,204`, the number right-aligned so vendors' lines line up.
fn count(s: &mut String, label: &str, n: u64, tone: Tone) {
    let number = format!("{:>7}", HumanCount(n).to_string());
    let number = if n > 0 { paint(number, tone) } else { number };
    s.push_str("  ");
    s.push_str(label);
    s.push(' ');
    s.push_str(&number);
}

/// One vendor's line: `gate  updated 1,204  unchanged 3 ... concurrency 16`.
/// `target` is `None` for the rows that named no known vendor (they are all
/// invalid, and nothing is sent for them).
pub fn vendor_line(
    counts: &VendorTally,
    target: Option<&Target>,
    width: usize,
    dry_run: bool,
) -> String {
    let name = target.map_or(UNROUTED, |t| t.name.as_str());
    let mut s = format!("{name:<width$}");
    let outcomes: &[Outcome] = if target.is_none() {
        &[Outcome::Invalid]
    } else if dry_run {
        &[Outcome::Updated, Outcome::Unchanged, Outcome::Invalid]
    } else {
        &Outcome::ALL
    };
    for o in outcomes {
        let label = match o {
            Outcome::Updated if dry_run => "would send",
            o => o.as_str(),
        };
        count(&mut s, label, counts.count(*o), tone(*o));
    }
    let Some(target) = target else { return s };
    if dry_run {
        return s;
    }
    let retrying = counts.retrying.load(Ordering::Relaxed);
    count(&mut s, "retrying", retrying, Tone::Warn);
    s.push_str(&format!("  concurrency {:>3}", target.limit.limit()));
    if let Some(r) = target.pace.learned_rate() {
        s.push_str(&format!("  pace {r:.0}/s"));
    }
    if target.circuit.is_open() {
        s.push_str("  ");
        s.push_str(&style("STOPPED").for_stderr().red().bold().to_string());
    }
    s
}
