//! `ringctl package --check`: installs every artifact from itself into a fresh directory made by
//! `mktemp -d` (under `$TMPDIR`, removed afterwards), with the variables that could point back into
//! the repository removed, and runs each language's demo (a channel and a call) through it against a
//! live broker of its own namespace. The broker is the release tarball's `impulsed`, started first with
//! a `NOTIFY_SOCKET` to prove its systemd readiness, so every check also runs the shipped binary.
//! Namespaces start with the run's `IMPULSE_RING_TEST_NS_PREFIX` (or `pk<pid>-`); `/dev/shm` must be
//! left as found.

use std::{
  os::unix::net::UnixDatagram,
  path::{Path, PathBuf},
  time::{Duration, Instant},
};

use anyhow::{bail, Context};
use impulse_ring_test_support::ns::PREFIX_ENV;
use xshell::{cmd, Cmd, Shell};

use super::{Artifacts, CRATES};
use crate::{broker, shm};

/// Variables that would let an installed package find the repository instead of itself.
const SCRUBBED: [&str; 12] = [
  "IMPULSE_RING_LIB",
  "IMPULSE_RING_BROKER",
  "LD_LIBRARY_PATH",
  "PYTHONPATH",
  "PYTHONHOME",
  "VIRTUAL_ENV",
  "PKG_CONFIG_PATH",
  "CMAKE_PREFIX_PATH",
  "GOFLAGS",
  "GOWORK",
  "NODE_PATH",
  "NOTIFY_SOCKET",
];

/// What every check needs.
struct Place<'a> {
  artifacts: &'a Artifacts,
  /// The repository (only to find the demos' sources and Cargo's shared target directory).
  root: PathBuf,
  /// This check's own directory in the temporary tree.
  dir: PathBuf,
  /// The release tarball's broker.
  impulsed: PathBuf,
  ns: String,
}

/// A command with the scrubbed variables removed and the check's namespace set.
fn clean<'a>(cmd: Cmd<'a>, ns: &str) -> Cmd<'a> {
  SCRUBBED.iter().fold(cmd, |cmd, var| cmd.env_remove(var)).env("IMPULSE_RING_NS", ns)
}

/// A `mktemp -d` directory, removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
  fn drop(&mut self) {
    // Go's module cache is read-only unless -modcacherw; it is set, but be sure.
    let _ = std::process::Command::new("chmod").args(["-R", "u+w"]).arg(&self.0).status();
    if let Err(err) = std::fs::remove_dir_all(&self.0) {
      eprintln!("ringctl: cannot remove {}: {err}", self.0.display());
    }
  }
}

pub(super) fn run(sh: &Shell, artifacts: &Artifacts) -> anyhow::Result<()> {
  let root = sh.current_dir();
  let prefix =
    sh.var(PREFIX_ENV).ok().filter(|p| !p.is_empty()).unwrap_or_else(|| format!("pk{}-", std::process::id()));
  let shm_prefix = shm::run_prefix(&prefix);
  let before = shm::snapshot(&shm_prefix)?;
  let tmp = TempDir(PathBuf::from(cmd!(sh, "mktemp -d -t ring-package.XXXXXX").read()?));
  println!("\n==> package --check in {} (namespaces {prefix}pkg-*)", tmp.0.display());

  type Check = (&'static str, fn(&Shell, &Place) -> anyhow::Result<()>);
  let checks: [Check; 6] = [
    ("release tarball + systemd", check_release),
    ("rust crates", check_rust),
    ("c/c++ (cmake, pkg-config)", check_c),
    ("python wheel", check_python),
    ("go module", check_go),
    ("npm tarball", check_ts),
  ];
  let impulsed = tmp.0.join("release").join(artifacts.release_name()).join("bin/impulsed");
  let mut results = Vec::new();
  for (name, check) in checks {
    let tag = name.split(|c: char| !c.is_ascii_alphanumeric()).next().unwrap_or(name);
    let place = Place {
      artifacts,
      root: root.clone(),
      dir: sh.create_dir(tmp.0.join(tag))?,
      impulsed: impulsed.clone(),
      ns: format!("{prefix}pkg-{tag}"),
    };
    println!("\n==> package --check: {name}");
    let started = Instant::now();
    let outcome = {
      let _cd = sh.push_dir(&place.dir);
      check(sh, &place)
    };
    let elapsed = started.elapsed();
    if let Err(err) = &outcome {
      println!("==> package --check: {name} FAILED: {err:#}");
    }
    results.push((name, outcome, elapsed));
    // Everything else runs the release broker: without it nothing can be checked.
    if results.len() == 1 && results[0].1.is_err() {
      break;
    }
  }
  drop(tmp);
  let clean = shm::ensure_no_leaks(&before, &shm_prefix, "package --check");

  println!("\npackage --check, version {}:", artifacts.version);
  for (name, outcome, elapsed) in &results {
    let status = if outcome.is_ok() { "pass" } else { "FAIL" };
    println!("  {name:<28} {status:<5} {elapsed:>8.1?}");
  }
  let failed = results.iter().filter(|(_, o, _)| o.is_err()).map(|(n, _, _)| *n).collect::<Vec<_>>();
  clean?;
  if !failed.is_empty() {
    bail!("package --check failed for: {}; see the output above", failed.join(", "));
  }
  Ok(())
}

/// Runs `demo` against a broker started from the release tarball in the check's namespace.
fn with_broker(place: &Place, demo: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
  with_broker_from(&place.impulsed, place, demo)
}

/// Runs `demo` against the broker `impulsed` started in the check's namespace.
fn with_broker_from(impulsed: &Path, place: &Place, demo: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
  let broker = broker::start(impulsed, &place.ns)?;
  let outcome = demo();
  let stopped = broker::stop(broker);
  outcome.and(stopped)
}

/// Unpacks the tarball; `impulsed --help` names every flag and variable; the broker tells a
/// `NOTIFY_SOCKET` READY=1 once it serves, `ring ls` lists its bus, and SIGTERM stops it with 0. Both
/// systemd units pass `systemd-analyze verify` with no warning, pointed at the unpacked broker.
fn check_release(sh: &Shell, place: &Place) -> anyhow::Result<()> {
  let tarball = place.artifacts.release();
  cmd!(sh, "tar -xzf {tarball}").run()?;
  let top = place.dir.join(place.artifacts.release_name());
  for file in ["LICENSE", "README.md", "bin/ring", "bin/impulsed", "systemd/impulsed.service"] {
    if !top.join(file).exists() {
      bail!("the release tarball lacks {file}");
    }
  }
  let (impulsed, ring) = (top.join("bin/impulsed"), top.join("bin/ring"));
  let help = cmd!(sh, "{impulsed} --help").read()?;
  for needle in
    ["--ns", "--log-level", "--mode", "--world-accessible", "--max-apps", "IMPULSE_RING_NS", "NOTIFY_SOCKET"]
  {
    if !help.contains(needle) {
      bail!("`impulsed --help` does not document {needle}:\n{help}");
    }
  }
  let version = cmd!(sh, "{ring} --version").read()?;
  if !version.contains(&place.artifacts.version) {
    bail!("`ring --version` printed {version:?}, not version {}", place.artifacts.version);
  }

  let socket_path = place.dir.join("notify.sock");
  let socket = UnixDatagram::bind(&socket_path).context("cannot bind the notify socket")?;
  // Not a timing assertion: a broker that never notifies must not hang the check for ever.
  socket.set_read_timeout(Some(Duration::from_secs(60)))?;
  let broker = {
    let expr = duct::cmd!(&impulsed, "--ns", &place.ns).env("NOTIFY_SOCKET", &socket_path);
    crate::proc::start("impulsed", expr)?
  };
  let mut buf = [0u8; 256];
  let ready = socket.recv(&mut buf).context("the broker sent nothing to NOTIFY_SOCKET");
  let listed = ready.and_then(|n| {
    let message = String::from_utf8_lossy(&buf[..n]).into_owned();
    if !message.lines().any(|l| l == "READY=1") {
      bail!("the broker sent {message:?} to NOTIFY_SOCKET, not READY=1");
    }
    // READY=1 promises the control segment is there: `ring ls` must connect at once.
    Ok(clean(cmd!(sh, "{ring} ls"), &place.ns).run()?)
  });
  let status = broker.stop(broker::STOP_GRACE).map_err(anyhow::Error::msg)?;
  listed?;
  if !status.success() {
    bail!("the broker exited with {} on SIGTERM instead of 0", crate::proc::describe(status));
  }

  if cmd!(sh, "systemd-analyze --version").quiet().ignore_stdout().run().is_err() {
    println!("==> systemd-analyze not found: the units are not verified (Debian: `apt-get install systemd`)");
    return Ok(());
  }
  let units = sh.create_dir(place.dir.join("units"))?;
  let runtime = sh.create_dir(place.dir.join("xdg-runtime"))?;
  for (unit, exec, user) in [
    ("systemd/impulsed.service", "/usr/local/bin/impulsed", false),
    ("systemd/user/impulsed.service", "%h/.local/bin/impulsed", true),
  ] {
    let text = sh.read_file(top.join(unit))?;
    if !text.contains(&format!("ExecStart={exec}")) {
      bail!("{unit} does not start {exec}");
    }
    let dir = sh.create_dir(units.join(if user { "user" } else { "system" }))?;
    let path = dir.join("impulsed.service");
    sh.write_file(&path, text.replace(exec, &impulsed.display().to_string()))?;
    let scope = if user { vec!["--user"] } else { vec![] };
    let output =
      cmd!(sh, "systemd-analyze {scope...} verify {path}").env("XDG_RUNTIME_DIR", &runtime).ignore_status().output()?;
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    if !output.status.success() || !said.trim().is_empty() {
      bail!("`systemd-analyze verify` of {unit} failed or warned:\n{said}");
    }
    println!("==> systemd-analyze verify {unit}: clean");
  }
  Ok(())
}

/// Unpacks the three `.crate` files into a throwaway workspace: a consumer crate whose `main.rs` is
/// the packaged connector's own `examples/demo.rs`, depending on `impulse-ring-connector` by version
/// with `[patch.crates-io]` pointing it and core at the unpacked copies (as if they came from
/// crates.io), and the unpacked `impulsed` as a member. Both are built offline, with the workspace's
/// lock file for the same dependency versions, and the demo runs against that broker.
///
/// Cargo's shared target directory keeps registry crates compiled once per machine rather than once
/// per run (they are not the workspace's own: its features are unified over every member). The
/// explicit `--target` puts the binaries under `target/<triple>/`, so this `impulsed` never replaces
/// the workspace's `target/debug/impulsed`. No debug info, to compile faster.
fn check_rust(sh: &Shell, place: &Place) -> anyhow::Result<()> {
  let version = &place.artifacts.version;
  for krate in CRATES {
    let file = place.artifacts.krate(krate);
    cmd!(sh, "tar -xzf {file}").run()?;
  }
  let connector = place.dir.join(format!("impulse-ring-connector-{version}"));
  let consumer = sh.create_dir(place.dir.join("consumer/src"))?;
  sh.copy_file(connector.join("examples/demo.rs"), consumer.join("main.rs"))?;
  sh.write_file(
    place.dir.join("consumer/Cargo.toml"),
    format!(
      "[package]\nname = \"ring-package-consumer\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
       [dependencies]\nimpulse-ring-connector = \"={version}\"\nserde = {{ version = \"1\", features = [\"derive\"] }}\n"
    ),
  )?;
  sh.write_file(
    place.dir.join("Cargo.toml"),
    format!(
      "[workspace]\nresolver = \"2\"\nmembers = [\"consumer\", \"impulsed-{version}\"]\n\n[patch.crates-io]\n\
       impulse-ring-core = {{ path = \"impulse-ring-core-{version}\" }}\n\
       impulse-ring-connector = {{ path = \"impulse-ring-connector-{version}\" }}\n\n\
       [profile.dev]\ndebug = 0\n"
    ),
  )?;
  sh.copy_file(place.root.join("Cargo.lock"), place.dir.join("Cargo.lock"))?;
  let host = cmd!(sh, "rustc -vV").read()?.lines().find_map(|l| l.strip_prefix("host: ").map(String::from));
  let host = host.context("`rustc -vV` names no host triple")?;
  let target = broker::target_dir(&place.root);
  clean(cmd!(sh, "cargo build --offline --target {host} -p ring-package-consumer -p impulsed"), &place.ns)
    .env("CARGO_TARGET_DIR", &target)
    .run()?;
  let bin = target.join(&host).join("debug");
  let demo = bin.join("ring-package-consumer");
  with_broker_from(&bin.join("impulsed"), place, || Ok(clean(cmd!(sh, "{demo}"), &place.ns).run()?))
}

/// `cmake --install` into a fresh prefix; the C demo is built once with `find_package(ImpulseRing)`
/// (and the C++ demo against `ImpulseRing::cpp`), once with `pkg-config impulse_ring`; all three run.
fn check_c(sh: &Shell, place: &Place) -> anyhow::Result<()> {
  let prefix = place.dir.join("prefix");
  let build = place.artifacts.cmake_build();
  cmd!(sh, "cmake --install {build} --prefix {prefix}").run()?;
  let src = sh.create_dir(place.dir.join("consumer"))?;
  sh.copy_file(place.root.join("c/examples/demo.c"), &src)?;
  sh.copy_file(place.root.join("cpp/examples/demo.cpp"), &src)?;
  sh.write_file(
    src.join("CMakeLists.txt"),
    "cmake_minimum_required(VERSION 3.16)\nproject(RingConsumer LANGUAGES C CXX)\n\
     find_package(ImpulseRing REQUIRED)\n\
     add_executable(demo_c demo.c)\ntarget_link_libraries(demo_c PRIVATE ImpulseRing::impulse_ring)\n\
     add_executable(demo_cpp demo.cpp)\ntarget_link_libraries(demo_cpp PRIVATE ImpulseRing::cpp)\n",
  )?;
  let build = place.dir.join("build");
  clean(cmd!(sh, "cmake -S {src} -B {build} -DCMAKE_PREFIX_PATH={prefix}"), &place.ns).run()?;
  clean(cmd!(sh, "cmake --build {build} --parallel 2"), &place.ns).run()?;

  let pc = find_file(&prefix, "impulse_ring.pc")?.parent().expect("a file has a parent").to_path_buf();
  let pkg = |what: &str| -> anyhow::Result<Vec<String>> {
    let flags = clean(cmd!(sh, "pkg-config {what} impulse_ring"), &place.ns).env("PKG_CONFIG_PATH", &pc).read()?;
    Ok(flags.split_whitespace().map(String::from).collect())
  };
  let (cflags, libs, libdir) = (pkg("--cflags")?, pkg("--libs")?, pkg("--variable=libdir")?.concat());
  let rpath = format!("-Wl,-rpath,{libdir}");
  let pc_c = place.dir.join("demo_c_pkgconfig");
  clean(cmd!(sh, "cc -std=c11 -o {pc_c} {src}/demo.c {cflags...} {libs...} {rpath} -lpthread"), &place.ns).run()?;
  let (demo_c, demo_cpp) = (build.join("demo_c"), build.join("demo_cpp"));
  with_broker(place, || {
    clean(cmd!(sh, "{demo_c}"), &place.ns).run()?;
    clean(cmd!(sh, "{demo_cpp}"), &place.ns).run()?;
    Ok(clean(cmd!(sh, "{pc_c}"), &place.ns).run()?)
  })
}

/// A new venv, `pip install` of the wheel (fastavro from the package index), and the demo run by
/// that venv's interpreter from a directory with nothing of the repository.
fn check_python(sh: &Shell, place: &Place) -> anyhow::Result<()> {
  let wheel = find_suffix(&place.artifacts.python(), "-abi3-")?;
  let venv = place.dir.join("venv");
  clean(cmd!(sh, "python3 -m venv {venv}"), &place.ns).run().context("`python3` with the venv module is required")?;
  let python = venv.join("bin/python");
  clean(cmd!(sh, "{python} -m pip install --disable-pip-version-check --quiet {wheel}"), &place.ns).run()?;
  sh.copy_file(place.root.join("python/examples/demo.py"), &place.dir)?;
  // -I: isolated mode, so neither the current directory nor user site-packages are on sys.path.
  with_broker(place, || Ok(clean(cmd!(sh, "{python} -I demo.py"), &place.ns).run()?))
}

/// A consumer module requiring the connector at the packaged version, fetched from the artifact
/// directory as a `GOPROXY=file://` (its dependencies from the local module cache's download
/// directory, itself a proxy, then the configured proxy) into a fresh module cache; `go mod verify`, then the demo built with
/// `CGO_ENABLED=0` and run. `go get` rather than `go mod tidy`: tidy also wants the modules that the
/// dependencies' own tests import, which a user's build never fetches.
fn check_go(sh: &Shell, place: &Place) -> anyhow::Result<()> {
  let cache = cmd!(sh, "go env GOMODCACHE").read()?;
  // The connector only from the artifact; its dependencies from the local cache, else as configured.
  let upstream = cmd!(sh, "go env GOPROXY").read()?;
  let proxy = format!("file://{},file://{cache}/cache/download,{upstream}", place.artifacts.go_proxy().display());
  let module = "github.com/impulse/ring/go";
  let version = format!("v{}", place.artifacts.version);
  let src = sh.create_dir(place.dir.join("consumer"))?;
  sh.copy_file(place.root.join("go/examples/demo/main.go"), &src)?;
  sh.write_file(
    src.join("go.mod"),
    format!("module example.com/ringconsumer\n\ngo 1.26\n\nrequire {module} {version}\n"),
  )?;
  let _cd = sh.push_dir(&src);
  let modcache = place.dir.join("modcache");
  let go = |cmd: Cmd<'_>| -> anyhow::Result<()> {
    Ok(
      clean(cmd, &place.ns)
        .env("GOPROXY", &proxy)
        .env("GOMODCACHE", &modcache)
        .env("GOFLAGS", "-modcacherw")
        .env("GOSUMDB", "off")
        .env("GOTOOLCHAIN", "local")
        .env("CGO_ENABLED", "0")
        .run()?,
    )
  };
  let wanted = format!("{module}@{version}");
  go(cmd!(sh, "go get {wanted}"))?;
  go(cmd!(sh, "go mod verify"))?;
  go(cmd!(sh, "go build -o demo ."))?;
  let demo = src.join("demo");
  with_broker(place, || Ok(clean(cmd!(sh, "{demo}"), &place.ns).run()?))
}

/// `bun add` of the tarball in a fresh project and the demo importing `impulse-ring` by name; the C
/// library must come from inside the package (IMPULSE_RING_LIB and LD_LIBRARY_PATH are unset).
fn check_ts(sh: &Shell, place: &Place) -> anyhow::Result<()> {
  sh.write_file("package.json", "{ \"name\": \"ring-package-consumer\", \"private\": true, \"type\": \"module\" }\n")?;
  let tarball = place.artifacts.npm();
  clean(cmd!(sh, "bun add {tarball}"), &place.ns)
    .run()
    .context("`bun` is required; install it with `npm install -g bun`")?;
  let demo = sh.read_file(place.root.join("ts/examples/demo.ts"))?;
  let from = "from \"../src/index.ts\"";
  if !demo.contains(from) {
    bail!("ts/examples/demo.ts no longer imports {from}; update the npm check");
  }
  sh.write_file("demo.ts", demo.replace(from, "from \"impulse-ring\""))?;
  if !place.dir.join("node_modules/impulse-ring/native/libimpulse_ring.so").exists() {
    bail!("the npm package does not carry native/libimpulse_ring.so");
  }
  with_broker(place, || Ok(clean(cmd!(sh, "bun demo.ts"), &place.ns).run()?))
}

/// The one file in `dir` whose name contains `part`.
fn find_suffix(dir: &Path, part: &str) -> anyhow::Result<PathBuf> {
  let found = std::fs::read_dir(dir)
    .with_context(|| format!("cannot list {}", dir.display()))?
    .filter_map(|e| e.ok().map(|e| e.path()))
    .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().contains(part)))
    .collect::<Vec<_>>();
  match found.as_slice() {
    [one] => Ok(one.clone()),
    _ => bail!("expected one file with `{part}` in its name in {}, found {found:?}", dir.display()),
  }
}

/// `name` anywhere under `dir`.
fn find_file(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
  for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
    let path = entry?.path();
    if path.file_name().is_some_and(|n| n == name) {
      return Ok(path);
    }
    if path.is_dir() {
      if let Ok(found) = find_file(&path, name) {
        return Ok(found);
      }
    }
  }
  bail!("{name} is not under {}", dir.display())
}
