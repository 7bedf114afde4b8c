//! ringctl, Ring's orchestrator in the `xtask` style: `main` only parses flags and dispatches to one
//! file per verb. Every verb runs from the workspace root, whatever directory it was started in.

mod bench;
mod broker;
mod ci;
mod depl;
mod dev;
mod fault;
mod flags;
mod fuzz;
mod gen;
mod hostile;
mod lint;
mod matrix;
mod model;
mod package;
mod pairs;
mod proc;
mod shm;
mod soak;
mod version;

use std::path::{Path, PathBuf};

use xshell::Shell;

fn main() {
  if let Err(err) = run() {
    eprintln!("ringctl: error: {err:#}");
    std::process::exit(1);
  }
}

fn run() -> anyhow::Result<()> {
  let flags = flags::Ringctl::from_env_or_exit();
  let sh = &Shell::new()?;
  sh.change_dir(project_root());
  match flags.subcommand {
    flags::RingctlCmd::Gen(cmd) => cmd.run(sh),
    flags::RingctlCmd::TestMatrix(cmd) => cmd.run(sh),
    flags::RingctlCmd::Lint(cmd) => cmd.run(sh),
    flags::RingctlCmd::Ci(cmd) => cmd.run(sh),
    flags::RingctlCmd::Soak(cmd) => cmd.run(sh),
    flags::RingctlCmd::Dev(cmd) => cmd.run(sh),
    flags::RingctlCmd::Bench(cmd) => cmd.run(sh),
    flags::RingctlCmd::Package(cmd) => cmd.run(sh),
    flags::RingctlCmd::Version(cmd) => cmd.run(sh),
    flags::RingctlCmd::Fuzz(cmd) => cmd.run(sh),
    flags::RingctlCmd::Model(cmd) => cmd.run(sh),
  }
}

/// The workspace root: ringctl lives in `tools/ringctl`, two levels below it.
fn project_root() -> PathBuf {
  Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).expect("tools/ringctl sits two levels below the root").into()
}
