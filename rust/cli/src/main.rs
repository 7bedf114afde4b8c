//! `ring`: the command-line tool of the Ring IPC bus. It shows what the broker computes for a schema,
//! lists and describes what is on the bus, shows messages as JSON (`tap`), publishes JSON lines
//! (`publish`), calls functions with JSON arguments (`call`), and watches the bus (`top`, `monitor`).
//! Exit status: 0 on success, 1 on a runtime failure, 2 on bad input (usage, a file or JSON argument
//! that does not fit).

mod args;
mod avro_json;
mod bus;
mod call;
mod describe;
mod ls;
mod monitor;
mod publish;
mod schema;
mod tap;
mod top;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use args::{Cli, Verb};
use bus::Failure;

fn main() -> ExitCode {
  // Like other Unix tools, end quietly when the reader of our output goes away (`ring tap x | head`)
  // instead of failing on the next print.
  // SAFETY: restores the default disposition of one signal before any thread exists.
  unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
  let cli = Cli::parse();
  let outcome = match cli.verb {
    Verb::Schema(a) => schema::run(a),
    Verb::Ls(a) => ls::run(a),
    Verb::Describe(a) => describe::run(a),
    Verb::Tap(a) => tap::run(a),
    Verb::Call(a) => call::run(a),
    Verb::Publish(a) => publish::run(a),
    Verb::Top(a) => top::run(a),
    Verb::Monitor(a) => monitor::run(a),
    Verb::Completions(a) => {
      clap_complete::generate(a.shell, &mut Cli::command(), "ring", &mut std::io::stdout());
      Ok(())
    }
  };
  match outcome {
    Ok(()) => ExitCode::SUCCESS,
    Err(Failure::Runtime(message)) => {
      eprintln!("ring: {message}");
      ExitCode::from(1)
    }
    Err(Failure::BadInput(message)) => {
      eprintln!("ring: {message}");
      ExitCode::from(2)
    }
  }
}
