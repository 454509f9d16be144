//! The report.

use std::fmt::Write as _;

pub(crate) struct Row {
    pub(crate) scenario: String,
    pub(crate) measured: String,
    pub(crate) target: String,
    /// `None`: not measured (a tool is missing, or the scenario failed).
    pub(crate) pass: Option<bool>,
}

#[derive(Default)]
pub(crate) struct Report {
    pub(crate) rows: Vec<Row>,
    pub(crate) details: Vec<String>,
}

impl Report {
    pub(crate) fn row(
        &mut self,
        scenario: &str,
        measured: String,
        target: &str,
        pass: Option<bool>,
    ) {
        let verdict = match pass {
            Some(true) => "pass",
            Some(false) => "MISS",
            None => "n/a",
        };
        println!("  => {scenario}: {measured} (target {target}): {verdict}");
        self.rows.push(Row {
            scenario: scenario.to_string(),
            measured,
            target: target.to_string(),
            pass,
        });
    }

    pub(crate) fn detail(&mut self, line: String) {
        println!("     {line}");
        self.details.push(line);
    }

    pub(crate) fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "| scenario | measured | target | result |");
        let _ = writeln!(s, "|---|---|---|---|");
        for r in &self.rows {
            let verdict = match r.pass {
                Some(true) => "pass",
                Some(false) => "**miss**",
                None => "n/a",
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                r.scenario, r.measured, r.target, verdict
            );
        }
        s
    }
}
