//! Readiness for systemd (`Type=notify`): the broker sends READY=1 to `$NOTIFY_SOCKET` once it serves
//! its namespace, so a unit ordered after it starts when apps can register, not merely when the
//! process exists.

mod support;

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use support::{Broker, RawApp};

#[test]
fn broker_sends_ready_to_notify_socket_once_apps_can_register() {
  let prefix = std::env::var("IMPULSE_RING_TEST_NS_PREFIX").unwrap_or_default();
  let ns = format!("{prefix}notify-{}", std::process::id());
  let dir = std::env::temp_dir().join(format!("impulsed-{ns}"));
  std::fs::create_dir_all(&dir).unwrap();
  let path = dir.join("notify.sock");
  let socket = UnixDatagram::bind(&path).unwrap();
  // Only so that a broker that never notifies fails the test instead of hanging it.
  socket.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
  let broker = Broker::spawn_with_env(&ns, &[], &[("NOTIFY_SOCKET", path.to_str().unwrap())]);

  let mut buf = [0u8; 256];
  let n = socket.recv(&mut buf).expect("the broker sent nothing to NOTIFY_SOCKET");
  let message = String::from_utf8_lossy(&buf[..n]).into_owned();
  assert_eq!(message.lines().collect::<Vec<_>>(), ["READY=1"], "{message:?}");
  // READY=1 promises the control segment is there: an app registers at once, without retrying.
  RawApp::register(&ns, "probe").unregister();

  broker.stop();
  std::fs::remove_dir_all(&dir).unwrap();
}
