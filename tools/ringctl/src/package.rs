//! `ringctl package`: builds every artifact a user installs into `target/package/`, the way each
//! ecosystem ships it: the crates (`cargo publish --dry-run`), the Python wheel and sdist (maturin,
//! the wheel built from the sdist), the Go module as the proxy serves it, the npm tarball with the C
//! library inside, the C/C++ build that `cmake --install` installs, and the release tarball of `ring`
//! and `impulsed`. `--check` then installs each from itself in a clean place (see [`check`]).

mod check;

use std::{
  path::{Path, PathBuf},
  time::Instant,
};

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

use crate::{broker, flags, version};

/// The crates published to crates.io, in dependency order.
const CRATES: [&str; 3] = ["impulse-ring-core", "impulse-ring-connector", "impulsed"];

/// Where the artifacts of one version are.
pub(crate) struct Artifacts {
  pub(crate) version: String,
  /// `target/package/`; Cargo writes its `.crate` files here too.
  pub(crate) dir: PathBuf,
}

impl Artifacts {
  pub(crate) fn krate(&self, name: &str) -> PathBuf {
    self.dir.join(format!("{name}-{}.crate", self.version))
  }
  pub(crate) fn python(&self) -> PathBuf {
    self.dir.join("python")
  }
  /// A directory usable as `GOPROXY=file://...`.
  pub(crate) fn go_proxy(&self) -> PathBuf {
    self.dir.join("goproxy")
  }
  pub(crate) fn npm(&self) -> PathBuf {
    self.dir.join(format!("impulse-ring-{}.tgz", self.version))
  }
  /// The CMake build of the C library and the C++ wrapper that `cmake --install` installs from.
  pub(crate) fn cmake_build(&self) -> PathBuf {
    self.dir.join("cmake-build")
  }
  pub(crate) fn release_name(&self) -> String {
    format!("ring-{}-linux-{}", self.version, std::env::consts::ARCH)
  }
  pub(crate) fn release(&self) -> PathBuf {
    self.dir.join(format!("{}.tar.gz", self.release_name()))
  }
}

impl flags::Package {
  pub(crate) fn run(self, sh: &Shell) -> anyhow::Result<()> {
    let version = version::check(sh)?;
    let root = sh.current_dir();
    let artifacts = Artifacts { version, dir: broker::target_dir(&root).join("package") };
    sh.create_dir(&artifacts.dir)?;
    type Step = (&'static str, fn(&Shell, &Artifacts) -> anyhow::Result<()>);
    let steps: [Step; 6] = [
      ("rust crates", build_crates),
      ("release tarball (ring, impulsed)", build_release),
      ("c/c++ (cmake)", build_cmake),
      ("python wheel and sdist", build_python),
      ("go module zip", build_go),
      ("npm tarball", build_npm),
    ];
    for (name, step) in steps {
      let started = Instant::now();
      println!("\n==> package: {name}");
      step(sh, &artifacts).with_context(|| format!("packaging {name} failed"))?;
      println!("==> package: {name} built in {:.1?}", started.elapsed());
    }
    println!("\n==> package: version {} built into {}", artifacts.version, artifacts.dir.display());
    if self.check {
      check::run(sh, &artifacts)?;
    }
    Ok(())
  }
}

/// `cargo publish --dry-run` of the three crates: packages them into `target/package/` (with the
/// local overlay that lets each depend on the unpublished one before it) and fails on any warning,
/// such as missing metadata. Building them from the `.crate` files is `--check`'s job.
fn build_crates(sh: &Shell, artifacts: &Artifacts) -> anyhow::Result<()> {
  // A stale `.crate` of an earlier run must not stand in for one this run failed to write.
  for name in CRATES {
    let _ = std::fs::remove_file(artifacts.krate(name));
  }
  let packages = CRATES.iter().flat_map(|c| ["-p", c]).collect::<Vec<_>>();
  let output = cmd!(sh, "cargo publish --dry-run --allow-dirty --no-verify {packages...}").ignore_status().output()?;
  let stderr = String::from_utf8_lossy(&output.stderr);
  eprint!("{stderr}");
  if !output.status.success() {
    bail!("`cargo publish --dry-run` failed");
  }
  let warnings = stderr
    .lines()
    .filter(|l| l.starts_with("warning:") && !l.contains("aborting upload due to dry run"))
    .collect::<Vec<_>>();
  if !warnings.is_empty() {
    bail!("`cargo publish --dry-run` warned; fix the crates' metadata:\n{}", warnings.join("\n"));
  }
  // A multi-package publish leaves its `.crate` files in `tmp-crate/` (Cargo's staging directory for
  // the local registry overlay) rather than beside it, as `cargo package` would.
  for name in CRATES {
    let krate = artifacts.krate(name);
    let staged = artifacts.dir.join("tmp-crate").join(krate.file_name().expect("a file name"));
    if !krate.exists() && staged.exists() {
      std::fs::copy(&staged, &krate).with_context(|| format!("cannot copy {}", staged.display()))?;
    }
    if !krate.exists() {
      bail!("`cargo publish --dry-run` wrote no {}", krate.display());
    }
  }
  Ok(())
}

/// `ring` and `impulsed` in release mode, with the licence, the README, the systemd units and the
/// operator docs, as `ring-<version>-linux-<arch>.tar.gz`.
fn build_release(sh: &Shell, artifacts: &Artifacts) -> anyhow::Result<()> {
  cmd!(sh, "cargo build --release -p impulsed -p ring-cli").run()?;
  let release = broker::target_dir(&sh.current_dir()).join("release");
  let name = artifacts.release_name();
  let stage = artifacts.dir.join(&name);
  if sh.path_exists(&stage) {
    sh.remove_path(&stage)?;
  }
  for bin in ["ring", "impulsed"] {
    let from = broker::existing(release.join(bin), &format!("the release binary `{bin}`"))?;
    sh.copy_file(from, sh.create_dir(stage.join("bin"))?)?;
  }
  sh.copy_file("LICENSE", &stage)?;
  sh.copy_file("README.md", &stage)?;
  sh.copy_file("CHANGELOG.md", &stage)?;
  sh.copy_file("docs/running.md", sh.create_dir(stage.join("docs"))?)?;
  sh.copy_file("packaging/systemd/impulsed.service", sh.create_dir(stage.join("systemd"))?)?;
  sh.copy_file("packaging/systemd/user/impulsed.service", sh.create_dir(stage.join("systemd/user"))?)?;
  let (dir, tarball) = (&artifacts.dir, artifacts.release());
  cmd!(sh, "strip {stage}/bin/ring {stage}/bin/impulsed").run().context("`strip` (binutils) is required")?;
  cmd!(sh, "tar -C {dir} -czf {tarball} {name}").run()?;
  sh.remove_path(&stage)?;
  Ok(())
}

/// Configures and builds the C library (shared and static) and the C++ wrapper target in Release, for
/// `cmake --install`. No tests: the package is what a user builds.
fn build_cmake(sh: &Shell, artifacts: &Artifacts) -> anyhow::Result<()> {
  let build = artifacts.cmake_build();
  cmd!(sh, "cmake -S c -B {build} -DCMAKE_BUILD_TYPE=Release -DIMPULSE_RING_BUILD_TESTS=OFF")
    .run()
    .context("`cmake` is required to package the C and C++ connectors; install CMake 3.16+")?;
  cmd!(sh, "cmake --build {build} --parallel 2").run()?;
  Ok(())
}

/// The sdist, then the abi3 wheel built from it (so a file missing from the sdist fails here), both
/// through maturin, the build backend python/pyproject.toml names. The wheel is tagged manylinux_2_34
/// (glibc 2.34, Debian 12 and Ubuntu 22.04 on) so that PyPI takes it; maturin checks the extension's
/// glibc symbols against that tag. A wheel for older systems would be built in a manylinux container.
fn build_python(sh: &Shell, artifacts: &Artifacts) -> anyhow::Result<()> {
  let out = artifacts.python();
  if sh.path_exists(&out) {
    sh.remove_path(&out)?;
  }
  cmd!(sh, "uv --version")
    .quiet()
    .run()
    .context("`uv` is required to package python/; install it with `pip install uv`")?;
  cmd!(sh, "uv build python --out-dir {out}")
    .env("MATURIN_PEP517_ARGS", "--compatibility manylinux_2_34 --strip")
    .run()?;
  Ok(())
}

/// The Go module as the module proxy serves it (`@v/list`, `.info`, `.mod`, `.zip`), made by
/// golang.org/x/mod/zip (tools/ringctl/gomodzip) from the module's tracked files and the licence.
fn build_go(sh: &Shell, artifacts: &Artifacts) -> anyhow::Result<()> {
  cmd!(sh, "go version").quiet().run().context("`go` is required to package go/; install Go 1.26+")?;
  let stage = artifacts.dir.join("go-module");
  let proxy = artifacts.go_proxy();
  for dir in [&stage, &proxy] {
    if sh.path_exists(dir) {
      sh.remove_path(dir)?;
    }
  }
  copy_tracked(sh, "go", &stage)?;
  sh.copy_file("LICENSE", &stage)?;
  let version = format!("v{}", artifacts.version);
  cmd!(sh, "go -C tools/ringctl/gomodzip run . {stage} {version} {proxy}").run()?;
  sh.remove_path(&stage)?;
  Ok(())
}

/// `npm pack` of ts/ with the C library it loads through Bun FFI inside (`native/`, where
/// ts/src/ffi.ts looks first after IMPULSE_RING_LIB), built here in Release. The tarball is for this
/// machine's architecture.
fn build_npm(sh: &Shell, artifacts: &Artifacts) -> anyhow::Result<()> {
  cmd!(sh, "npm --version").quiet().run().context("`npm` is required to pack ts/; install Node.js 20+")?;
  let stage = artifacts.dir.join("npm");
  if sh.path_exists(&stage) {
    sh.remove_path(&stage)?;
  }
  copy_tracked(sh, "ts/src", &stage.join("src"))?;
  for file in ["ts/package.json", "ts/README.md", "LICENSE"] {
    sh.copy_file(file, &stage)?;
  }
  let lib = so_file(&artifacts.cmake_build())?;
  sh.copy_file(lib, sh.create_dir(stage.join("native"))?.join("libimpulse_ring.so"))?;
  let dir = &artifacts.dir;
  let _cd = sh.push_dir(&stage);
  cmd!(sh, "npm pack --pack-destination {dir}").run()?;
  drop(_cd);
  sh.remove_path(&stage)?;
  if !artifacts.npm().exists() {
    bail!("`npm pack` did not write {}; does ts/package.json name `impulse-ring`?", artifacts.npm().display());
  }
  Ok(())
}

/// The shared library itself (not its symlinks) in a CMake build directory.
fn so_file(build: &Path) -> anyhow::Result<PathBuf> {
  let path = build.join("libimpulse_ring.so");
  std::fs::canonicalize(&path).with_context(|| format!("the C library was not built at {}", path.display()))
}

/// Copies the files git tracks under `from` into `to`, keeping their relative paths: what a clean
/// clone holds, nothing a build left behind.
fn copy_tracked(sh: &Shell, from: &str, to: &Path) -> anyhow::Result<()> {
  let files = cmd!(sh, "git ls-files -- {from}").read().context("`git` is required to package")?;
  for file in files.lines() {
    let relative = Path::new(file).strip_prefix(from)?;
    let dest = to.join(relative);
    sh.create_dir(dest.parent().expect("a file has a parent"))?;
    sh.copy_file(file, &dest)?;
  }
  Ok(())
}
