//! `ringctl version`: one version for the whole release, the workspace's, written into every package
//! (Cargo, pyproject and its lock, package.json, the C header's macros, both CMake projects). Without
//! an argument it prints where each package keeps its version and fails when they disagree, which
//! `package --check` does first. The Go module has no version in a file: its tag is `go/v` + this one.
//! The wire version (`IR_SPEC_VERSION`, spec/) is a different thing and is never touched here.

use std::path::Path;

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

use crate::flags;

/// One place a version is written: the text just before it in `file` (the version runs to the next
/// `end`). `part` picks one number of X.Y.Z for files that keep them apart (the C header).
struct Place {
  file: &'static str,
  before: &'static str,
  end: char,
  part: Option<usize>,
}

const fn place(file: &'static str, before: &'static str, end: char) -> Place {
  Place { file, before, end, part: None }
}

const PLACES: [Place; 11] = [
  place("Cargo.toml", "[workspace.package]\nversion = \"", '"'),
  place("Cargo.toml", "impulse-ring-core = { path = \"rust/core\", version = \"", '"'),
  place("Cargo.toml", "impulse-ring-connector = { path = \"rust/connector\", version = \"", '"'),
  place("python/pyproject.toml", "[project]\nname = \"impulse-ring\"\nversion = \"", '"'),
  place("python/uv.lock", "[[package]]\nname = \"impulse-ring\"\nversion = \"", '"'),
  place("ts/package.json", "\"name\": \"impulse-ring\",\n  \"version\": \"", '"'),
  place("c/CMakeLists.txt", "project(ImpulseRing VERSION ", ' '),
  place("cpp/CMakeLists.txt", "project(ImpulseRingCpp VERSION ", ' '),
  Place { file: "c/include/impulse_ring.h", before: "#define IR_VERSION_MAJOR ", end: '\n', part: Some(0) },
  Place { file: "c/include/impulse_ring.h", before: "#define IR_VERSION_MINOR ", end: '\n', part: Some(1) },
  Place { file: "c/include/impulse_ring.h", before: "#define IR_VERSION_PATCH ", end: '\n', part: Some(2) },
];

impl flags::Version {
  pub(crate) fn run(self, sh: &Shell) -> anyhow::Result<()> {
    match self.version {
      None => {
        let version = check(sh)?;
        println!("every package is at version {version}");
        Ok(())
      }
      Some(version) => set(sh, &version),
    }
  }
}

/// The release version, once every place agrees on it; else an error listing each place's.
pub(crate) fn check(sh: &Shell) -> anyhow::Result<String> {
  let root = sh.current_dir();
  let mut found = Vec::new();
  for place in &PLACES {
    let text = read(&root, place.file)?;
    let (start, len) = locate(&text, place)?;
    found.push((place, text[start..start + len].to_string()));
  }
  let header = found.iter().filter(|(p, _)| p.part.is_some()).map(|(_, v)| v.as_str()).collect::<Vec<_>>().join(".");
  // Named by file and the text before the version: Cargo.toml keeps three.
  let label = |p: &Place| {
    format!("{} ({})", p.file, p.before.lines().last().unwrap_or("").trim_end_matches([' ', '"']).trim_start())
  };
  let mut versions =
    found.iter().filter(|(p, _)| p.part.is_none()).map(|(p, v)| (label(p), v.clone())).collect::<Vec<_>>();
  versions.push(("c/include/impulse_ring.h (IR_VERSION_MAJOR, _MINOR, _PATCH)".to_string(), header));
  let release = versions[0].1.clone();
  if versions.iter().any(|(_, v)| *v != release) {
    let table = versions.iter().map(|(file, v)| format!("  {v:<12} {file}")).collect::<Vec<_>>().join("\n");
    bail!("the packages disagree on the release version:\n{table}\nrun `cargo ringctl version X.Y.Z` to set one version everywhere");
  }
  Ok(release)
}

/// Writes `version` into every place, then lets Cargo update its lock file.
fn set(sh: &Shell, version: &str) -> anyhow::Result<()> {
  let parts = version.split('.').collect::<Vec<_>>();
  if parts.len() != 3 || parts.iter().any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
    bail!("`{version}` is not a version X.Y.Z of three numbers (the C header keeps each as a number)");
  }
  let root = sh.current_dir();
  for place in &PLACES {
    let mut text = read(&root, place.file)?;
    let (start, len) = locate(&text, place)?;
    text.replace_range(start..start + len, place.part.map_or(version, |i| parts[i]));
    std::fs::write(root.join(place.file), text).with_context(|| format!("cannot write {}", place.file))?;
  }
  cmd!(sh, "cargo update --workspace --offline").run().context("cannot update Cargo.lock to the new version")?;
  println!("set version {version} in {} places; tag the Go module go/v{version}", PLACES.len());
  check(sh).map(drop)
}

fn read(root: &Path, file: &str) -> anyhow::Result<String> {
  std::fs::read_to_string(root.join(file)).with_context(|| format!("cannot read {file}"))
}

/// Offset and length of `place`'s version in `text`.
fn locate(text: &str, place: &Place) -> anyhow::Result<(usize, usize)> {
  let Some(at) = text.find(place.before) else {
    bail!("cannot find the version in {}: expected it after `{}`", place.file, place.before.escape_default());
  };
  let start = at + place.before.len();
  let len = text[start..].find(place.end).unwrap_or(text.len() - start);
  if len == 0 {
    bail!("the version after `{}` in {} is empty", place.before.escape_default(), place.file);
  }
  Ok((start, len))
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn locate_finds_the_version_between_its_markers() {
    let text = "[package]\n[workspace.package]\nversion = \"1.2.3\"\nedition = \"2021\"\n";
    let (start, len) = locate(text, &PLACES[0]).unwrap();
    assert_eq!(&text[start..start + len], "1.2.3");
  }

  #[test]
  fn a_missing_marker_names_the_file_and_the_marker() {
    let err = locate("nothing here", &PLACES[6]).unwrap_err().to_string();
    assert!(err.contains("c/CMakeLists.txt") && err.contains("project(ImpulseRing VERSION"), "{err}");
  }

  #[test]
  fn the_checked_in_packages_agree() {
    let sh = Shell::new().unwrap();
    sh.change_dir(crate::project_root());
    check(&sh).unwrap();
  }
}
