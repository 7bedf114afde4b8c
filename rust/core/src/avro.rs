//! Avro for Ring, in four parts: [`schema`] (bounded by [`validate`] before `apache-avro` parses it, the
//! Parsing Canonical Form and the CRC-64-AVRO fingerprint), [`codec`] (the binary encoding and the Single
//! Object Encoding header of every frame payload), [`record`] (typed fields and the [`avro_record!`](crate::avro_record)
//! macro the control records are declared with) and [`pretty`] (the generated `.avsc` layout).

pub mod codec;
pub mod pretty;
pub mod record;
pub mod schema;
pub mod validate;

pub use codec::*;
pub use pretty::schema_to_pretty_json;
pub use record::*;
pub use schema::*;
