//! `validate`: every problem with its line, column and reason; exit codes;
//! the misspelt-column warning (from `run` too).

use crate::common::{HEADER, ORG};
use crate::{Setup, cli, stderr, stdout};

pub fn mixed_rows() -> String {
    [
        HEADER,
        "gate,ev1,inv1,,,,,accepted,,",
        "nobody,ev1,inv2,,,,,sent,,",
        "gate,ev1",
        "gate,ev1,inv3,,,,,maybe,,",
        &format!("om,{ORG},,,,,,,ORG_MEMBER,"),
        "hub,,uuid-1,,,,,pending,,",
        "mighty,acme,1001,ann@example.com,Ann,Lee,,,,",
        "gate,ev1,inv4,,,,,bogus,,",
    ]
    .join("\n")
        + "\n"
}

#[test]
fn validate_reports_every_problem_with_line_column_and_reason() {
    let s = Setup::new(None, "");
    let w = s.world();
    w.write("in.csv", &mixed_rows());
    let o = cli(
        w,
        &["validate", "in.csv", "--config", "invitesync.toml"],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(stderr(&o), "", "no warnings for a well-named header");
    insta::assert_snapshot!("validate_mixed", stdout(&o));

    // Only the groups and totals.
    let o = cli(
        w,
        &[
            "validate",
            "in.csv",
            "-c",
            "invitesync.toml",
            "--max-lines",
            "1",
        ],
        &[],
    );
    let out = stdout(&o);
    assert!(
        out.contains("... and 5 more (--max-lines N prints more)"),
        "{out}"
    );
    assert!(out.contains("8 rows, 2 valid, 6 invalid"), "{out}");
}

#[test]
fn a_misspelt_column_is_pointed_out_by_run_and_validate() {
    let s = Setup::new(None, "");
    let w = s.world();
    w.write(
        "typo.csv",
        "vendor,scope,invite_id,emial,status\nmighty,acme,1001,ann@example.com,\n",
    );
    let hint = "the input has a column `emial` but no `email`: did you mean `email`?";
    let o = cli(w, &["validate", "typo.csv", "-c", "invitesync.toml"], &[]);
    assert!(stderr(&o).contains(hint), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("[mighty] email: required"),
        "{}",
        stdout(&o)
    );
    let o = cli(w, &["run", "typo.csv", "-c", "invitesync.toml"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains(hint), "{}", stderr(&o));
}
