//! The provider's side of function calls: exposed functions, their handlers, and the links callers
//! open to them (announced by `LinkOpened` events). The reactor serves requests on every link whose
//! handler is in place. Depends on the session only.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use impulse_ring_core::avro::{soe_header, SOE_HEADER_LEN};
use impulse_ring_core::bus::LinkSegment;
use impulse_ring_core::control::*;
use impulse_ring_core::error_code::ErrorCode;
use impulse_ring_core::frame::RingError;
use impulse_ring_core::layout::*;
use impulse_ring_core::ring::Ring;
use impulse_ring_core::segment::Segment;

use crate::codec::open_soe;
use crate::error::Result;
use crate::session::{lock, unexpected, Session};
use crate::snapshot::Published;

/// A function body over raw Avro datums: the request datum in, the response datum or an error message out.
pub type RawHandler = dyn Fn(&[u8]) -> std::result::Result<Vec<u8>, String> + Send + Sync;

/// The provider's end of a link.
pub(crate) struct ServedLink {
  link_id: u64,
  function_id: u64,
  seg: LinkSegment,
  request: Ring,
  response: Ring,
  caller: u32,
  request_fp: u64,
  response_fp: u64,
  /// Responses written and error responses among them, mirrored in `IR_LINK_SERVED` and
  /// `IR_LINK_FAILED` for `Describe`. Only the reactor writes them.
  served: AtomicU64,
  failed: AtomicU64,
}

/// A served link and the handler of its function.
pub(crate) type Serving = (Arc<ServedLink>, Arc<RawHandler>);

#[derive(Default)]
struct State {
  handlers: HashMap<u64, Arc<RawHandler>>,
  served: Vec<Arc<ServedLink>>,
}

/// The functions of one connection and the links callers opened to them.
#[derive(Default)]
pub(crate) struct Provider {
  state: Mutex<State>,
  /// What the reactor polls: every served link whose handler is in place.
  serving: Published<Vec<Serving>>,
}

impl Provider {
  fn publish(&self, state: &State) {
    let serving =
      state.served.iter().filter_map(|l| state.handlers.get(&l.function_id).map(|h| (l.clone(), h.clone()))).collect();
    self.serving.set(serving);
  }

  /// Exposes function `name`; `handler` serves its requests on the reactor thread.
  pub fn expose(
    self: &Arc<Self>,
    session: &Arc<Session>,
    expose: ExposeFunction,
    handler: Arc<RawHandler>,
  ) -> Result<Function> {
    let name = expose.name.clone();
    let request_id = expose.request_id;
    let function_id = match session.request(request_id, expose.into())? {
      ControlMessage::FunctionExposed(m) => m.function_id as u64,
      other => return Err(unexpected("FunctionExposed", &other)),
    };
    let mut state = lock(&self.state);
    state.handlers.insert(function_id, handler);
    self.publish(&state);
    drop(state);
    // Callers may have linked before the handler was in place: let the reactor look again.
    session.doorbell().ring();
    Ok(Function { session: session.clone(), provider: self.clone(), function_id, name })
  }

  fn withdraw(&self, function_id: u64) {
    let mut state = lock(&self.state);
    state.handlers.remove(&function_id);
    self.publish(&state);
  }

  /// Reactor: a `LinkOpened` event, a caller's new link to one of our functions. A link that does not
  /// check out (another provider, an unknown caller, another function) is ignored.
  pub fn open_link(&self, session: &Session, event: LinkOpened) {
    let Ok(seg) = LinkSegment::open(&event.segment) else {
      return;
    };
    let info = seg.info();
    if info.provider != session.app_id
      || info.caller >= session.ctl.max_apps()
      || info.function_id != event.function_id as u64
    {
      return;
    }
    let (Ok(request), Ok(response)) = (seg.request_ring(), seg.response_ring()) else {
      return;
    };
    let link = ServedLink {
      link_id: info.link_id,
      function_id: info.function_id,
      request,
      response,
      caller: info.caller,
      request_fp: info.request_fp,
      response_fp: info.response_fp,
      seg,
      served: AtomicU64::new(0),
      failed: AtomicU64::new(0),
    };
    let mut state = lock(&self.state);
    state.served.push(Arc::new(link));
    self.publish(&state);
  }

  /// Reactor: the caller's side of a link is gone (or the link is useless).
  pub fn link_closed(&self, link_id: u64) {
    let mut state = lock(&self.state);
    state.served.retain(|l| l.link_id != link_id);
    self.publish(&state);
  }

  /// The published list of served links, for the reactor's cache.
  pub fn published(&self) -> &Published<Vec<Serving>> {
    &self.serving
  }

  /// Reactor: whether any served link has a request waiting.
  pub fn has_work(serving: &[Serving]) -> bool {
    serving.iter().any(|(l, _)| l.request.has_data(l.seg.segment()) || l.seg.segment().truncated())
  }

  /// Reactor: serves up to a batch of requests on every link.
  pub fn pump(&self, session: &Session, serving: &[Serving]) {
    for (link, handler) in serving {
      let truncated = || link.seg.segment().truncated();
      if truncated() || serve(session, link, &**handler).is_err() || truncated() {
        // A corrupt link (or one truncated under this app, its lost pages reading zeros) is useless:
        // stop serving it; the caller times out or sees PeerGone, or Corrupt itself.
        self.link_closed(link.link_id);
      }
    }
  }
}

fn call_error(code: ErrorCode, message: String) -> Vec<u8> {
  ControlMessage::CallError(impulse_ring_core::control::CallError { code: code as i32, message }).encode_frame_payload()
}

/// Serves up to a batch of requests on one link; `Err` when its request ring is corrupt.
fn serve(session: &Session, link: &ServedLink, handler: &RawHandler) -> std::result::Result<(), RingError> {
  let seg = link.seg.segment();
  for _ in 0..64 {
    let read = link.request.read(seg, &[IR_FRAME_KIND_CALL_REQUEST], |frame| {
      let outcome = match open_soe(frame.payload, link.request_fp) {
        Ok(datum) => match catch_unwind(AssertUnwindSafe(|| handler(datum))) {
          Ok(Ok(response)) => Ok(response),
          Ok(Err(message)) => Err((ErrorCode::HandlerError, message)),
          Err(_) => Err((ErrorCode::HandlerError, "the handler panicked".to_string())),
        },
        Err(e) => Err((ErrorCode::Decode, e.to_string())),
      };
      (frame.seq, outcome)
    });
    let Some((correlation, outcome)) = read? else { break };
    if link.request.producer_waiting(seg) {
      session.ctl.app_doorbell(link.caller).ring();
    }
    let max = link.response.max_payload();
    let header = soe_header(link.response_fp);
    let (kind, head, payload): (u16, &[u8], Vec<u8>) = match outcome {
      Ok(datum) if SOE_HEADER_LEN + datum.len() <= max => (IR_FRAME_KIND_CALL_OK, &header, datum),
      Ok(datum) => (
        IR_FRAME_KIND_CALL_ERROR,
        &[],
        call_error(
          ErrorCode::TooLarge,
          format!(
            "the response of {} bytes is larger than the link's maximum of {max} bytes",
            SOE_HEADER_LEN + datum.len()
          ),
        ),
      ),
      Err((code, message)) => (IR_FRAME_KIND_CALL_ERROR, &[], call_error(code, message)),
    };
    // The response goes straight into the ring: its SOE header, then the handler's datum.
    let len = head.len() + payload.len();
    let deadline = Instant::now() + Duration::from_secs(5);
    session.doorbell().wait_until(session.wait, Some(deadline), || {
      let written = link.response.try_write(seg, kind, correlation, len, |dst| {
        dst[..head.len()].copy_from_slice(head);
        dst[head.len()..].copy_from_slice(&payload);
      });
      match written {
        Err(RingError::Full) if !link.seg.gone(IR_LINK_CALLER_GONE) => {
          link.response.set_producer_waiting(seg, true);
          None
        }
        _ => Some(()),
      }
    });
    link.response.set_producer_waiting(seg, false);
    count(seg, &link.served, IR_LINK_SERVED);
    if kind == IR_FRAME_KIND_CALL_ERROR {
      count(seg, &link.failed, IR_LINK_FAILED);
    }
    session.ctl.app_doorbell(link.caller).ring();
  }
  Ok(())
}

/// Adds one to a private counter and stores it in its shared word (a figure, Relaxed).
fn count(seg: &Segment, counter: &AtomicU64, offset: usize) {
  let value = counter.load(Ordering::Relaxed) + 1;
  counter.store(value, Ordering::Relaxed);
  seg.u64_at(offset).store(value, Ordering::Relaxed);
}

/// An exposed function; dropping it withdraws the function.
pub struct Function {
  session: Arc<Session>,
  provider: Arc<Provider>,
  function_id: u64,
  name: String,
}

impl Function {
  /// The function's name.
  pub fn name(&self) -> &str {
    &self.name
  }

  /// The broker's id of the function.
  pub fn function_id(&self) -> u64 {
    self.function_id
  }
}

impl Drop for Function {
  fn drop(&mut self) {
    self.provider.withdraw(self.function_id);
    let request_id = self.session.request_id();
    let _ = self.session.post(WithdrawFunction { request_id, function_id: self.function_id as i64 }.into());
  }
}
