//! `--help` of every command, `--version`, completions and man pages.

use clap::CommandFactory;

use crate::{bare, stderr, stdout};

#[test]
fn every_command_has_help_with_examples() {
    let top = invitesync::cli::Cli::command();
    let names: Vec<String> = top
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    assert!(names.len() >= 7, "{names:?}");
    for name in &names {
        let o = bare(&[name, "--help"]);
        let out = stdout(&o);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
        assert!(out.contains("\nExamples:\n"), "{name} --help: {out}");
        assert!(
            out.contains(&format!("\n  invitesync {name}")),
            "{name} --help has an example of itself: {out}"
        );
    }
    // Help wraps at the terminal's width: compare with spaces collapsed.
    let run = stdout(&bare(&["run", "--help"]))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for line in [
        "(overrides `[run] concurrency`)",
        "(overrides `[run] state`",
        "(overrides `[run] results`",
        "--dry-run",
        "--quiet",
    ] {
        assert!(run.contains(line), "run --help lacks {line}: {run}");
    }
}

#[test]
fn top_level_help_lists_the_commands_and_exit_codes() {
    let o = bare(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    insta::assert_snapshot!("help", stdout(&o));
}

#[test]
fn version_names_the_release() {
    let o = bare(&["--version"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        format!("invitesync {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn completions_for_each_shell_know_the_commands() {
    for shell in ["bash", "zsh", "fish"] {
        let o = bare(&["completions", shell]);
        let out = stdout(&o);
        assert_eq!(o.status.code(), Some(0), "{shell}");
        for word in ["validate", "export", "dry-run", "config"] {
            assert!(out.contains(word), "{shell} completions lack {word}");
        }
    }
    let o = bare(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn man_pages_come_from_the_same_definitions() {
    let page = stdout(&bare(&["man"]));
    assert!(
        page.starts_with(".ie"),
        "roff: {}",
        &page[..40.min(page.len())]
    );
    assert!(page.contains(".TH invitesync 1"), "{page}");
    assert!(page.contains("validate"), "lists the commands");
    let run = stdout(&bare(&["man", "run"]));
    assert!(run.contains(".TH invitesync-run 1"), "{run}");
    assert!(run.contains("dry\\-run"), "run's options are on its page");
    let o = bare(&["man", "nope"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err.contains("no command `nope`; one of: run, validate"),
        "{err}"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let o = bare(&["man", "--out-dir", dir.path().to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for page in ["invitesync.1", "invitesync-run.1", "invitesync-validate.1"] {
        assert!(dir.path().join(page).exists(), "{page}");
    }
}
