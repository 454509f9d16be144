//! Shell completions and the man page, generated from the same definitions
//! as `--help` so they never disagree.

use clap::CommandFactory;

use super::Cli;

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

pub fn execute(args: CompletionsArgs) -> i32 {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "invitesync", &mut std::io::stdout());
    0
}

pub fn man() -> i32 {
    let man = clap_mangen::Man::new(Cli::command());
    match man.render(&mut std::io::stdout()) {
        Ok(()) => 0,
        Err(e) => super::fail(
            super::exit::USAGE,
            format!("cannot write the man page: {e}"),
        ),
    }
}
