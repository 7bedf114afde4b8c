//! `ringctl bench`: the benchmark suite and its baselines (iceoryx2, Unix sockets, gRPC, memcpy) will
//! live here. Until then the verb fails loudly rather than pretend to measure anything.

use xshell::Shell;

use crate::flags;

impl flags::Bench {
  pub(crate) fn run(self, _sh: &Shell) -> anyhow::Result<()> {
    anyhow::bail!("bench: not implemented yet; the benchmark suite and its baselines come with the C library (see README.md, Status)")
  }
}
