//! `.depl/config.yaml`, the per-language CI declaration, and the small YAML subset ringctl parses by
//! hand (comments, block mappings, block sequences, `[a, b]` lists, plain or double-quoted scalars) so
//! that ringctl needs no YAML dependency. The file's own header documents the subset.

use std::path::Path;

use anyhow::{bail, Context};

/// Where the CI declaration lives, relative to the workspace root.
pub(crate) const PATH: &str = ".depl/config.yaml";

/// The whole CI declaration.
pub(crate) struct Config {
  /// In file order, which is the order checks run in.
  pub(crate) languages: Vec<Language>,
}

/// One language's checks and example.
pub(crate) struct Language {
  pub(crate) name: String,
  /// Relative to the root; the language's checks are skipped while it does not exist.
  pub(crate) dir: String,
  /// Extensions (without the dot) that a `{files}` argument expands to.
  pub(crate) files: Vec<String>,
  pub(crate) checks: Vec<Check>,
  /// Commands that build the language's example, then the one that runs it against a live broker.
  pub(crate) example: Option<Example>,
}

/// A format or lint command that must exit 0.
pub(crate) struct Check {
  pub(crate) name: String,
  /// Split on spaces and run without a shell; `{files}` expands to the language's files.
  pub(crate) run: String,
  /// What a newcomer should install when the command's program is missing.
  pub(crate) hint: String,
  /// The check also fails when the command prints anything, for tools that report but exit 0.
  pub(crate) fail_on_output: bool,
}

/// How to build and run a connector's example against a live broker.
pub(crate) struct Example {
  /// The example's main file; the example is skipped while it does not exist.
  pub(crate) source: String,
  /// Commands run in order before the broker starts.
  pub(crate) build: Vec<String>,
  /// The example itself, run with `IMPULSE_RING_NS` set to the live broker's namespace.
  pub(crate) run: String,
}

/// Splits a declared command into its program and arguments; no shell is involved, so no quoting.
pub(crate) fn split(command: &str) -> anyhow::Result<(String, Vec<String>)> {
  let mut words = command.split_whitespace().map(str::to_string);
  let program = words.next().with_context(|| format!("{PATH}: empty command"))?;
  Ok((program, words.collect()))
}

impl Config {
  pub(crate) fn load(root: &Path) -> anyhow::Result<Config> {
    let path = root.join(PATH);
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {PATH}; it declares the CI"))?;
    Config::parse(&text).with_context(|| format!("{PATH} is not in the format ringctl reads (see its header)"))
  }

  fn parse(text: &str) -> anyhow::Result<Config> {
    let doc = parse_yaml(text)?;
    let mut languages = Vec::new();
    for (name, lang) in doc.get("languages")?.map("languages")? {
      let at = format!("languages.{name}");
      let mut checks = Vec::new();
      if let Ok(list) = lang.get("checks") {
        for (i, check) in list.list(&format!("{at}.checks"))?.iter().enumerate() {
          let at = format!("{at}.checks[{i}]");
          checks.push(Check {
            name: check.get_str("name", &at)?,
            run: check.get_str("run", &at)?,
            hint: check.get_str("hint", &at)?,
            fail_on_output: match check.get("fail_on_output") {
              Ok(flag) => flag.str(&at)? == "true",
              Err(_) => false,
            },
          });
        }
      }
      let example = match lang.get("example") {
        Ok(example) => {
          let at = format!("{at}.example");
          let build = match example.get("build") {
            Ok(build) => build.list(&format!("{at}.build"))?.iter().map(|b| b.str(&at)).collect::<Result<_, _>>()?,
            Err(_) => Vec::new(),
          };
          Some(Example { source: example.get_str("source", &at)?, build, run: example.get_str("run", &at)? })
        }
        Err(_) => None,
      };
      let files = match lang.get("files") {
        Ok(files) => files.list(&format!("{at}.files"))?.iter().map(|f| f.str(&at)).collect::<Result<_, _>>()?,
        Err(_) => Vec::new(),
      };
      languages.push(Language { name: name.clone(), dir: lang.get_str("dir", &at)?, files, checks, example });
    }
    Ok(Config { languages })
  }
}

/// A parsed node of the YAML subset.
#[derive(Debug, PartialEq)]
enum Yaml {
  Str(String),
  List(Vec<Yaml>),
  /// Keys in file order.
  Map(Vec<(String, Yaml)>),
}

impl Yaml {
  fn get(&self, key: &str) -> anyhow::Result<&Yaml> {
    match self {
      Yaml::Map(entries) => {
        entries.iter().find(|(k, _)| k == key).map(|(_, v)| v).with_context(|| format!("missing key `{key}`"))
      }
      _ => bail!("expected a mapping holding `{key}`"),
    }
  }
  fn get_str(&self, key: &str, at: &str) -> anyhow::Result<String> {
    self.get(key).with_context(|| format!("in {at}"))?.str(&format!("{at}.{key}"))
  }
  fn str(&self, at: &str) -> anyhow::Result<String> {
    match self {
      Yaml::Str(s) => Ok(s.clone()),
      _ => bail!("{at}: expected a single value"),
    }
  }
  fn list(&self, at: &str) -> anyhow::Result<&[Yaml]> {
    match self {
      Yaml::List(items) => Ok(items),
      _ => bail!("{at}: expected a list"),
    }
  }
  fn map(&self, at: &str) -> anyhow::Result<&[(String, Yaml)]> {
    match self {
      Yaml::Map(entries) => Ok(entries),
      _ => bail!("{at}: expected a mapping"),
    }
  }
}

/// One meaningful line: its 1-based number, indentation and content without the comment.
struct Line {
  number: usize,
  indent: usize,
  text: String,
}

fn parse_yaml(text: &str) -> anyhow::Result<Yaml> {
  let mut lines = Vec::new();
  for (i, raw) in text.lines().enumerate() {
    if raw.contains('\t') {
      bail!("line {}: tabs are not allowed, indent with spaces", i + 1);
    }
    let content = strip_comment(raw).trim_end();
    if content.trim().is_empty() {
      continue;
    }
    let indent = content.len() - content.trim_start().len();
    lines.push(Line { number: i + 1, indent, text: content.trim_start().to_string() });
  }
  let mut pos = 0;
  let doc = parse_block(&mut lines, &mut pos, 0)?;
  if let Some(line) = lines.get(pos) {
    bail!("line {}: unexpected indentation", line.number);
  }
  Ok(doc)
}

/// Removes a `#` comment that starts the line or follows a space, outside double quotes.
fn strip_comment(line: &str) -> &str {
  let mut quoted = false;
  let mut prev = ' ';
  for (i, c) in line.char_indices() {
    match c {
      '"' if prev != '\\' => quoted = !quoted,
      '#' if !quoted && prev == ' ' => return &line[..i],
      _ => {}
    }
    prev = c;
  }
  line
}

fn parse_block(lines: &mut [Line], pos: &mut usize, indent: usize) -> anyhow::Result<Yaml> {
  let Some(first) = lines.get(*pos) else {
    return Ok(Yaml::Str(String::new()));
  };
  if first.text == "-" || first.text.starts_with("- ") {
    let mut items = Vec::new();
    while *pos < lines.len() && lines[*pos].indent == indent && lines[*pos].text.starts_with('-') {
      let line = &mut lines[*pos];
      let rest = line.text[1..].trim_start().to_string();
      if rest.is_empty() {
        *pos += 1;
        let child = lines.get(*pos).map_or(indent, |l| l.indent);
        items.push(if child > indent { parse_block(lines, pos, child)? } else { Yaml::Str(String::new()) });
      } else if split_key(&rest).is_some() {
        // `- key: value` opens a mapping whose keys line up with `key`.
        let inner = indent + (line.text.len() - rest.len());
        line.indent = inner;
        line.text = rest;
        items.push(parse_block(lines, pos, inner)?);
      } else {
        items.push(scalar(&rest, line.number)?);
        *pos += 1;
      }
    }
    return Ok(Yaml::List(items));
  }
  let mut entries: Vec<(String, Yaml)> = Vec::new();
  while *pos < lines.len() && lines[*pos].indent == indent {
    let line = &lines[*pos];
    let number = line.number;
    let Some((key, value)) = split_key(&line.text) else {
      bail!("line {number}: expected `key: value`");
    };
    if entries.iter().any(|(k, _)| k == key) {
      bail!("line {number}: duplicate key `{key}`");
    }
    let (key, value) = (key.to_string(), value.to_string());
    *pos += 1;
    let node = if !value.is_empty() {
      scalar(&value, number)?
    } else {
      match lines.get(*pos) {
        Some(next) if next.indent > indent => {
          let child = next.indent;
          parse_block(lines, pos, child)?
        }
        _ => Yaml::Str(String::new()),
      }
    };
    entries.push((key, node));
  }
  if let Some(line) = lines.get(*pos) {
    if line.indent > indent {
      bail!("line {}: unexpected indentation", line.number);
    }
  }
  Ok(Yaml::Map(entries))
}

/// Splits `key: value` or `key:`; keys are plain words.
fn split_key(text: &str) -> Option<(&str, &str)> {
  let (key, value) = if let Some(key) = text.strip_suffix(':') { (key, "") } else { text.split_once(": ")? };
  let plain = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
  plain.then(|| (key, value.trim()))
}

fn scalar(text: &str, number: usize) -> anyhow::Result<Yaml> {
  if let Some(inner) = text.strip_prefix('[') {
    let Some(inner) = inner.strip_suffix(']') else { bail!("line {number}: unclosed `[`") };
    let items = inner.split(',').map(str::trim).filter(|s| !s.is_empty());
    return items.map(|item| scalar(item, number)).collect::<Result<_, _>>().map(Yaml::List);
  }
  if let Some(inner) = text.strip_prefix('"') {
    let Some(inner) = inner.strip_suffix('"') else { bail!("line {number}: unclosed `\"`") };
    return Ok(Yaml::Str(inner.replace("\\\"", "\"").replace("\\\\", "\\")));
  }
  Ok(Yaml::Str(text.to_string()))
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn parses_nested_maps_lists_of_maps_and_inline_lists() {
    let text = "\
# header
a:
  b: one # trailing comment
  c: [x, y]
  d:
    - name: n1
      run: \"cargo fmt # not a comment\"
    - plain item
";
    let doc = parse_yaml(text).unwrap();
    let a = doc.get("a").unwrap();
    assert_eq!(a.get("b").unwrap(), &Yaml::Str("one".into()));
    assert_eq!(a.get("c").unwrap(), &Yaml::List(vec![Yaml::Str("x".into()), Yaml::Str("y".into())]));
    let d = a.get("d").unwrap().list("d").unwrap();
    assert_eq!(d[0].get("run").unwrap(), &Yaml::Str("cargo fmt # not a comment".into()));
    assert_eq!(d[1], Yaml::Str("plain item".into()));
  }

  #[test]
  fn rejects_stray_indentation_with_its_line_number() {
    let err = parse_yaml("a: 1\n    b: 2\n").unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");
  }

  #[test]
  fn the_checked_in_config_parses() {
    let root = crate::project_root();
    let config = Config::load(&root).unwrap();
    assert!(config.languages.iter().any(|l| l.name == "rust" && !l.checks.is_empty()));
  }
}
