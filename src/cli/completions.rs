//! Shell completions and man pages, generated from the same definitions as
//! `--help` so they never disagree.

use std::io::Write;
use std::path::PathBuf;

use clap::CommandFactory;

use super::{Cli, exit, fail};

const COMPLETIONS_HELP: &str = "\
Examples:
  invitesync completions bash > /etc/bash_completion.d/invitesync
  invitesync completions zsh > \"${fpath[1]}/_invitesync\"
  invitesync completions fish > ~/.config/fish/completions/invitesync.fish";

const MAN_HELP: &str = "\
Examples:
  invitesync man | man -l -
  invitesync man run | man -l -
  invitesync man --out-dir /usr/local/share/man/man1";

#[derive(Debug, clap::Args)]
#[command(after_help = COMPLETIONS_HELP)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
#[command(after_help = MAN_HELP)]
pub struct ManArgs {
    /// The command whose page to print (default: the page of invitesync itself)
    #[arg(value_name = "COMMAND", conflicts_with = "out_dir")]
    pub command: Option<String>,

    /// Write every page (invitesync.1, invitesync-run.1, ...) into DIR instead
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

pub fn execute(args: CompletionsArgs) -> i32 {
    let mut cmd = Cli::command();
    // Generated whole first: clap_complete panics on a write error.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "invitesync", &mut script);
    match crate::stdio::Stdout.write_all(&script) {
        Ok(()) => exit::OK,
        Err(e) => fail(
            exit::USAGE,
            format!(
                "cannot write the completions: {}",
                crate::fs_error::reason(&e)
            ),
        ),
    }
}

pub fn man(args: ManArgs) -> i32 {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    if let Some(dir) = &args.out_dir {
        return match clap_mangen::generate_to(cmd, dir) {
            Ok(()) => exit::OK,
            Err(e) => fail(
                exit::USAGE,
                format!(
                    "cannot write the man pages into {}: {}",
                    dir.display(),
                    crate::fs_error::reason(&e)
                ),
            ),
        };
    }
    // Building names the subcommands' pages `invitesync-run` and so on.
    cmd.build();
    let page = match &args.command {
        None => cmd,
        Some(name) => match cmd.find_subcommand(name) {
            Some(sub) => sub.clone(),
            None => {
                let names: Vec<&str> = cmd.get_subcommands().map(|s| s.get_name()).collect();
                return fail(
                    exit::USAGE,
                    format!("there is no command `{name}`; one of: {}", names.join(", ")),
                );
            }
        },
    };
    match clap_mangen::Man::new(page).render(&mut crate::stdio::Stdout) {
        Ok(()) => exit::OK,
        Err(e) => fail(
            exit::USAGE,
            format!("cannot write the man page: {}", crate::fs_error::reason(&e)),
        ),
    }
}
