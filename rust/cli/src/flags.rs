//! Command-line grammar of `ring`, declared with xflags; `main.rs` dispatches on the parsed verbs.
//! Usage errors exit with status 2, like a bad input file.

use std::path::PathBuf;

xflags::xflags! {
  /// The Ring command-line tool: schema fingerprints and what is on the bus.
  cmd ring {
    /// Avro schema tools: the Parsing Canonical Form and the CRC-64-AVRO fingerprint Ring checks.
    cmd schema {
      /// Print the schema's Parsing Canonical Form on one line.
      cmd canonical {
        /// The schema file (JSON).
        required file: PathBuf
      }
      /// Print the schema's CRC-64-AVRO fingerprint as 16 lowercase hex digits.
      cmd fingerprint {
        /// The schema file (JSON).
        required file: PathBuf
      }
    }
    /// List the apps, channels and functions on the bus.
    cmd ls {
      /// Namespace to look in (default: $IMPULSE_RING_NS, else `impulse`).
      optional --ns ns: String
    }
  }
}
