//! `ringctl test-matrix`: builds and runs every language's test suite, then prints a summary of the
//! suites and the cross-language pair table (rows: producer language, columns: consumer language).
//! After the suites, each connector's example that `.depl/config.yaml` declares runs against a live
//! broker of its own. The run must leave `/dev/shm` as it found it, and touches only what it made:
//! every namespace of the run starts with a prefix of its own (`tm<pid>-`), which ringctl hands to
//! every suite in `IMPULSE_RING_TEST_NS_PREFIX` (each test builds its namespaces on it, with the
//! test-support crate in Rust); only names under that prefix are checked and cleaned. A broker in a
//! foreign namespace, started while the suites run, proves it: it must still be serving at the end.
//!
//! A new connector adds a [`Suite`] to [`suites`], its example to `.depl/config.yaml` and, once it
//! ships a testee, its pair cases to [`pairs::cases`]; the tables grow by themselves.

use std::{
  path::PathBuf,
  time::{Duration, Instant},
};

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

use impulse_ring_test_support::ns::PREFIX_ENV;

use crate::{broker, depl, fault, flags, hostile, pairs, proc, shm};

/// How long a connector's example may run against the broker.
const EXAMPLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Every language a connector exists or is planned for, in table order.
const LANGUAGES: [&str; 6] = ["rust", "c", "cpp", "python", "go", "ts"];

/// One language's test suite: a build step, then a run step, so compiler output and test output do
/// not interleave.
struct Suite {
  name: &'static str,
  language: &'static str,
  /// The suite is skipped while this directory does not exist.
  dir: &'static str,
  build: fn(&Shell) -> anyhow::Result<()>,
  run: fn(&Shell) -> anyhow::Result<()>,
}

fn suites() -> Vec<Suite> {
  vec![
    Suite {
      name: "rust workspace",
      language: "rust",
      dir: "rust",
      // The end-to-end tests run the broker and the testee as separate processes: `cargo test`
      // alone does not build binaries and examples where they look for them.
      build: |sh| {
        cmd!(sh, "cargo build --workspace --bins --examples").run()?;
        Ok(cmd!(sh, "cargo test --workspace --no-run").run()?)
      },
      run: |sh| Ok(cmd!(sh, "cargo test --workspace").run()?),
    },
    Suite {
      name: "c self-test",
      language: "c",
      dir: "c",
      build: |sh| build_cmake(sh, "c", "target/c", &[]),
      run: |sh| Ok(cmd!(sh, "ctest --test-dir target/c --output-on-failure").run()?),
    },
    Suite {
      name: "c self-test (asan+ubsan)",
      language: "c",
      dir: "c",
      build: |sh| build_cmake(sh, "c", "target/c-asan", &["-DIMPULSE_RING_SANITIZE=ON"]),
      run: |sh| Ok(cmd!(sh, "ctest --test-dir target/c-asan --output-on-failure").run()?),
    },
    Suite {
      name: "cpp self-test",
      language: "cpp",
      dir: "cpp",
      build: |sh| build_cmake(sh, "cpp", "target/cpp", &[]),
      run: |sh| Ok(cmd!(sh, "ctest --test-dir target/cpp --output-on-failure").run()?),
    },
    Suite {
      name: "cpp self-test (asan+ubsan)",
      language: "cpp",
      dir: "cpp",
      build: |sh| build_cmake(sh, "cpp", "target/cpp-asan", &["-DIMPULSE_RING_SANITIZE=ON"]),
      run: |sh| Ok(cmd!(sh, "ctest --test-dir target/cpp-asan --output-on-failure").run()?),
    },
    Suite {
      name: "python self-test",
      language: "python",
      dir: "python",
      // `uv sync` builds the native extension through maturin and installs the package into
      // python/.venv; the tests start the broker built here.
      build: |sh| {
        broker::build(sh)?;
        cmd!(sh, "uv sync --project python")
          .run()
          .context("`uv` is required to test python/; install it with `pip install uv`")
      },
      run: |sh| {
        let broker = broker::build(sh)?;
        let _env = sh.push_env("IMPULSE_RING_BROKER", broker);
        Ok(cmd!(sh, "uv run --project python pytest python/tests").run()?)
      },
    },
    Suite {
      name: "go self-test (race)",
      language: "go",
      dir: "go",
      // The tests start the broker and the Go testee as processes of their own.
      build: |sh| {
        broker::build(sh)?;
        cmd!(sh, "go version")
          .run()
          .context("`go` is required to test go/; install Go 1.26+ (https://go.dev/doc/install)")?;
        cmd!(sh, "go -C go build -o ../target/go/testee ./cmd/testee").run()?;
        Ok(cmd!(sh, "go -C go vet ./...").run()?)
      },
      run: |sh| Ok(cmd!(sh, "go -C go test -race -count=1 ./...").run()?),
    },
    Suite {
      name: "ts self-test",
      language: "ts",
      dir: "ts",
      build: |sh| {
        broker::build(sh)?;
        pairs::build_ts(sh)
      },
      run: |sh| {
        // The tests start brokers of their own; they take the one built above.
        let broker = broker::build(sh)?;
        let _env = sh.push_env("IMPULSE_RING_BROKER", broker);
        let _dir = sh.push_dir("ts");
        Ok(cmd!(sh, "bun test").run()?)
      },
    },
    Suite {
      name: "arm64: c and go cross-built, run under qemu-user",
      // Outside the pair table: the table is per language, and these are the same two connectors.
      language: "other",
      dir: "go",
      build: build_arm64,
      run: run_arm64,
    },
  ]
}

/// Cross-compiles the C library and testee (Debian's gcc-aarch64-linux-gnu) and the Go testee and
/// test binary (GOARCH=arm64) for arm64.
fn build_arm64(sh: &Shell) -> anyhow::Result<()> {
  cmd!(sh, "aarch64-linux-gnu-gcc --version").quiet().ignore_stdout().run().context(
    "the arm64 cross compiler is required; install it with `apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross`",
  )?;
  cmd!(
    sh,
    "cmake -S c -B target/c-arm64 -DCMAKE_BUILD_TYPE=Debug -DCMAKE_SYSTEM_NAME=Linux
     -DCMAKE_SYSTEM_PROCESSOR=aarch64 -DCMAKE_C_COMPILER=aarch64-linux-gnu-gcc"
  )
  .run()?;
  cmd!(sh, "cmake --build target/c-arm64 --parallel 2 --target impulse_ring impulse_ring_static testee").run()?;
  let _arch = sh.push_env("GOARCH", "arm64");
  let _cgo = sh.push_env("CGO_ENABLED", "0");
  cmd!(sh, "go -C go build -o ../target/go-arm64/testee ./cmd/testee").run()?;
  Ok(cmd!(sh, "go -C go test -c -o ../target/go-arm64/ring.test .").run()?)
}

/// Runs what of the arm64 builds qemu-user can run here: the Go connector's spec-vector tests (layout,
/// error codes, control records, fingerprints) and its fuzz targets' seed corpora, and the C testee's
/// contract. The testees cannot join a live broker under qemu-user: its emulated /proc/self/stat
/// reports a process start time taken when qemu started, a clock tick after the kernel's in most
/// runs, so the broker's liveness check (pid and start time, spec/bootstrap.md) refuses the Register.
fn run_arm64(sh: &Shell) -> anyhow::Result<()> {
  cmd!(sh, "qemu-aarch64 --version")
    .quiet()
    .ignore_stdout()
    .run()
    .context("qemu-user is required to run the arm64 builds; install it with `apt-get install qemu-user`")?;
  let contract = cmd!(sh, "qemu-aarch64 -L /usr/aarch64-linux-gnu target/c-arm64/testee --help").quiet().read()?;
  if !contract.contains("testee contract") {
    bail!("the arm64 C testee did not print its contract under qemu-aarch64");
  }
  println!("arm64 C testee runs under qemu-aarch64 (printed its contract)");
  let _dir = sh.push_dir("go");
  let tests = "^(TestLayout|TestErrorCodes|TestControl|TestFingerprints|TestNewer|Fuzz)";
  Ok(cmd!(sh, "qemu-aarch64 ../target/go-arm64/ring.test -test.run {tests} -test.count 1").run()?)
}

/// Configures and builds a CMake project whose self-test starts the broker (built here too).
fn build_cmake(sh: &Shell, source: &str, build_dir: &str, flags: &[&str]) -> anyhow::Result<()> {
  let broker = broker::build(sh)?;
  let broker_flag = format!("-DIMPULSE_RING_BROKER={}", broker.display());
  cmd!(sh, "cmake -S {source} -B {build_dir} -DCMAKE_BUILD_TYPE=Debug {broker_flag} {flags...}").run().context(
    "`cmake` is required to build the C and C++ connectors; install CMake 3.20+ (Debian: `apt-get install cmake`)",
  )?;
  // Two jobs at most: CI machines and dev VMs here have two cores shared with the tests.
  cmd!(sh, "cmake --build {build_dir} --parallel 2").run()?;
  Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum Status {
  Passed,
  BuildFailed,
  Failed,
  Skipped,
}

impl Status {
  fn label(self) -> &'static str {
    match self {
      Status::Passed => "pass",
      Status::BuildFailed => "FAIL (build)",
      Status::Failed => "FAIL",
      Status::Skipped => "skipped",
    }
  }
}

struct Outcome {
  suite: String,
  language: &'static str,
  /// For a cross-language pair case: (producer, consumer) languages.
  pair: Option<(&'static str, &'static str)>,
  status: Status,
  duration: Duration,
  note: String,
}

impl flags::TestMatrix {
  pub(crate) fn run(self, sh: &Shell) -> anyhow::Result<()> {
    let run = Run::new();
    let _prefix = sh.push_env(PREFIX_ENV, &run.prefix);
    let before = shm::snapshot(&run.shm_prefix())?;
    if self.faults_only || self.hostile_only {
      return robustness_only(sh, &run, &before, self.faults_only, self.hostile_only);
    }
    let bystander = Bystander::start(sh);
    let mut outcomes = Vec::new();
    for suite in suites() {
      if !sh.path_exists(suite.dir) {
        let note = format!("{}/ does not exist yet", suite.dir);
        println!("\n==> {}: skipped, {note}", suite.name);
        let (status, duration) = (Status::Skipped, Duration::ZERO);
        outcomes.push(Outcome {
          suite: suite.name.into(),
          language: suite.language,
          pair: None,
          status,
          duration,
          note,
        });
        continue;
      }
      let started = Instant::now();
      println!("\n==> {}: build", suite.name);
      let (status, note) = match (suite.build)(sh) {
        Err(err) => (Status::BuildFailed, format!("{err:#}")),
        Ok(()) => {
          println!("\n==> {}: run", suite.name);
          match (suite.run)(sh) {
            Ok(()) => (Status::Passed, String::new()),
            Err(err) => (Status::Failed, format!("{err:#}")),
          }
        }
      };
      let duration = started.elapsed();
      outcomes.push(Outcome { suite: suite.name.into(), language: suite.language, pair: None, status, duration, note });
    }

    let (broker_bin, testees) = run_pairs(sh, &run, &mut outcomes)?;
    let faults = run_faults(sh, &run, broker_bin.as_deref(), &testees, &mut outcomes);
    let hostile = run_hostile(sh, &run, broker_bin.as_deref(), &testees, &mut outcomes);
    run_examples(sh, &run, &mut outcomes)?;

    let leaks = shm::ensure_no_leaks(&before, &run.shm_prefix(), "the test run");
    outcomes.push(bystander.check());
    print_summary(&outcomes);
    print_pairs(&pair_cells(&outcomes));
    if let Some((faults, took)) = &faults {
      fault::print_tables(faults, &testees);
      println!("\nThe fault matrix ran {} cases in {:.1}s", faults.len(), took.as_secs_f64());
    }
    hostile.iter().for_each(|line| println!("{line}"));

    let failed: Vec<_> = outcomes.iter().filter(|o| matches!(o.status, Status::Failed | Status::BuildFailed)).collect();
    if !failed.is_empty() {
      for o in &failed {
        println!("\n{} ({}): {}", o.suite, o.status.label(), o.note);
      }
      let names = failed.iter().map(|o| o.suite.as_str()).collect::<Vec<_>>().join(", ");
      match leaks {
        Ok(()) => bail!("test-matrix: failing suites: {names}"),
        Err(leak) => bail!("test-matrix: failing suites: {names}; and {leak:#}"),
      }
    }
    leaks?;
    println!("\ntest-matrix: all suites passed and /dev/shm is as it was");
    Ok(())
  }
}

/// What makes this run's names its own.
pub(crate) struct Run {
  /// The prefix of every namespace the run creates: `tm<pid>-`.
  pub(crate) prefix: String,
}

impl Run {
  fn new() -> Run {
    Run { prefix: format!("tm{}-", std::process::id()) }
  }

  /// A namespace of the run.
  pub(crate) fn namespace(&self, tag: &str) -> String {
    format!("{}{tag}", self.prefix)
  }

  /// The `/dev/shm` prefix of everything the run's namespaces hold.
  fn shm_prefix(&self) -> String {
    shm::run_prefix(&self.prefix)
  }
}

/// A broker in a namespace outside the run's prefix, started once the run has taken its snapshot of
/// `/dev/shm`, as a developer's `ringctl dev` or another checkout's tests would: the run must neither
/// remove its segments nor count them as its own leak.
struct Bystander {
  ns: String,
  broker: anyhow::Result<broker::Broker>,
}

impl Bystander {
  fn start(sh: &Shell) -> Bystander {
    let ns = format!("bystander-{}", std::process::id());
    println!("\n==> a broker in the foreign namespace `{ns}`, to outlive the run");
    let broker = broker::build(sh).and_then(|bin| broker::start_with(&bin, &ns, &["--log-level", "warn"]));
    Bystander { ns, broker }
  }

  /// Checks that the bystander is still serving with its control segment in place, then stops it.
  fn check(self) -> Outcome {
    let started = Instant::now();
    let ctl = std::path::Path::new("/dev/shm").join(format!("{}ctl", shm::namespace_prefix(&self.ns)));
    let result = self.broker.and_then(|live| {
      if let Some(status) = live.child().try_exit()? {
        bail!("the broker of `{}` died during the run with {}", self.ns, proc::describe(status));
      }
      if !ctl.exists() {
        bail!("{} vanished during the run", ctl.display());
      }
      broker::stop(live)?;
      let left = shm::snapshot(&shm::namespace_prefix(&self.ns))?;
      if !left.is_empty() {
        bail!("the bystander broker left {left:?} in /dev/shm");
      }
      Ok(())
    });
    let (status, note) = match result {
      Ok(()) => (Status::Passed, String::new()),
      Err(err) => (Status::Failed, format!("{err:#}")),
    };
    let suite = "foreign namespace survives the run".to_string();
    Outcome { suite, language: "other", pair: None, status, duration: started.elapsed(), note }
  }
}

/// Runs every cross-language pair case whose two connectors exist, each against a broker of its own.
/// A testee that does not build fails every case that needs it. Returns the broker (once built) and
/// the languages whose testee built, for the fault matrix.
fn run_pairs(
  sh: &Shell,
  run: &Run,
  outcomes: &mut Vec<Outcome>,
) -> anyhow::Result<(Option<PathBuf>, Vec<&'static str>)> {
  let mut broker_bin: Option<PathBuf> = None;
  let mut built: Vec<(&'static str, Result<(), String>)> = Vec::new();
  for case in pairs::cases() {
    let name = case.name();
    let language = case.producer;
    let pair = Some((case.producer, case.consumer));
    let missing = [case.producer, case.consumer].into_iter().map(pairs::language_dir).find(|dir| !sh.path_exists(dir));
    if let Some(dir) = missing {
      let note = format!("{dir}/ does not exist yet");
      println!("\n==> {name}: skipped, {note}");
      let (status, duration) = (Status::Skipped, Duration::ZERO);
      outcomes.push(Outcome { suite: name, language, pair, status, duration, note });
      continue;
    }
    let started = Instant::now();
    println!("\n==> {name}: build");
    let mut build_error = None;
    for lang in [case.producer, case.consumer] {
      if !built.iter().any(|(l, _)| *l == lang) {
        let result = pairs::build(sh, lang).map_err(|e| format!("{e:#}"));
        built.push((lang, result));
      }
      if let Some((_, Err(e))) = built.iter().find(|(l, _)| *l == lang) {
        build_error = Some(format!("the {lang} testee did not build: {e}"));
      }
    }
    if build_error.is_none() && broker_bin.is_none() {
      match broker::build(sh) {
        Ok(bin) => broker_bin = Some(bin),
        Err(e) => build_error = Some(format!("{e:#}")),
      }
    }
    let (status, note) = match (build_error, broker_bin.as_deref()) {
      (Some(note), _) => (Status::BuildFailed, note),
      (None, None) => (Status::BuildFailed, "the broker did not build".to_string()),
      (None, Some(bin)) => {
        println!("\n==> {name}: run against a live broker");
        match pairs::run(sh, bin, &case, run) {
          Ok(()) => (Status::Passed, String::new()),
          Err(err) => (Status::Failed, format!("{err:#}")),
        }
      }
    };
    outcomes.push(Outcome { suite: name, language, pair, status, duration: started.elapsed(), note });
  }
  let testees = pairs::TESTEES.into_iter().filter(|lang| built.iter().any(|(l, r)| l == lang && r.is_ok())).collect();
  Ok((broker_bin, testees))
}

/// `test-matrix --faults-only` and/or `--hostile-only`: builds the broker and every testee, then runs
/// the fault matrix and/or the hostile-app suite alone.
fn robustness_only(
  sh: &Shell,
  run: &Run,
  before: &std::collections::BTreeSet<String>,
  faults: bool,
  hostile: bool,
) -> anyhow::Result<()> {
  let bin = broker::build(sh)?;
  let testees = pairs::build_all(sh);
  let mut outcomes = Vec::new();
  let faults = if faults { run_faults(sh, run, Some(&bin), &testees, &mut outcomes) } else { None };
  let hostile = if hostile { run_hostile(sh, run, Some(&bin), &testees, &mut outcomes) } else { Vec::new() };
  let leaks = shm::ensure_no_leaks(before, &run.shm_prefix(), "the fault matrix and hostile suite");
  print_summary(&outcomes);
  if let Some((faults, took)) = &faults {
    fault::print_tables(faults, &testees);
    println!("\nThe fault matrix ran {} cases in {:.1}s", faults.len(), took.as_secs_f64());
  }
  hostile.iter().for_each(|line| println!("{line}"));
  let failed: Vec<_> = outcomes.iter().filter(|o| o.status != Status::Passed).collect();
  for o in &failed {
    println!("\n{} ({}): {}", o.suite, o.status.label(), o.note);
  }
  leaks?;
  if !failed.is_empty() || testees.len() < pairs::TESTEES.len() {
    bail!("test-matrix: failing cases (or testees that did not build) above");
  }
  Ok(())
}

/// Runs the hostile-app suite with the languages whose testee built; one outcome per attack. Returns
/// its table, to print after the summary.
fn run_hostile(
  sh: &Shell,
  run: &Run,
  broker_bin: Option<&std::path::Path>,
  testees: &[&'static str],
  outcomes: &mut Vec<Outcome>,
) -> Vec<String> {
  let (Some(bin), false) = (broker_bin, testees.is_empty()) else { return Vec::new() };
  println!("\n==> hostile-app suite: {} attacks, well-behaved apps in {}", hostile::attacks().len(), testees.join(" "));
  let started = Instant::now();
  let results = hostile::run_all(&sh.current_dir(), bin, run, testees, 2);
  let each = started.elapsed() / results.len().max(1) as u32;
  let mut table = vec!["\nHostile-app suite (how the victims of each attack ended)".to_string()];
  let width = results.iter().map(|o| o.name.len()).max().unwrap_or(0);
  for o in results {
    let (status, note) = match o.result {
      Ok(victims) => {
        table.push(format!("  {:<width$}  ok    {victims}", o.name));
        (Status::Passed, String::new())
      }
      Err(err) => {
        table.push(format!("  {:<width$}  FAIL", o.name));
        (Status::Failed, err)
      }
    };
    outcomes.push(Outcome { suite: o.name, language: "other", pair: None, status, duration: each, note });
  }
  table.push(format!("The hostile-app suite took {:.1}s", started.elapsed().as_secs_f64()));
  table
}

/// How many fault cases run at once (`RINGCTL_FAULT_JOBS`, default 3): each is a broker and two to
/// four testees, mostly asleep or waiting on each other.
fn fault_jobs() -> usize {
  std::env::var("RINGCTL_FAULT_JOBS").ok().and_then(|v| v.parse().ok()).unwrap_or(3)
}

/// Runs the fault matrix over the languages whose testee built; one outcome per fault.
fn run_faults(
  sh: &Shell,
  run: &Run,
  broker_bin: Option<&std::path::Path>,
  testees: &[&'static str],
  outcomes: &mut Vec<Outcome>,
) -> Option<(Vec<fault::FaultOutcome>, Duration)> {
  let bin = broker_bin?;
  if testees.is_empty() {
    return None;
  }
  println!("\n==> fault matrix: {} languages, {} jobs", testees.len(), fault_jobs());
  let started = Instant::now();
  // `RINGCTL_FAULT_FILTER=broker` (say) keeps only the cases whose name contains it.
  let filter = std::env::var("RINGCTL_FAULT_FILTER").unwrap_or_default();
  let cases: Vec<_> = fault::cases(testees).into_iter().filter(|c| c.name().contains(&filter)).collect();
  let results = fault::run_all(&sh.current_dir(), bin, run, &cases, fault_jobs());
  let took = started.elapsed();
  for kind in fault::Fault::ALL {
    let of_kind: Vec<_> = results.iter().filter(|o| o.case.fault == kind).collect();
    let failed: Vec<_> = of_kind.iter().filter_map(|o| o.result.as_ref().err().map(|e| (o.case.name(), e))).collect();
    let ran = of_kind.len();
    let status = if failed.is_empty() && ran == cases.iter().filter(|c| c.fault == kind).count() {
      Status::Passed
    } else {
      Status::Failed
    };
    let note = failed.iter().map(|(name, err)| format!("{name}: {err}")).collect::<Vec<_>>().join("\n");
    let suite = format!("fault matrix: {} ({ran} cases)", kind.label());
    outcomes.push(Outcome { suite, language: "other", pair: None, status, duration: took / 5, note });
  }
  Some((results, took))
}

/// Runs each declared example against a broker in its own namespace, one outcome per language.
fn run_examples(sh: &Shell, run: &Run, outcomes: &mut Vec<Outcome>) -> anyhow::Result<()> {
  let root = sh.current_dir();
  let config = depl::Config::load(&root)?;
  let mut broker_bin: Option<PathBuf> = None;
  for lang in &config.languages {
    let Some(example) = &lang.example else { continue };
    let suite = format!("{} example", lang.name);
    let language = LANGUAGES.iter().copied().find(|l| *l == lang.name).unwrap_or("other");
    let missing = [&lang.dir, &example.source].into_iter().find(|path| !root.join(path).exists());
    if let Some(missing) = missing {
      let note = format!("{missing} does not exist yet");
      println!("\n==> {suite}: skipped, {note}");
      let (status, duration) = (Status::Skipped, Duration::ZERO);
      outcomes.push(Outcome { suite, language, pair: None, status, duration, note });
      continue;
    }
    let started = Instant::now();
    println!("\n==> {suite}: build");
    let built = (|| {
      for command in &example.build {
        let (program, args) = depl::split(command)?;
        cmd!(sh, "{program} {args...}").run()?;
      }
      if broker_bin.is_none() {
        broker_bin = Some(broker::build(sh)?);
      }
      anyhow::Ok(())
    })();
    let (status, note) = match built {
      Err(err) => (Status::BuildFailed, format!("{err:#}")),
      Ok(()) => {
        println!("\n==> {suite}: run against a live broker");
        let bin = broker_bin.as_deref().expect("built above");
        let ns = run.namespace(&format!("example-{}", lang.name));
        match run_example(bin, &ns, &example.run) {
          Ok(()) => (Status::Passed, String::new()),
          Err(err) => (Status::Failed, format!("{err:#}")),
        }
      }
    };
    outcomes.push(Outcome { suite, language, pair: None, status, duration: started.elapsed(), note });
  }
  Ok(())
}

fn run_example(broker_bin: &std::path::Path, ns: &str, command: &str) -> anyhow::Result<()> {
  let live = broker::start(broker_bin, ns)?;
  let (program, args) = depl::split(command)?;
  let example = proc::start("example", duct::cmd(program, args).env("IMPULSE_RING_NS", ns))?;
  let started = Instant::now();
  let status = loop {
    if let Some(status) = example.try_exit()? {
      break status;
    }
    if started.elapsed() > EXAMPLE_TIMEOUT {
      example.stop(broker::STOP_GRACE).map_err(anyhow::Error::msg)?;
      bail!("`{command}` did not finish within {EXAMPLE_TIMEOUT:?}");
    }
    std::thread::sleep(Duration::from_millis(50));
  };
  broker::stop(live).context("the broker did not stop cleanly after the example")?;
  if !status.success() {
    bail!("`{command}` failed with {}", proc::describe(status));
  }
  Ok(())
}

/// One cell of the pair table: what happened when `producer`'s publisher or caller talked to
/// `consumer`'s subscriber or provider.
#[derive(Clone, Copy)]
enum Cell {
  /// No connector (or no testee) for one of the two languages yet.
  NotBuilt,
  /// The pair's cases ran as part of a suite, with this status.
  Ran(Status),
}

/// The pair table, indexed `[producer][consumer]` in [`LANGUAGES`] order. A language's own cell comes
/// from its suites and example (its self-tests pair the connector with itself); the other cells come
/// from the pair cases of [`pairs::cases`].
fn pair_cells(outcomes: &[Outcome]) -> Vec<Vec<Cell>> {
  let mut cells = vec![vec![Cell::NotBuilt; LANGUAGES.len()]; LANGUAGES.len()];
  let index = |language: &str| LANGUAGES.iter().position(|l| *l == language);
  for outcome in outcomes.iter().filter(|o| o.status != Status::Skipped) {
    let (producer, consumer) = outcome.pair.unwrap_or((outcome.language, outcome.language));
    let (Some(p), Some(c)) = (index(producer), index(consumer)) else {
      continue;
    };
    // A failure anywhere in the cell's runs wins over a pass.
    if matches!(cells[p][c], Cell::NotBuilt | Cell::Ran(Status::Passed)) {
      cells[p][c] = Cell::Ran(outcome.status);
    }
  }
  cells
}

fn print_summary(outcomes: &[Outcome]) {
  println!("\nSuites");
  let width = outcomes.iter().map(|o| o.suite.len()).max().unwrap_or(0).max("suite".len());
  println!("  {:<width$}  {:<12}  {:>9}", "suite", "status", "duration");
  for o in outcomes {
    println!("  {:<width$}  {:<12}  {:>8.1}s", o.suite, o.status.label(), o.duration.as_secs_f64());
  }
}

fn print_pairs(cells: &[Vec<Cell>]) {
  println!("\nPairs (rows: producer = publisher/caller, columns: consumer = subscriber/provider; - = not built yet)");
  let col = LANGUAGES.iter().map(|l| l.len()).max().unwrap_or(0).max("FAIL".len());
  let mut header = format!("  {:<col$}", "");
  for lang in LANGUAGES {
    header.push_str(&format!("  {lang:<col$}"));
  }
  println!("{}", header.trim_end());
  for (producer, row) in LANGUAGES.iter().zip(cells) {
    let mut line = format!("  {producer:<col$}");
    for cell in row {
      let text = match cell {
        Cell::NotBuilt | Cell::Ran(Status::Skipped) => "-",
        Cell::Ran(Status::Passed) => "ok",
        Cell::Ran(_) => "FAIL",
      };
      line.push_str(&format!("  {text:<col$}"));
    }
    println!("{}", line.trim_end());
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn outcome(suite: &str, status: Status) -> Outcome {
    Outcome { suite: suite.into(), language: "rust", pair: None, status, duration: Duration::ZERO, note: String::new() }
  }

  #[test]
  fn rust_pair_cell_passes_when_suite_passes_and_example_is_skipped() {
    let cells = pair_cells(&[outcome("rust workspace", Status::Passed), outcome("rust example", Status::Skipped)]);
    assert!(matches!(cells[0][0], Cell::Ran(Status::Passed)));
    assert!(matches!(cells[0][1], Cell::NotBuilt));
  }

  #[test]
  fn pair_case_fills_its_producer_consumer_cell_only() {
    let mut pubsub = outcome("pubsub publisher=c subscriber=rust", Status::Passed);
    pubsub.language = "c";
    pubsub.pair = Some(("c", "rust"));
    let mut call = outcome("call provider=c caller=rust", Status::Failed);
    call.pair = Some(("rust", "c"));
    let cells = pair_cells(&[outcome("rust workspace", Status::Passed), pubsub, call]);
    assert!(matches!(cells[1][0], Cell::Ran(Status::Passed)));
    assert!(matches!(cells[0][1], Cell::Ran(Status::Failed)));
    assert!(matches!(cells[0][0], Cell::Ran(Status::Passed)));
    assert!(matches!(cells[1][1], Cell::NotBuilt));
  }

  #[test]
  fn rust_pair_cell_fails_when_any_rust_run_fails() {
    let cells = pair_cells(&[outcome("rust workspace", Status::Passed), outcome("rust example", Status::Failed)]);
    assert!(matches!(cells[0][0], Cell::Ran(Status::Failed)));
  }
}
