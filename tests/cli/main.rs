//! The command line as an operator meets it, through the built binary: help,
//! completions and man pages ([`help`]), `validate` ([`validate`]), error
//! messages ([`errors`]), the progress output when there is no terminal and
//! the summary ([`run`]), secrets kept out of the logs ([`secrets`]), the
//! files a run writes ([`outputs`]), the state file ([`state`]), and closed
//! pipes ([`pipes`]).

#[path = "../common/mod.rs"]
mod common;

mod echo;
mod errors;
mod help;
mod input_changed;
mod outputs;
mod pipes;
mod resume_rules;
mod run;
mod secrets;
mod state;
mod validate;

use std::process::Output;

use common::World;

/// The binary in the world's directory, with the clean environment of
/// [`common::binary`] and `env` on top.
fn cli(world: &World, args: &[&str], env: &[(&str, &str)]) -> Output {
    world.cli_env(args, env)
}

/// The binary with no world (help, version, completions).
fn bare(args: &[&str]) -> Output {
    common::bare(args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A sandbox-backed world, kept with the runtime that serves the sandbox.
struct Setup {
    rt: tokio::runtime::Runtime,
    world: Option<World>,
}

impl Setup {
    fn new(seed: Option<&str>, extra: &str) -> Setup {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let world = rt.block_on(World::start(seed, extra));
        Setup {
            rt,
            world: Some(world),
        }
    }

    fn world(&self) -> &World {
        self.world.as_ref().expect("world")
    }
}

impl Drop for Setup {
    /// The sandbox's tasks belong to the runtime: stop them inside it.
    fn drop(&mut self) {
        let world = self.world.take();
        self.rt.block_on(async move { drop(world) });
    }
}

/// Checks that a failed command said so the way every command must: exit
/// code `code`, one or two lines starting `error:`, no panic, no backtrace,
/// no Debug dump. Returns the message.
fn error_message(o: &Output, code: i32) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.is_empty()).collect();
    assert!(
        (1..=2).contains(&lines.len()),
        "one or two lines, got: {err}"
    );
    assert!(lines[0].starts_with("error: "), "{err}");
    for bad in ["panicked", "backtrace", "Error {", "Os {", "kind: "] {
        assert!(!err.contains(bad), "`{bad}` in: {err}");
    }
    err
}
