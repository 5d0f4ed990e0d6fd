//! `cloudbase-auth`: one tool for the local CloudBase Auth server (`serve` and `keys`,
//! feature `server`, on by default) and its client commands (`login`, `link`, `whoami`,
//! `token`, `logout`, `status`). See `cloudbase-auth --help`.
//!
//! The commands live in their crates (`cloudbase_auth_server::command`,
//! `cloudbase_auth_client::commands`); this binary only puts them side by side.

use clap::{Parser, Subcommand};
use cloudbase_auth_client::commands::{ClientCommand, EXIT_CODES_HELP};
use std::process::ExitCode;

/// The command line (clap derive); its `--help` names what this build has.
#[derive(Debug, Parser)]
#[command(name = "cloudbase-auth", version, long_about = None)]
#[cfg_attr(
    feature = "server",
    command(about = "A local CloudBase Auth server (`serve`) and its command-line client.")
)]
#[cfg_attr(
    not(feature = "server"),
    command(about = "The CloudBase Auth command-line client (this build has no `serve`).")
)]
#[command(after_help = EXIT_CODES_HELP)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    #[cfg(feature = "server")]
    Serve(cloudbase_auth_server::command::ServeArgs),
    #[cfg(feature = "server")]
    Keys(cloudbase_auth_server::command::KeysArgs),
    /// The client commands: `login`, `link`, `whoami`, `token`, `logout`, `status`.
    #[command(flatten)]
    Client(ClientCommand),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        #[cfg(feature = "server")]
        Command::Serve(args) => cloudbase_auth_server::command::run_blocking(&args),
        #[cfg(feature = "server")]
        Command::Keys(args) => cloudbase_auth_server::command::run_keys_blocking(&args),
        Command::Client(command) => cloudbase_auth_client::commands::run_blocking(command),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
