//! `impulsed`, the Ring broker: owns one namespace's control segment, registers apps, routes the
//! control plane and collects the shared memory of apps that leave or die.

mod admission;
mod broker;
mod keys;
mod liveness;
mod lock;
mod outbox;
mod registry;

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use impulse_ring_core::names;

mod flags {
  xflags::xflags! {
    /// The Ring broker daemon: serves one namespace of the bus until SIGINT or SIGTERM, then removes
    /// every shared-memory object of that namespace. Logs go to stderr (the journal under systemd).
    ///
    /// Environment:
    ///   IMPULSE_RING_NS  namespace to serve when --ns is not given (default `impulse`); apps read the
    ///                    same variable to find the broker
    ///   NOTIFY_SOCKET    set by systemd for Type=notify: READY=1 is sent there once the namespace is
    ///                    served (its control segment exists and apps can register)
    ///
    /// Exit status: 0 after SIGINT/SIGTERM, 1 if the namespace cannot be served or was lost (another
    /// broker holds it, its names were removed), 2 for a bad flag.
    cmd impulsed {
      /// Namespace to serve (default: $IMPULSE_RING_NS, else `impulse`).
      optional --ns ns: String
      /// Log level: error, warn, info, debug or trace (default info).
      optional --log-level level: String
      /// File mode of the segments, in octal (default 600; 660 lets the broker's group share the bus:
      /// run it with that group as its primary group, such as systemd's Group=).
      optional --mode mode: String
      /// Allow a --mode that gives other users access (such as 666): every user of the host can then
      /// read and write the bus. Refused without this flag.
      optional --world-accessible
      /// Number of app slots (default 64).
      optional --max-apps n: u32
    }
  }
}

fn main() -> ExitCode {
  let flags = match flags::Impulsed::from_env() {
    Ok(flags) => flags,
    Err(e) if e.is_help() => {
      println!("{e}");
      return ExitCode::SUCCESS;
    }
    Err(e) => {
      eprintln!("{e}");
      return ExitCode::from(2);
    }
  };
  let level = flags.log_level.clone().unwrap_or_else(|| "info".to_string());
  let level: tracing::Level = match level.parse() {
    Ok(level) => level,
    Err(_) => {
      eprintln!("impulsed: unknown log level {level:?}; use error, warn, info, debug or trace");
      return ExitCode::from(2);
    }
  };
  tracing_subscriber::fmt()
    .with_max_level(level)
    .with_target(false)
    .with_writer(std::io::stderr)
    // Colours only on a terminal: logs piped to ringctl, files or journald stay plain text.
    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
    .init();
  let ns = flags.ns.clone().unwrap_or_else(names::namespace_from_env);
  if let Err(e) = names::check_namespace(&ns) {
    eprintln!("impulsed: {e}");
    return ExitCode::from(2);
  }
  let mode = match flags.mode.as_deref().map(|m| u32::from_str_radix(m, 8)) {
    None => 0o600,
    Some(Ok(mode)) if mode & !0o777 == 0 => mode,
    Some(_) => {
      eprintln!("impulsed: --mode takes an octal file mode such as 600 or 660");
      return ExitCode::from(2);
    }
  };
  if mode & 0o007 != 0 && !flags.world_accessible {
    eprintln!(
      "impulsed: --mode {mode:o} lets every user of the host read and write the bus; use a group mode such as 660, \
       or add --world-accessible if that is really meant"
    );
    return ExitCode::from(2);
  }
  if let Err(e) = impulse_ring_core::sigbus::install() {
    eprintln!("impulsed: cannot install the SIGBUS handler: {e}");
    return ExitCode::FAILURE;
  }
  let stop = Arc::new(AtomicBool::new(false));
  for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
    if let Err(e) = signal_hook::flag::register(signal, stop.clone()) {
      eprintln!("impulsed: cannot install the signal handler: {e}");
      return ExitCode::FAILURE;
    }
  }
  let config =
    broker::Config { ns, mode, max_apps: flags.max_apps.unwrap_or(impulse_ring_core::layout::IR_DEFAULT_MAX_APPS) };
  match broker::Broker::start(config) {
    Ok(mut broker) => {
      notify_ready();
      match broker.run(&stop) {
        broker::Ending::Stopped => ExitCode::SUCCESS,
        // The broker lost its namespace (its names were removed): it said why in its log.
        broker::Ending::Lost => ExitCode::FAILURE,
      }
    }
    Err(e) => {
      eprintln!("impulsed: {e:#}");
      ExitCode::FAILURE
    }
  }
}

/// Tells systemd (Type=notify) that apps can register from now on. Without systemd there is no
/// NOTIFY_SOCKET and this does nothing; a failure is logged, never fatal (systemd then reports the
/// start as timed out).
fn notify_ready() {
  if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
    tracing::warn!("cannot notify systemd that the broker is ready: {e}");
  }
}
