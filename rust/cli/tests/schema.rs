//! Runs the built `ring` binary on schema files: canonical forms and fingerprints on stdout, and exit
//! status 2 with one line on stderr for invalid JSON, invalid schemas and unreadable files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ring(args: &[&str]) -> Output {
  Command::new(env!("CARGO_BIN_EXE_ring")).args(args).output().expect("run ring")
}

fn example(name: &str) -> String {
  let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec/schemas/examples").join(name);
  path.to_string_lossy().into_owned()
}

/// A file in a per-test scratch directory under the target directory.
fn scratch_file(test: &str, contents: &str) -> PathBuf {
  let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(test);
  std::fs::create_dir_all(&dir).expect("scratch dir");
  let path = dir.join("schema.avsc");
  std::fs::write(&path, contents).expect("write scratch schema");
  path
}

fn stdout(output: &Output) -> String {
  String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
  String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn fingerprint_of_int_is_16_hex_digits() {
  let path = scratch_file("fingerprint_of_int", "\"int\"\n");
  let output = ring(&["schema", "fingerprint", path.to_str().expect("utf-8 path")]);
  assert!(output.status.success(), "{}", stderr(&output));
  assert_eq!(stdout(&output), "7275d51a3f395c8f\n");
}

#[test]
fn canonical_form_is_one_line_without_doc_or_defaults() {
  let output = ring(&["schema", "canonical", &example("add_request.avsc")]);
  assert!(output.status.success(), "{}", stderr(&output));
  assert_eq!(
    stdout(&output),
    "{\"name\":\"impulse.ring.examples.AddRequest\",\"type\":\"record\",\
     \"fields\":[{\"name\":\"a\",\"type\":\"long\"},{\"name\":\"b\",\"type\":\"long\"}]}\n"
  );
}

#[test]
fn invalid_json_exits_2_with_one_line_naming_the_file() {
  let path = scratch_file("invalid_json", "{\"type\": ");
  let path = path.to_str().expect("utf-8 path");
  let output = ring(&["schema", "fingerprint", path]);
  assert_eq!(output.status.code(), Some(2));
  assert!(stdout(&output).is_empty());
  let err = stderr(&output);
  assert!(err.starts_with(&format!("ring: invalid schema in {path}: schema is not valid json")), "{err}");
  assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn invalid_schema_exits_2() {
  let path = scratch_file("invalid_schema", "{\"type\": \"record\", \"name\": \"R\"}");
  let path = path.to_str().expect("utf-8 path");
  let output = ring(&["schema", "canonical", path]);
  assert_eq!(output.status.code(), Some(2));
  let err = stderr(&output);
  assert!(err.starts_with(&format!("ring: invalid schema in {path}: json is not a valid avro schema")), "{err}");
  assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn unreadable_file_exits_2() {
  let output = ring(&["schema", "fingerprint", "/nonexistent/ring/schema.avsc"]);
  assert_eq!(output.status.code(), Some(2));
  assert!(stderr(&output).starts_with("ring: cannot read /nonexistent/ring/schema.avsc"), "{}", stderr(&output));
}

#[test]
fn hostile_schemas_exit_2_with_one_line_instead_of_panicking() {
  let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec/vectors/invalid-schemas.txt");
  let text = std::fs::read_to_string(vectors).expect("spec/vectors/invalid-schemas.txt");
  let mut schemas: Vec<String> = text.lines().filter_map(|l| l.strip_prefix("schema: ")).map(str::to_owned).collect();
  assert!(schemas.len() >= 15);
  schemas.push(format!("[{}\"int\"]", "\"long\",".repeat(10_000)));
  for (i, schema) in schemas.iter().enumerate() {
    let path = scratch_file(&format!("hostile_{i}"), schema);
    let output = ring(&["schema", "fingerprint", path.to_str().expect("utf-8 path")]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "case {i}: {err}");
    assert!(err.starts_with("ring: invalid schema in "), "case {i}: {err}");
    assert_eq!(err.lines().count(), 1, "case {i}: {err}");
  }
}
