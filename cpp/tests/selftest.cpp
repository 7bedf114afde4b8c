// The C++ wrapper's self-test (GoogleTest): RAII handles, byte views, chrono timeouts, optionals and
// exceptions, against a live broker that each test starts in a namespace of its own and stops after,
// checking that nothing of the namespace is left in /dev/shm.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "impulse_ring.hpp"

extern "C" {
#include "../../c/tests/broker.h"
}

namespace {

using namespace std::chrono_literals;
using impulse_ring::ByteView;
using impulse_ring::Connection;
using impulse_ring::Error;

const std::string kReading =
    R"({"type":"record","name":"Reading","namespace":"cpp","fields":[{"name":"seq","type":"long"},)"
    R"({"name":"celsius","type":"double"}]})";
const std::string kOtherReading =
    R"({"type":"record","name":"Reading","namespace":"cpp","fields":[{"name":"seq","type":"long"},)"
    R"({"name":"celsius","type":"float"}]})";
const std::string kAddRequest =
    R"({"type":"record","name":"AddRequest","namespace":"cpp","fields":[{"name":"a","type":"long"},)"
    R"({"name":"b","type":"long"}]})";
const std::string kAddResponse =
    R"({"type":"record","name":"AddResponse","namespace":"cpp","fields":[{"name":"sum","type":"long"}]})";

std::vector<std::uint8_t> encode_longs(std::initializer_list<std::int64_t> values) {
  ir_avro_writer_t w;
  ir_avro_writer_init_dynamic(&w);
  for (std::int64_t v : values) {
    ir_avro_write_long(&w, v);
  }
  std::vector<std::uint8_t> out(w.data, w.data + w.len);
  ir_avro_writer_free(&w);
  return out;
}

std::vector<std::int64_t> decode_longs(ByteView datum, std::size_t count) {
  ir_avro_reader_t r;
  ir_avro_reader_init(&r, datum.data(), datum.size());
  std::vector<std::int64_t> out;
  for (std::size_t i = 0; i < count; i++) {
    out.push_back(ir_avro_read_long(&r));
  }
  EXPECT_TRUE(ir_avro_reader_finish(&r)) << ir_avro_reader_error(&r);
  return out;
}

// Runs `action`, which must throw an impulse_ring::Error of `code`: a test checks which error, not
// only that something was thrown. The message goes to *message, for checks that look into it.
template <class Action>
::testing::AssertionResult expect_error(ir_error_e code, Action &&action, std::string *message = nullptr) {
  try {
    action();
  } catch (const Error &e) {
    if (message != nullptr) {
      *message = e.what();
    }
    if (e.code() == code) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "threw " << e.name() << " (" << e.what() << "), expected "
                                         << ir_error_name(code);
  } catch (const std::exception &e) {
    return ::testing::AssertionFailure() << "threw a std::exception that is no Error: " << e.what();
  }
  return ::testing::AssertionFailure() << "threw nothing, expected " << ir_error_name(code);
}

#define EXPECT_ERROR(code, ...) EXPECT_TRUE(expect_error(code, [&] { __VA_ARGS__; }))

// add(a, b): a + b; a == 13 throws std::runtime_error, a == 14 throws Error(InvalidArgument).
std::vector<std::uint8_t> add(ByteView request) {
  std::vector<std::int64_t> ab = decode_longs(request, 2);
  if (ab[0] == 13) {
    throw std::runtime_error("unlucky number 13");
  }
  if (ab[0] == 14) {
    throw Error(IR_ERR_INVALID_ARGUMENT, "fourteen is not allowed");
  }
  return encode_longs({ab[0] + ab[1]});
}

// Each test gets a broker in a namespace of its own.
class Live : public ::testing::Test {
 protected:
  void SetUp() override {
    ns_ = "cppself-" + std::to_string(getpid()) + "-" + std::to_string(counter_++);
    ASSERT_TRUE(test_broker_start(&broker_, ns_.c_str())) << "cannot start " << test_broker_path();
  }

  void TearDown() override {
    if (broker_.pid > 0) {
      EXPECT_TRUE(test_broker_stop(&broker_, SIGTERM));
    }
    std::this_thread::sleep_for(20ms);
    EXPECT_EQ(test_shm_count(ns_.c_str()), 0) << "segments of " << ns_ << " left in /dev/shm";
    test_shm_remove(ns_.c_str());
  }

  std::string ns_;
  test_broker_t broker_{};
  static inline int counter_ = 0;
};

TEST(Errors, connect_without_broker_throws_no_broker_naming_the_namespace) {
  std::string ns = "cppself-" + std::to_string(getpid()) + "-nobroker";
  {
    std::string message;
    EXPECT_TRUE(expect_error(
        IR_ERR_NO_BROKER, [&] { Connection conn(ns, "lonely"); }, &message));
    EXPECT_STREQ(Error(IR_ERR_NO_BROKER, message).name(), "NoBroker");
    EXPECT_NE(message.find(ns), std::string::npos);
  }
}

TEST(Timeouts, durations_round_up_to_milliseconds_and_forever_waits_without_limit) {
  EXPECT_EQ(impulse_ring::detail::to_ms(0ms), 0);
  EXPECT_EQ(impulse_ring::detail::to_ms(-5ms), 0);
  EXPECT_EQ(impulse_ring::detail::to_ms(1us), 1);
  EXPECT_EQ(impulse_ring::detail::to_ms(1500us), 2);
  EXPECT_EQ(impulse_ring::detail::to_ms(2s), 2000);
  EXPECT_EQ(impulse_ring::detail::to_ms(impulse_ring::forever), IR_FOREVER);
  EXPECT_EQ(impulse_ring::detail::to_ms(std::chrono::hours::max()), IR_FOREVER);
}

TEST_F(Live, publish_and_receive_with_views_and_optionals) {
  Connection producer(ns_, "producer");
  Connection consumer(ns_, "consumer");
  EXPECT_EQ(producer.ns(), ns_);
  auto pub = producer.publish_channel("readings", kReading, "key");
  auto sub = consumer.subscribe("readings", kReading, "key");
  EXPECT_EQ(pub.subscribers(), 1u);
  EXPECT_EQ(pub.fingerprint(), sub.fingerprint());
  EXPECT_FALSE(sub.receive(0ms).has_value());

  for (std::int64_t seq = 0; seq < 100; seq++) {
    pub.publish(encode_longs({seq, seq * 2}));
  }
  for (std::int64_t seq = 0; seq < 100; seq++) {
    if (seq % 2 == 0) {
      std::optional<std::vector<std::uint8_t>> message = sub.receive(1s);
      ASSERT_TRUE(message.has_value());
      EXPECT_EQ(decode_longs(*message, 2), (std::vector<std::int64_t>{seq, seq * 2}));
    } else {
      std::optional<ByteView> view = sub.receive_view(1s);
      ASSERT_TRUE(view.has_value());
      EXPECT_EQ(decode_longs(*view, 2), (std::vector<std::int64_t>{seq, seq * 2}));
    }
  }
  auto started = std::chrono::steady_clock::now();
  EXPECT_FALSE(sub.receive(50ms).has_value());
  EXPECT_GE(std::chrono::steady_clock::now() - started, 50ms);
}

TEST_F(Live, refusals_throw_errors_with_codes_and_messages) {
  Connection conn(ns_, "refusals");
  auto pub = conn.publish_channel("keyed", kReading, "right");
  EXPECT_ERROR(IR_ERR_WRONG_KEY, conn.subscribe("keyed", kReading, "wrong"));
  {
    std::string message;
    EXPECT_TRUE(expect_error(
        IR_ERR_SCHEMA_MISMATCH, [&] { conn.subscribe("keyed", kOtherReading, "right"); }, &message));
    EXPECT_NE(message.find("expected"), std::string::npos);
    EXPECT_NE(message.find("presented"), std::string::npos);
  }
  EXPECT_ERROR(IR_ERR_UNKNOWN_CHANNEL, conn.subscribe("nope", kReading));
  EXPECT_ERROR(IR_ERR_NAME_TAKEN, conn.publish_channel("keyed", kReading));
  EXPECT_ERROR(IR_ERR_INVALID_SCHEMA, conn.publish_channel("broken", "{not json"));
  std::vector<std::uint8_t> huge(pub.max_datum() + 1);
  EXPECT_ERROR(IR_ERR_TOO_LARGE, pub.publish(huge));
}

TEST_F(Live, full_channel_makes_try_publish_false_and_closing_ends_the_subscription) {
  Connection conn(ns_, "full");
  std::optional<impulse_ring::Publisher> pub = conn.publish_channel("small", "\"bytes\"", std::nullopt, {4096, false});
  auto sub = conn.subscribe("small", "\"bytes\"");
  std::vector<std::uint8_t> datum(130, 0);
  datum[0] = 0xfe;  // bytes of length 127
  datum[1] = 0x01;
  int published = 0;
  while (pub->try_publish(datum)) {
    published++;
  }
  EXPECT_GT(published, 10);
  EXPECT_ERROR(IR_ERR_TIMEOUT, pub->publish(datum, 30ms));
  pub.reset();  // closes the channel
  for (int i = 0; i < published; i++) {
    EXPECT_TRUE(sub.receive(1s).has_value());
  }
  EXPECT_ERROR(IR_ERR_CLOSED, sub.receive(1s));
}

TEST_F(Live, calls_return_responses_and_handler_exceptions_become_errors) {
  Connection provider(ns_, "provider");
  Connection caller(ns_, "caller");
  auto fn = provider.expose_function("add", kAddRequest, kAddResponse, add);
  EXPECT_NE(fn.id(), 0u);
  std::thread server([&] { provider.serve(); });

  std::vector<std::uint8_t> response = caller.call("add", kAddRequest, kAddResponse, encode_longs({40, 2}), 5s);
  EXPECT_EQ(decode_longs(response, 1), std::vector<std::int64_t>{42});
  {
    std::string message;
    EXPECT_TRUE(expect_error(
        IR_ERR_HANDLER,
        [&] {
          caller.call("add", kAddRequest, kAddResponse, encode_longs({13, 0}), 5s);
        },
        &message));
    EXPECT_NE(message.find("unlucky number 13"), std::string::npos);
  }
  {
    std::string message;
    EXPECT_TRUE(expect_error(
        IR_ERR_HANDLER,
        [&] {
          caller.call("add", kAddRequest, kAddResponse, encode_longs({14, 0}), 5s);
        },
        &message));
    EXPECT_NE(message.find("fourteen"), std::string::npos);
  }
  EXPECT_ERROR(IR_ERR_UNKNOWN_FUNCTION, caller.call("nope", kAddRequest, kAddResponse, encode_longs({1, 2}), 1s));

  std::vector<impulse_ring::Call> calls;
  for (std::int64_t i = 0; i < 8; i++) {
    calls.push_back(caller.start_call("add", kAddRequest, kAddResponse, encode_longs({100 + i, i}), 5s));
  }
  for (std::int64_t i = 0; i < 8; i++) {
    ASSERT_TRUE(calls[i].poll(5s));
    EXPECT_EQ(decode_longs(calls[i].result(), 1), std::vector<std::int64_t>{100 + 2 * i});
  }
  provider.serve_stop();
  server.join();
}

TEST_F(Live, poll_one_drives_a_provider_from_an_event_loop) {
  Connection provider(ns_, "provider");
  Connection caller(ns_, "caller");
  auto fn = provider.expose_function("add", kAddRequest, kAddResponse, add);
  EXPECT_FALSE(provider.poll_one());
  impulse_ring::Call call = caller.start_call("add", kAddRequest, kAddResponse, encode_longs({7, 8}));
  EXPECT_FALSE(call.poll());
  EXPECT_ERROR(IR_ERR_TIMEOUT, call.result());
  for (int i = 0; i < 100 && !call.poll(); i++) {
    provider.poll_one(10ms);
  }
  EXPECT_EQ(decode_longs(call.result(), 1), std::vector<std::int64_t>{15});
}

TEST_F(Live, withdrawn_function_fails_pending_calls_with_peer_gone) {
  Connection provider(ns_, "provider");
  Connection caller(ns_, "caller");
  std::optional<impulse_ring::Function> fn = provider.expose_function("add", kAddRequest, kAddResponse, add);
  impulse_ring::Call call = caller.start_call("add", kAddRequest, kAddResponse, encode_longs({1, 1}), 30s);
  fn.reset();
  ASSERT_TRUE(call.poll(5s));
  EXPECT_ERROR(IR_ERR_PEER_GONE, call.result());
}

TEST_F(Live, list_shows_apps_channels_and_functions) {
  Connection provider(ns_, "provider");
  Connection viewer(ns_, "viewer");
  auto pub = provider.publish_channel("readings", kReading, std::nullopt, {1u << 16, false});
  auto sub = viewer.subscribe("readings", kReading);
  auto fn = provider.expose_function("add", kAddRequest, kAddResponse, add);
  pub.publish(encode_longs({1, 2}));
  pub.publish(encode_longs({3, 4}));

  impulse_ring::Listing listing = viewer.list();
  ASSERT_EQ(listing.apps.size(), 2u);
  bool saw_provider = false;
  for (const impulse_ring::AppInfo &app : listing.apps) {
    EXPECT_EQ(app.pid, getpid());
    if (app.name == "provider") {
      saw_provider = true;
      EXPECT_EQ(app.app_id, provider.app_id());
    } else {
      EXPECT_EQ(app.name, "viewer");
      EXPECT_EQ(app.app_id, viewer.app_id());
    }
  }
  EXPECT_TRUE(saw_provider);

  ASSERT_EQ(listing.channels.size(), 1u);
  const impulse_ring::ChannelInfo &channel = listing.channels[0];
  EXPECT_EQ(channel.name, "readings");
  EXPECT_EQ(channel.channel_id, pub.channel_id());
  EXPECT_EQ(channel.owner_app_id, provider.app_id());
  EXPECT_NE(channel.fingerprint, 0u);
  EXPECT_EQ(channel.fingerprint, pub.fingerprint());
  EXPECT_EQ(channel.capacity, 1u << 16);
  EXPECT_FALSE(channel.lossy);
  EXPECT_EQ(channel.subscribers, 1u);
  EXPECT_EQ(channel.published, 2u);

  ASSERT_EQ(listing.functions.size(), 1u);
  const impulse_ring::FunctionInfo &function = listing.functions[0];
  EXPECT_EQ(function.name, "add");
  EXPECT_EQ(function.function_id, fn.id());
  EXPECT_EQ(function.owner_app_id, provider.app_id());
  EXPECT_NE(function.request_fingerprint, 0u);
  EXPECT_NE(function.response_fingerprint, 0u);
  EXPECT_NE(function.request_fingerprint, function.response_fingerprint);
}

TEST_F(Live, handles_move_and_outlive_their_connection) {
  std::optional<Connection> conn(std::in_place, ns_, "mover");
  impulse_ring::Publisher first = conn->publish_channel("c", "\"bytes\"");
  impulse_ring::Publisher moved = std::move(first);
  auto sub = conn->subscribe("c", "\"bytes\"");
  moved.publish(std::string("\x02x"));
  EXPECT_TRUE(sub.receive(1s).has_value());
  Connection other = std::move(*conn);
  conn.reset();  // the moved-from connection closes nothing
  moved.publish(std::string("\x02y"));
  EXPECT_TRUE(sub.receive(1s).has_value());
  other = Connection(ns_, "replacement");  // closes the first app: its handles now fail with Closed
  EXPECT_ERROR(IR_ERR_CLOSED, moved.publish(std::string("\x02z")));
}

TEST_F(Live, broker_shutdown_reaches_the_app_as_broker_gone) {
  Connection conn(ns_, "survivor");
  auto pub = conn.publish_channel("c", "\"bytes\"");
  auto sub = conn.subscribe("c", "\"bytes\"");
  ASSERT_TRUE(test_broker_stop(&broker_, SIGTERM));
  EXPECT_ERROR(IR_ERR_BROKER_GONE, sub.receive(2s));
  EXPECT_TRUE(conn.broker_gone());
}

}  // namespace
