// impulse_ring.hpp: a header-only C++17 wrapper over Ring's C connector (impulse_ring.h): RAII handles
// (Connection, Publisher, Subscriber, Function, Call), byte views instead of pointer + length,
// std::chrono timeouts, std::optional for "no message yet", and exceptions that carry the C error code
// and message. It adds no protocol of its own: every call goes straight to the C library.
//
//   impulse_ring::Connection conn("my-app");
//   auto pub = conn.publish_channel("metrics", schema_json);
//   auto sub = conn.subscribe("metrics", schema_json);
//   pub.publish(datum);                                     // an Avro datum, e.g. from impulse_ring_avro.h
//   if (auto msg = sub.receive(std::chrono::seconds(1))) {  // std::nullopt on timeout
//     use(*msg);
//   }
//
// Threads follow the C rules: a Connection may be shared; each other handle is used by one thread at a
// time; function handlers run inside Connection::serve and Connection::poll_one.
#ifndef IMPULSE_RING_HPP
#define IMPULSE_RING_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "impulse_ring.h"
#include "impulse_ring_avro.h"

namespace impulse_ring {

// ---- Errors ------------------------------------------------------------------------------------

// A failure of the C library: its code (the same numbers in every connector) and its message.
class Error : public std::runtime_error {
 public:
  Error(ir_error_e code, const std::string &message) : std::runtime_error(message), code_(code) {}

  // The shared error code (IR_ERR_SCHEMA_MISMATCH, ...).
  ir_error_e code() const noexcept {
    return code_;
  }

  // The code's name as every connector spells it ("SchemaMismatch").
  const char *name() const noexcept {
    return ir_error_name(code_);
  }

 private:
  ir_error_e code_;
};

namespace detail {

// Throws the connection's (or with nullptr, this thread's) last error as an Error.
[[noreturn]] inline void raise(ir_error_e code, const ir_conn_t *conn) {
  throw Error(code, ir_last_error(conn));
}

inline void check(ir_error_e code, const ir_conn_t *conn) {
  if (code != IR_OK) {
    raise(code, conn);
  }
}

inline const char *c_str_or_null(const std::optional<std::string> &text) {
  return text ? text->c_str() : nullptr;
}

}  // namespace detail

// ---- Byte views and timeouts ---------------------------------------------------------------------

// A read-only view of bytes it does not own (C++17 has no std::span).
class ByteView {
 public:
  constexpr ByteView() noexcept = default;
  ByteView(const void *data, std::size_t size) noexcept : data_(static_cast<const std::uint8_t *>(data)), size_(size) {}
  // Any contiguous container of bytes: std::vector<std::uint8_t>, std::string, std::array<char, N>, ...
  template <class Container, class = decltype(std::declval<const Container &>().data()),
            class = std::enable_if_t<sizeof(*std::declval<const Container &>().data()) == 1>>
  ByteView(const Container &bytes) noexcept  // NOLINT(google-explicit-constructor): views convert implicitly
      : data_(reinterpret_cast<const std::uint8_t *>(bytes.data())), size_(bytes.size()) {}

  const std::uint8_t *data() const noexcept {
    return data_;
  }
  std::size_t size() const noexcept {
    return size_;
  }
  bool empty() const noexcept {
    return size_ == 0;
  }
  const std::uint8_t *begin() const noexcept {
    return data_;
  }
  const std::uint8_t *end() const noexcept {
    return data_ + size_;
  }
  std::uint8_t operator[](std::size_t i) const noexcept {
    return data_[i];
  }
  std::vector<std::uint8_t> to_vector() const {
    return std::vector<std::uint8_t>(begin(), end());
  }

 private:
  const std::uint8_t *data_ = nullptr;
  std::size_t size_ = 0;
};

// Wait without limit.
inline constexpr std::chrono::milliseconds forever = std::chrono::milliseconds::max();

namespace detail {

// A timeout in whole milliseconds, rounded up so that a short wait still waits; `forever` and longer
// waits map to IR_FOREVER, negative ones to 0.
template <class Rep, class Period>
std::int64_t to_ms(std::chrono::duration<Rep, Period> timeout) {
  if (timeout <= std::chrono::duration<Rep, Period>::zero()) {
    return 0;
  }
  if (std::chrono::duration_cast<std::chrono::duration<double, std::milli>>(timeout).count() >=
      static_cast<double>(INT64_MAX / 2)) {
    return IR_FOREVER;
  }
  return std::chrono::ceil<std::chrono::milliseconds>(timeout).count();
}

}  // namespace detail

// How an endpoint waits (see ir_wait_e).
enum class Wait { Adaptive = IR_WAIT_ADAPTIVE, BusySpin = IR_WAIT_BUSY_SPIN, Blocking = IR_WAIT_BLOCKING };

// Options of a published channel.
struct PublishOptions {
  // Ring size in bytes: a power of two from 4096 to 1 GiB; 0 takes the broker's default (1 MiB).
  std::uint64_t capacity = 0;
  // false: block (nothing lost, the publisher waits); true: lossy (subscribers learn what they missed).
  bool lossy = false;
};

// ---- Channels ------------------------------------------------------------------------------------

// The publishing end of a channel; destroying it closes the channel.
class Publisher {
 public:
  Publisher(Publisher &&other) noexcept : conn_(other.conn_), pub_(std::exchange(other.pub_, nullptr)) {}
  Publisher &operator=(Publisher &&other) noexcept {
    if (this != &other) {
      ir_publisher_close(pub_);
      conn_ = other.conn_;
      pub_ = std::exchange(other.pub_, nullptr);
    }
    return *this;
  }
  Publisher(const Publisher &) = delete;
  Publisher &operator=(const Publisher &) = delete;
  ~Publisher() {
    ir_publisher_close(pub_);
  }

  // Publishes one Avro datum (no header), waiting up to `timeout` for space under the block policy.
  // Throws Error: TooLarge, Timeout, Closed, BrokerGone, Corrupt.
  template <class Rep = std::int64_t, class Period = std::milli>
  void publish(ByteView datum, std::chrono::duration<Rep, Period> timeout = std::chrono::seconds(10)) {
    detail::check(ir_publish(pub_, datum.data(), datum.size(), detail::to_ms(timeout)), conn_);
  }

  // Publishes without waiting: false when the ring is full (WouldBlock); other failures throw.
  bool try_publish(ByteView datum) {
    ir_error_e code = ir_try_publish(pub_, datum.data(), datum.size());
    if (code == IR_ERR_WOULD_BLOCK) {
      return false;
    }
    detail::check(code, conn_);
    return true;
  }

  std::size_t max_datum() const noexcept {
    return ir_publisher_max_datum(pub_);
  }
  std::uint64_t fingerprint() const noexcept {
    return ir_publisher_fingerprint(pub_);
  }
  std::uint64_t channel_id() const noexcept {
    return ir_publisher_channel_id(pub_);
  }
  // Subscribers that have joined (they see every message published from now on).
  std::uint32_t subscribers() const noexcept {
    return ir_publisher_subscribers(pub_);
  }
  void set_wait(Wait wait, std::chrono::microseconds spin = {}, std::chrono::microseconds yield = {}) {
    detail::check(ir_publisher_set_wait(pub_, static_cast<ir_wait_e>(wait), static_cast<std::uint32_t>(spin.count()),
                                        static_cast<std::uint32_t>(yield.count())),
                  conn_);
  }
  ir_publisher_t *native() const noexcept {
    return pub_;
  }

 private:
  friend class Connection;
  Publisher(const ir_conn_t *conn, ir_publisher_t *pub) noexcept : conn_(conn), pub_(pub) {}
  const ir_conn_t *conn_;
  ir_publisher_t *pub_;
};

// The receiving end of a channel.
class Subscriber {
 public:
  Subscriber(Subscriber &&other) noexcept : conn_(other.conn_), sub_(std::exchange(other.sub_, nullptr)) {}
  Subscriber &operator=(Subscriber &&other) noexcept {
    if (this != &other) {
      ir_subscriber_close(sub_);
      conn_ = other.conn_;
      sub_ = std::exchange(other.sub_, nullptr);
    }
    return *this;
  }
  Subscriber(const Subscriber &) = delete;
  Subscriber &operator=(const Subscriber &) = delete;
  ~Subscriber() {
    ir_subscriber_close(sub_);
  }

  // The next message's datum, copied; std::nullopt when none came within `timeout` (zero: do not wait).
  // Throws Error: Closed (the channel is closed and drained), Lagged (a lossy subscriber missed
  // messages: see missed(), then receive again), BrokerGone, Decode, Corrupt.
  template <class Rep = std::int64_t, class Period = std::milli>
  std::optional<std::vector<std::uint8_t>> receive(std::chrono::duration<Rep, Period> timeout) {
    std::optional<ByteView> view = receive_view(timeout);
    if (!view) {
      return std::nullopt;
    }
    std::vector<std::uint8_t> copy = view->to_vector();
    ir_subscriber_release(sub_);
    return copy;
  }

  // Like receive, without a copy: the view stays valid until the next call on this subscriber.
  template <class Rep = std::int64_t, class Period = std::milli>
  std::optional<ByteView> receive_view(std::chrono::duration<Rep, Period> timeout) {
    const std::uint8_t *datum = nullptr;
    std::size_t len = 0;
    ir_error_e code = ir_receive_view(sub_, &datum, &len, detail::to_ms(timeout));
    if (code == IR_ERR_TIMEOUT) {
      return std::nullopt;
    }
    detail::check(code, conn_);
    return ByteView(datum, len);
  }

  // How many messages the last Lagged error reported lost.
  std::uint64_t missed() const noexcept {
    return ir_subscriber_missed(sub_);
  }
  std::uint64_t fingerprint() const noexcept {
    return ir_subscriber_fingerprint(sub_);
  }
  void set_wait(Wait wait, std::chrono::microseconds spin = {}, std::chrono::microseconds yield = {}) {
    detail::check(ir_subscriber_set_wait(sub_, static_cast<ir_wait_e>(wait), static_cast<std::uint32_t>(spin.count()),
                                         static_cast<std::uint32_t>(yield.count())),
                  conn_);
  }
  ir_subscriber_t *native() const noexcept {
    return sub_;
  }

 private:
  friend class Connection;
  Subscriber(const ir_conn_t *conn, ir_subscriber_t *sub) noexcept : conn_(conn), sub_(sub) {}
  const ir_conn_t *conn_;
  ir_subscriber_t *sub_;
};

// ---- Functions -----------------------------------------------------------------------------------

// A function body over raw Avro datums: the request datum in, the response datum out. Throw Error to
// send its code's failure with its message, any other exception to send HandlerError with what().
using Handler = std::function<std::vector<std::uint8_t>(ByteView request)>;

// An exposed function; destroying it withdraws the function (pending callers get PeerGone).
class Function {
 public:
  Function(Function &&other) noexcept : fn_(std::exchange(other.fn_, nullptr)), handler_(std::move(other.handler_)) {}
  Function &operator=(Function &&other) noexcept {
    if (this != &other) {
      ir_function_withdraw(fn_);
      fn_ = std::exchange(other.fn_, nullptr);
      handler_ = std::move(other.handler_);
    }
    return *this;
  }
  Function(const Function &) = delete;
  Function &operator=(const Function &) = delete;
  ~Function() {
    ir_function_withdraw(fn_);
  }

  std::uint64_t id() const noexcept {
    return ir_function_id(fn_);
  }
  ir_function_t *native() const noexcept {
    return fn_;
  }

 private:
  friend class Connection;
  Function(ir_function_t *fn, std::unique_ptr<Handler> handler) noexcept : fn_(fn), handler_(std::move(handler)) {}

  // The C handler: runs the C++ one and turns its result or exception into a response.
  static ir_error_e trampoline(void *user, const std::uint8_t *request, std::size_t len,
                               ir_response_t *response) noexcept {
    try {
      std::vector<std::uint8_t> out = (*static_cast<Handler *>(user))(ByteView(request, len));
      return ir_response_write(response, out.data(), out.size());
    } catch (const Error &e) {
      ir_response_fail(response, e.what());
      return e.code() != IR_OK ? e.code() : IR_ERR_HANDLER;
    } catch (const std::exception &e) {
      ir_response_fail(response, e.what());
      return IR_ERR_HANDLER;
    } catch (...) {
      ir_response_fail(response, "the handler threw");
      return IR_ERR_HANDLER;
    }
  }

  ir_function_t *fn_;
  // Heap-allocated: the C library keeps its address as the handler's user pointer.
  std::unique_ptr<Handler> handler_;
};

// A call in flight (Connection::start_call): poll it, then take its result.
class Call {
 public:
  Call(Call &&other) noexcept : conn_(other.conn_), call_(std::exchange(other.call_, nullptr)) {}
  Call &operator=(Call &&other) noexcept {
    if (this != &other) {
      ir_call_free(call_);
      conn_ = other.conn_;
      call_ = std::exchange(other.call_, nullptr);
    }
    return *this;
  }
  Call(const Call &) = delete;
  Call &operator=(const Call &) = delete;
  // Abandons the call if it is still pending.
  ~Call() {
    ir_call_free(call_);
  }

  // Waits up to `timeout` (zero: not at all); true once the call has completed, well or not.
  template <class Rep = std::int64_t, class Period = std::milli>
  bool poll(std::chrono::duration<Rep, Period> timeout = std::chrono::milliseconds(0)) {
    return ir_call_poll(call_, detail::to_ms(timeout)) == IR_OK;
  }

  // The response datum of a completed call (a view valid as long as the Call), or the call's Error.
  // Throws Error(Timeout) while the call is still pending.
  ByteView result() const {
    const std::uint8_t *datum = nullptr;
    std::size_t len = 0;
    ir_error_e code = ir_call_result(call_, &datum, &len);
    if (code == IR_ERR_TIMEOUT) {
      throw Error(code, "the call is still pending");
    }
    if (code != IR_OK) {
      throw Error(code, ir_call_error_message(call_));
    }
    return ByteView(datum, len);
  }

 private:
  friend class Connection;
  Call(const ir_conn_t *conn, ir_call_t *call) noexcept : conn_(conn), call_(call) {}
  const ir_conn_t *conn_;
  ir_call_t *call_;
};

// ---- Listing ------------------------------------------------------------------------------------

// A registered app, as Connection::list() reports it.
struct AppInfo {
  std::uint32_t app_id = 0;  // its slot index (Connection::app_id())
  std::string name;
  std::int64_t pid = 0;
};

// A published channel.
struct ChannelInfo {
  std::uint64_t channel_id = 0;  // Publisher::channel_id()
  std::string name;
  std::uint32_t owner_app_id = 0;
  std::uint64_t fingerprint = 0;  // CRC-64-AVRO of the channel's schema
  std::uint64_t capacity = 0;     // ring size in bytes
  bool lossy = false;
  std::uint32_t subscribers = 0;  // joined subscribers
  std::uint64_t published = 0;    // messages published so far
};

// An exposed function.
struct FunctionInfo {
  std::uint64_t function_id = 0;  // Function::id()
  std::string name;
  std::uint32_t owner_app_id = 0;
  std::uint64_t request_fingerprint = 0;
  std::uint64_t response_fingerprint = 0;
};

// What is on the bus, as the broker saw it when it answered (keys are never listed).
struct Listing {
  std::vector<AppInfo> apps;
  std::vector<ChannelInfo> channels;
  std::vector<FunctionInfo> functions;
};

// ---- Connection ----------------------------------------------------------------------------------

// A connection to the broker of a namespace; destroying it leaves the bus. Handles made from it may
// outlive it (their operations then fail with Closed).
class Connection {
 public:
  // Connects as `app_name` in the namespace of IMPULSE_RING_NS (default "impulse"). Throws Error:
  // NoBroker (naming the namespace), LimitReached, InvalidArgument, ...
  explicit Connection(const std::string &app_name) {
    detail::check(ir_connect(app_name.c_str(), &conn_), nullptr);
  }

  // Connects in the namespace `ns`.
  Connection(const std::string &ns, const std::string &app_name) {
    detail::check(ir_connect_ns(ns.c_str(), app_name.c_str(), &conn_), nullptr);
  }

  Connection(Connection &&other) noexcept : conn_(std::exchange(other.conn_, nullptr)) {}
  Connection &operator=(Connection &&other) noexcept {
    if (this != &other) {
      ir_close(conn_);
      conn_ = std::exchange(other.conn_, nullptr);
    }
    return *this;
  }
  Connection(const Connection &) = delete;
  Connection &operator=(const Connection &) = delete;
  ~Connection() {
    ir_close(conn_);
  }

  std::string ns() const {
    return ir_namespace(conn_);
  }
  std::uint32_t app_id() const noexcept {
    return ir_app_id(conn_);
  }
  bool broker_gone() const noexcept {
    return ir_broker_gone(conn_) != 0;
  }
  // The last failure's message on this connection.
  std::string last_error() const {
    return ir_last_error(conn_);
  }
  void set_wait(Wait wait, std::chrono::microseconds spin = {}, std::chrono::microseconds yield = {}) {
    detail::check(ir_set_wait(conn_, static_cast<ir_wait_e>(wait), static_cast<std::uint32_t>(spin.count()),
                              static_cast<std::uint32_t>(yield.count())),
                  conn_);
  }
  ir_conn_t *native() const noexcept {
    return conn_;
  }

  // Publishes the channel `name` of Avro schema `schema_json`, open to subscribers presenting `key`.
  Publisher publish_channel(const std::string &name, const std::string &schema_json,
                            const std::optional<std::string> &key = std::nullopt, PublishOptions options = {}) {
    ir_publisher_t *pub = nullptr;
    detail::check(ir_publish_channel(conn_, name.c_str(), schema_json.c_str(), detail::c_str_or_null(key),
                                     options.capacity, options.lossy ? IR_CHANNEL_LOSSY : IR_CHANNEL_BLOCK, &pub),
                  conn_);
    return Publisher(conn_, pub);
  }

  // Subscribes to `name` with the schema the app reads with (and `key`). Throws Error: UnknownChannel,
  // WrongKey, SchemaMismatch (both fingerprints in the message), InvalidSchema, LimitReached, ...
  Subscriber subscribe(const std::string &name, const std::string &schema_json,
                       const std::optional<std::string> &key = std::nullopt) {
    ir_subscriber_t *sub = nullptr;
    detail::check(ir_subscribe(conn_, name.c_str(), detail::c_str_or_null(key), schema_json.c_str(), &sub), conn_);
    return Subscriber(conn_, sub);
  }

  // Exposes `name`; `handler` answers each request inside serve() or poll_one().
  Function expose_function(const std::string &name, const std::string &request_schema,
                           const std::string &response_schema, Handler handler,
                           const std::optional<std::string> &key = std::nullopt) {
    auto owned = std::make_unique<Handler>(std::move(handler));
    ir_function_t *fn = nullptr;
    detail::check(ir_expose_function(conn_, name.c_str(), request_schema.c_str(), response_schema.c_str(),
                                     detail::c_str_or_null(key), &Function::trampoline, owned.get(), &fn),
                  conn_);
    return Function(fn, std::move(owned));
  }

  // Serves until `timeout` passes or serve_stop() is called: new callers' links, requests, completions.
  template <class Rep = std::int64_t, class Period = std::milli>
  void serve(std::chrono::duration<Rep, Period> timeout = forever) {
    detail::check(ir_serve(conn_, detail::to_ms(timeout)), conn_);
  }

  // Makes a running serve() return; safe from any thread.
  void serve_stop() noexcept {
    ir_serve_stop(conn_);
  }

  // One step for an event loop: waits up to `timeout` for work; true when it did something.
  template <class Rep = std::int64_t, class Period = std::milli>
  bool poll_one(std::chrono::duration<Rep, Period> timeout = std::chrono::milliseconds(0)) {
    ir_error_e code = ir_poll_one(conn_, detail::to_ms(timeout));
    if (code == IR_ERR_TIMEOUT) {
      return false;
    }
    detail::check(code, conn_);
    return true;
  }

  // Calls `name` and waits up to `timeout` for the response datum. Throws Error: UnknownFunction,
  // WrongKey, SchemaMismatch, HandlerError (with the provider's message), PeerGone, Timeout, ...
  template <class Rep = std::int64_t, class Period = std::milli>
  std::vector<std::uint8_t> call(const std::string &name, const std::string &request_schema,
                                 const std::string &response_schema, ByteView request,
                                 std::chrono::duration<Rep, Period> timeout = std::chrono::seconds(10),
                                 const std::optional<std::string> &key = std::nullopt) {
    std::uint8_t *response = nullptr;
    std::size_t len = 0;
    detail::check(
        ir_call(conn_, name.c_str(), detail::c_str_or_null(key), request_schema.c_str(), response_schema.c_str(),
                request.data(), request.size(), &response, &len, detail::to_ms(timeout)),
        conn_);
    std::unique_ptr<std::uint8_t, decltype(&ir_free)> owned(response, &ir_free);
    return std::vector<std::uint8_t>(response, response + len);
  }

  // Starts a call without waiting for its response; the Call fails with Timeout after `timeout`.
  template <class Rep = std::int64_t, class Period = std::milli>
  Call start_call(const std::string &name, const std::string &request_schema, const std::string &response_schema,
                  ByteView request, std::chrono::duration<Rep, Period> timeout = std::chrono::seconds(10),
                  const std::optional<std::string> &key = std::nullopt) {
    ir_call_t *call = nullptr;
    detail::check(ir_call_start(conn_, name.c_str(), detail::c_str_or_null(key), request_schema.c_str(),
                                response_schema.c_str(), request.data(), request.size(), detail::to_ms(timeout), &call),
                  conn_);
    return Call(conn_, call);
  }

  // What is on the bus: every app, channel and function, as the broker sees them. Blocks for the
  // broker's reply (at most 10 s). Throws Error: BrokerGone, Closed, Timeout (also when the listing is
  // too large for the control ring), Protocol.
  Listing list() {
    ir_listing_t *raw = nullptr;
    detail::check(ir_list(conn_, &raw), conn_);
    std::unique_ptr<ir_listing_t, decltype(&ir_listing_free)> owned(raw, &ir_listing_free);
    Listing listing;
    for (std::size_t i = 0, n = ir_listing_app_count(raw); i < n; i++) {
      listing.apps.push_back({ir_listing_app_id(raw, i), ir_listing_app_name(raw, i), ir_listing_app_pid(raw, i)});
    }
    for (std::size_t i = 0, n = ir_listing_channel_count(raw); i < n; i++) {
      listing.channels.push_back({ir_listing_channel_id(raw, i), ir_listing_channel_name(raw, i),
                                  ir_listing_channel_owner(raw, i), ir_listing_channel_fingerprint(raw, i),
                                  ir_listing_channel_capacity(raw, i), ir_listing_channel_lossy(raw, i) != 0,
                                  ir_listing_channel_subscribers(raw, i), ir_listing_channel_published(raw, i)});
    }
    for (std::size_t i = 0, n = ir_listing_function_count(raw); i < n; i++) {
      listing.functions.push_back({ir_listing_function_id(raw, i), ir_listing_function_name(raw, i),
                                   ir_listing_function_owner(raw, i), ir_listing_function_request_fingerprint(raw, i),
                                   ir_listing_function_response_fingerprint(raw, i)});
    }
    return listing;
  }

 private:
  ir_conn_t *conn_ = nullptr;
};

}  // namespace impulse_ring

#endif  // IMPULSE_RING_HPP
