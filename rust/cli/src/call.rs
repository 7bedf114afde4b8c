//! `ring call FUNCTION JSON`: encodes the JSON argument with the function's request schema (from the
//! broker's registry, via `Describe`), calls the function and prints the response as JSON. An
//! argument that does not fit the schema is refused, naming the field, before anything is sent.

use impulse_ring_connector::{CallError, DescribeError};

use crate::args::CallArgs;
use crate::avro_json::Codec;
use crate::bus::{connect, print_json, Failure, Outcome};
use crate::ls::SELF;

pub fn run(args: CallArgs) -> Outcome {
  let request: serde_json::Value =
    serde_json::from_str(&args.request).map_err(|e| Failure::BadInput(format!("the request is not JSON: {e}")))?;
  let conn = connect(&args.bus, SELF)?;
  let description = match conn.describe(&args.function) {
    Err(DescribeError::UnknownChannel { .. }) => {
      return Err(Failure::Runtime(format!("UnknownFunction: no function is named `{}`", args.function)))
    }
    other => other?,
  };
  let Some(function) = description.functions.first() else {
    return Err(Failure::Runtime(format!("UnknownFunction: `{}` is a channel, not a function", args.function)));
  };
  let request_codec = Codec::new(&function.request_schema).map_err(Failure::Runtime)?;
  let response_codec = Codec::new(&function.response_schema).map_err(Failure::Runtime)?;
  let datum =
    request_codec.encode(&request).map_err(|e| Failure::BadInput(format!("the request does not fit: {e}")))?;
  let response = conn.call_raw_blocking(
    &args.function,
    args.key.as_deref(),
    &datum,
    &function.request_schema,
    &function.response_schema,
    args.timeout,
  );
  let response = match response {
    Ok(response) => response,
    Err(CallError::HandlerError { message }) => return Err(Failure::Runtime(format!("HandlerError: {message}"))),
    Err(e) => return Err(e.into()),
  };
  print_json(&response_codec.decode(&response).map_err(Failure::Runtime)?);
  Ok(())
}
