//! `ring`: the command-line tool of the Ring IPC bus. `ring schema canonical|fingerprint FILE` show what
//! the broker will compute for a schema; `ring ls` lists what is on the bus.
//! Exit status: 0 on success, 1 on a runtime failure, 2 on bad input (usage, unreadable or invalid file).

mod flags;
mod ls;
mod schema;

use std::process::ExitCode;

fn main() -> ExitCode {
  let flags = flags::Ring::from_env_or_exit();
  match flags.subcommand {
    flags::RingCmd::Schema(cmd) => cmd.run(),
    flags::RingCmd::Ls(cmd) => cmd.run(),
  }
}
