//! One measured figure, printed as one JSON object per line: the format `ringctl bench --json` keeps
//! and the table is built from. Fields that do not apply are null.

use hdrhistogram::Histogram;

/// A result line.
#[derive(serde::Serialize, Default, Clone)]
pub struct Row {
  pub case: &'static str,
  pub system: &'static str,
  pub payload_bytes: u64,
  pub wait: String,
  pub subscribers: Option<u32>,
  pub p50_ns: Option<u64>,
  pub p99_ns: Option<u64>,
  pub p999_ns: Option<u64>,
  pub msgs_per_s: Option<f64>,
  pub bytes_per_s: Option<f64>,
}

impl Row {
  pub fn new(case: &'static str, system: &'static str, payload_bytes: u64, wait: &str) -> Row {
    Row { case, system, payload_bytes, wait: wait.to_string(), ..Row::default() }
  }

  /// Fills the percentiles from a histogram of nanoseconds.
  pub fn latency(mut self, hist: &Histogram<u64>) -> Row {
    self.p50_ns = Some(hist.value_at_quantile(0.5));
    self.p99_ns = Some(hist.value_at_quantile(0.99));
    self.p999_ns = Some(hist.value_at_quantile(0.999));
    self
  }

  /// Fills the rates from a message count over a duration.
  pub fn rate(mut self, messages: u64, seconds: f64) -> Row {
    let per_s = messages as f64 / seconds;
    self.msgs_per_s = Some(per_s);
    self.bytes_per_s = Some(per_s * self.payload_bytes as f64);
    self
  }

  pub fn subscribers(mut self, n: u32) -> Row {
    self.subscribers = Some(n);
    self
  }

  pub fn print(&self) {
    println!("{}", serde_json::to_string(self).expect("a row serialises"));
  }
}

/// A histogram of nanoseconds from 1 ns to 10 s with 3 significant digits.
pub fn histogram() -> Histogram<u64> {
  Histogram::new_with_bounds(1, 10_000_000_000, 3).expect("valid histogram bounds")
}
