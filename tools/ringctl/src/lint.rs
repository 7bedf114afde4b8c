//! `ringctl lint`: runs the format and lint checks `.depl/config.yaml` declares, for every language
//! whose directory exists. Languages not started yet are skipped with a note. Every check runs, then
//! the verb fails listing the ones that did not pass.

use std::path::{Path, PathBuf};

use anyhow::bail;
use xshell::{cmd, Shell};

use crate::{depl, flags};

/// Directories never searched for `{files}`: build output, dependencies, virtual environments.
const IGNORED_DIRS: [&str; 5] = ["target", "build", "node_modules", ".venv", "__pycache__"];

impl flags::Lint {
  pub(crate) fn run(self, sh: &Shell) -> anyhow::Result<()> {
    let root = sh.current_dir();
    let config = depl::Config::load(&root)?;
    let mut failed = Vec::new();
    for lang in &config.languages {
      if !root.join(&lang.dir).is_dir() {
        println!("==> {}: skipped, {}/ does not exist yet", lang.name, lang.dir);
        continue;
      }
      for check in &lang.checks {
        let label = format!("{} {}", lang.name, check.name);
        println!("==> {label}: {}", check.run);
        match run_check(sh, &root, lang, check) {
          Ok(true) => {}
          Ok(false) => println!("    skipped: no {} files under {}/", lang.files.join("/"), lang.dir),
          Err(err) => {
            println!("    FAILED: {err:#}");
            failed.push(label);
          }
        }
      }
    }
    if !failed.is_empty() {
      bail!("lint: failing checks: {}", failed.join(", "));
    }
    println!("lint: all checks passed");
    Ok(())
  }
}

/// Runs one check; `Ok(false)` when it has no files to look at.
fn run_check(sh: &Shell, root: &Path, lang: &depl::Language, check: &depl::Check) -> anyhow::Result<bool> {
  let (program, args) = depl::split(&check.run)?;
  let mut words = vec![program];
  for word in args {
    if word == "{files}" {
      let files = files_under(&root.join(&lang.dir), &lang.files)?;
      if files.is_empty() {
        return Ok(false);
      }
      words.extend(files.iter().map(|f| f.strip_prefix(root).unwrap_or(f).display().to_string()));
    } else {
      words.push(word);
    }
  }
  let Some((program, args)) = words.split_first() else { bail!("the check's `run` is empty") };
  if !on_path(program) {
    bail!("`{program}` is not installed; {}", check.hint);
  }
  if check.fail_on_output {
    let output = cmd!(sh, "{program} {args...}").read()?;
    if !output.trim().is_empty() {
      bail!("`{program}` reported:\n{output}");
    }
  } else {
    cmd!(sh, "{program} {args...}").run()?;
  }
  Ok(true)
}

/// Every file under `dir` whose extension is in `extensions`, sorted, skipping hidden and build dirs.
fn files_under(dir: &Path, extensions: &[String]) -> anyhow::Result<Vec<PathBuf>> {
  let mut found = Vec::new();
  let mut pending = vec![dir.to_path_buf()];
  while let Some(dir) = pending.pop() {
    for entry in std::fs::read_dir(&dir)? {
      let path = entry?.path();
      let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
      if path.is_dir() {
        if !name.starts_with('.') && !IGNORED_DIRS.contains(&name.as_str()) {
          pending.push(path);
        }
      } else if path.extension().is_some_and(|ext| extensions.iter().any(|e| ext == e.as_str())) {
        found.push(path);
      }
    }
  }
  found.sort();
  Ok(found)
}

/// Whether `program` can be run: a path that exists, or a name found on `PATH`.
fn on_path(program: &str) -> bool {
  if program.contains('/') {
    return Path::new(program).exists();
  }
  std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}
