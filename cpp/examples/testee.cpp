// The C++ connector's testee: one role per run (publisher, subscriber, provider, caller) over the
// header-only wrapper, so C++ joins the cross-language pair table. spec/testee.md is its contract
// (and what `--help` prints): the roles, options, schemas, message contents, output lines and exit
// statuses every connector's testee shares. In short: a connector error prints
// `error <Name>: <message>` and exits with 10 + its code; a verification failure prints
// `mismatch ...` and exits with 2; a usage error exits with 64.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "impulse_ring.hpp"

#if __has_include("testee_contract.h")
#include "testee_contract.h"
#else
static const unsigned char TESTEE_CONTRACT[] =
    "The testee contract is spec/testee.md (this build could not embed it).\n";
#endif

namespace {

using namespace std::chrono_literals;
using impulse_ring::ByteView;
using impulse_ring::Connection;
using impulse_ring::Error;

const std::string kMessage =
    R"({"type":"record","name":"Message","namespace":"e2e","fields":[)"
    R"({"name":"seq","type":"long"},{"name":"body","type":"bytes"},{"name":"checksum","type":"long"}]})";
const std::string kOtherMessage =
    R"({"type":"record","name":"Message","namespace":"e2e","fields":[)"
    R"({"name":"seq","type":"long"},{"name":"body","type":"string"},{"name":"checksum","type":"long"}]})";
const std::string kMalformed = R"({"type":"record","name":"Broken","fields":[{"name":"x","type":)";
const std::string kAddRequest =
    R"({"type":"record","name":"AddRequest","namespace":"e2e","fields":[{"name":"a","type":"long"},)"
    R"({"name":"b","type":"long"}]})";
const std::string kAddResponse =
    R"({"type":"record","name":"AddResponse","namespace":"e2e","fields":[{"name":"sum","type":"long"}]})";

// ---- Outcomes ----

// A verification failure: `mismatch <what>`, exit 2.
struct Mismatch {
  std::string what;
};

// A usage error: a line on stderr, exit 64.
struct Usage {
  std::string what;
};

void say(const std::string &line) {
  std::cout << line << std::endl;  // flushed: the harness reads lines as they come
}

[[noreturn]] void fail_ring(const Error &e) {
  say(std::string("error ") + e.name() + ": " + e.what());
  std::exit(10 + static_cast<int>(e.code()));
}

// ---- Arguments (spec/testee.md §1): the options each role takes, by name; true when one takes a value ----

using Options = std::map<std::string, bool>;

const std::map<std::string, Options> &roles() {
  static const std::map<std::string, Options> table = {
      {"publisher",
       {{"--channel", true},
        {"--key", true},
        {"--count", true},
        {"--lossy", false},
        {"--capacity", true},
        {"--wait-subscribers", true},
        {"--wait-go", false},
        {"--raw", false},
        {"--hold-ms", true},
        {"--probe-too-large", false},
        {"--probe-invalid-schema", false}}},
      {"subscriber",
       {{"--channel", true},
        {"--key", true},
        {"--count", true},
        {"--expect-closed", false},
        {"--stall-ms", true},
        {"--schema", true},
        {"--probe-invalid-schema", false}}},
      {"provider", {{"--function", true}, {"--key", true}, {"--fail-on", true}, {"--sleep-ms", true}}},
      {"caller",
       {{"--function", true},
        {"--key", true},
        {"--count", true},
        {"--base", true},
        {"--in-flight", true},
        {"--threads", true},
        {"--timeout-ms", true},
        {"--keep-going", false}}},
  };
  return table;
}

class Args {
 public:
  Args(const Options &options, int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
      std::string arg = argv[i];
      if (arg.rfind("--", 0) != 0) {
        throw Usage{"unexpected argument `" + arg + "`"};
      }
      auto option = options.find(arg);
      if (option == options.end()) {
        throw Usage{"unknown option `" + arg + "` for this role"};
      }
      if (!option->second) {
        flags_.insert(arg);
        continue;
      }
      if (i + 1 >= argc) {
        throw Usage{"`" + arg + "` needs a value"};
      }
      values_[arg] = argv[++i];  // the last one counts
    }
  }

  bool flag(const std::string &name) const {
    return flags_.count(name) != 0;
  }

  std::optional<std::string> text(const std::string &name) const {
    auto found = values_.find(name);
    return found == values_.end() ? std::nullopt : std::optional<std::string>(found->second);
  }

  std::string text_or(const std::string &name, const std::string &fallback) const {
    return text(name).value_or(fallback);
  }

  std::int64_t number(const std::string &name, std::int64_t fallback) const {
    std::optional<std::string> value = text(name);
    if (!value) {
      return fallback;
    }
    char *end = nullptr;
    errno = 0;
    long long n = std::strtoll(value->c_str(), &end, 10);
    if (errno != 0 || end == value->c_str() || *end != '\0') {
      throw Usage{"`" + name + "` takes a number, not `" + *value + "`"};
    }
    return n;
  }

 private:
  std::set<std::string> flags_;
  std::map<std::string, std::string> values_;
};

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// ---- Messages (spec/testee.md §3) ----

const std::vector<std::uint8_t> &pattern() {
  static const std::vector<std::uint8_t> bytes = [] {
    std::vector<std::uint8_t> p(4096);
    for (std::uint32_t i = 0; i < 4096; i++) {
      p[i] = static_cast<std::uint8_t>((i * 31u) ^ (i >> 7));
    }
    return p;
  }();
  return bytes;
}

ByteView body(std::int64_t seq) {
  auto s = static_cast<std::uint64_t>(seq);
  std::size_t len = static_cast<std::size_t>((s * 2654435761ULL) % 2001);
  return ByteView(pattern().data() + s % 1999, len);
}

std::int64_t checksum(std::int64_t seq, ByteView data) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  auto mix = [&hash](std::uint64_t word) { hash = (hash ^ word) * 0x100000001b3ULL; };
  mix(static_cast<std::uint64_t>(seq));
  std::size_t i = 0;
  auto word_at = [&data](std::size_t at, std::size_t n) {
    std::uint64_t word = 0;
    for (std::size_t k = 0; k < n; k++) {
      word |= static_cast<std::uint64_t>(data.data()[at + k]) << (8 * k);
    }
    return word;
  };
  for (; i + 8 <= data.size(); i += 8) {
    mix(word_at(i, 8));
  }
  mix(word_at(i, data.size() - i));
  return static_cast<std::int64_t>(hash);
}

// An Avro writer that frees itself.
class Writer {
 public:
  Writer() {
    ir_avro_writer_init_dynamic(&w_);
  }
  ~Writer() {
    ir_avro_writer_free(&w_);
  }
  Writer(const Writer &) = delete;
  Writer &operator=(const Writer &) = delete;
  ir_avro_writer_t *get() {
    return &w_;
  }
  ByteView view() const {
    return ByteView(w_.data, w_.len);
  }

 private:
  ir_avro_writer_t w_;
};

void encode_message(Writer &w, std::int64_t seq) {
  ByteView data = body(seq);
  ir_avro_writer_reset(w.get());
  ir_avro_write_long(w.get(), seq);
  ir_avro_write_bytes(w.get(), data.data(), data.size());
  ir_avro_write_long(w.get(), checksum(seq, data));
}

// The message's seq, and whether its body and checksum are those of that seq.
bool message_intact(ByteView datum, std::int64_t *seq) {
  ir_avro_reader_t r;
  ir_avro_reader_init(&r, datum.data(), datum.size());
  *seq = ir_avro_read_long(&r);
  std::size_t len = 0;
  const std::uint8_t *data = ir_avro_read_bytes(&r, &len);
  std::int64_t sum = ir_avro_read_long(&r);
  if (!ir_avro_reader_finish(&r) || *seq < 0) {
    return false;
  }
  ByteView want = body(*seq);
  return len == want.size() && (len == 0 || std::memcmp(data, want.data(), len) == 0) &&
         sum == checksum(*seq, ByteView(data, len));
}

void probe(const std::function<void()> &action, const std::string &accepted) {
  try {
    action();
    say("probe " + accepted);
  } catch (const Error &e) {
    say(std::string("probe ") + e.name() + ": " + e.what());
  }
}

// ---- Roles (spec/testee.md §5) ----

std::int64_t subscribers_listed(Connection &conn, const std::string &channel) {
  for (const auto &info : conn.list().channels) {
    if (info.name == channel) {
      return info.subscribers;
    }
  }
  return 0;
}

void publisher(const Args &args) {
  std::string channel = args.text_or("--channel", "data");
  std::int64_t count = args.number("--count", 1000);
  std::int64_t wanted = args.number("--wait-subscribers", 0);
  std::int64_t hold = args.number("--hold-ms", 0);
  impulse_ring::PublishOptions options{static_cast<std::uint64_t>(args.number("--capacity", 0)), args.flag("--lossy")};
  Connection conn("testee-publisher");
  if (args.flag("--probe-invalid-schema")) {
    probe([&] { conn.publish_channel(channel + "-malformed", kMalformed); }, "accepted a malformed schema");
  }
  impulse_ring::Publisher pub = conn.publish_channel(channel, kMessage, args.text("--key"), options);
  say("ready");
  std::int64_t deadline = now_ms() + 30000;
  std::int64_t joined = 0;
  while ((joined = subscribers_listed(conn, channel)) < wanted) {
    if (now_ms() > deadline) {
      throw Mismatch{"only " + std::to_string(joined) + " of " + std::to_string(wanted) + " subscribers came"};
    }
    std::this_thread::sleep_for(5ms);
  }
  if (args.flag("--wait-go")) {
    std::string line;
    if (!std::getline(std::cin, line)) {
      throw Usage{"cannot read the go line from stdin"};
    }
  }
  if (args.flag("--probe-too-large")) {
    std::vector<std::uint8_t> huge(pub.max_datum() + 1);
    probe([&] { pub.publish(huge); }, "published an oversized payload");
  }
  // Encoded by hand either way: the wrapper has no typed encoder, so --raw changes nothing here.
  Writer w;
  for (std::int64_t seq = 0; seq < count; seq++) {
    encode_message(w, seq);
    pub.publish(w.view(), 10s);
  }
  say("published " + std::to_string(count));
  // Holding keeps the channel open even when the broker goes: the error is printed at once, but the
  // publisher lives on until the hold ends or a kill.
  std::int64_t until = now_ms() + hold;
  bool broker_gone = false;
  while (now_ms() < until) {
    if (!broker_gone && conn.broker_gone()) {
      broker_gone = true;
      say("error BrokerGone: the broker of namespace `" + conn.ns() + "` is gone");
    }
    std::this_thread::sleep_for(10ms);
  }
  if (broker_gone) {
    std::exit(10 + IR_ERR_BROKER_GONE);
  }
}

void subscriber(const Args &args) {
  std::string channel = args.text_or("--channel", "data");
  std::int64_t count = args.number("--count", 1000);
  bool expect_closed = args.flag("--expect-closed");
  std::int64_t stall = args.number("--stall-ms", 0);
  std::string schema = kMessage;
  if (std::optional<std::string> which = args.text("--schema")) {
    if (*which != "other") {
      throw Usage{"unknown schema `" + *which + "`; use `other`"};
    }
    schema = kOtherMessage;
  }
  Connection conn("testee-subscriber");
  if (args.flag("--probe-invalid-schema")) {
    probe([&] { conn.subscribe(channel, kMalformed, args.text("--key")); }, "subscribed with a malformed schema");
  }
  // The channel may not be published yet: retry for a while.
  std::int64_t deadline = now_ms() + 30000;
  std::optional<impulse_ring::Subscriber> sub;
  while (!sub) {
    try {
      sub.emplace(conn.subscribe(channel, schema, args.text("--key")));
    } catch (const Error &e) {
      if (e.code() != IR_ERR_UNKNOWN_CHANNEL || now_ms() >= deadline) {
        throw;
      }
      std::this_thread::sleep_for(5ms);
    }
  }
  say("subscribed");
  std::this_thread::sleep_for(std::chrono::milliseconds(stall));
  std::int64_t next = 0;
  std::int64_t received = 0;
  std::int64_t missed = 0;
  std::int64_t idle_since = now_ms();
  // How the loop ended, reported after the counts.
  std::optional<std::string> mismatch;
  std::optional<std::pair<ir_error_e, std::string>> error;
  while (expect_closed || received + missed < count) {
    try {
      std::optional<ByteView> datum = sub->receive_view(100ms);
      if (!datum) {
        if (now_ms() - idle_since > 60000) {
          mismatch = "nothing received for 60 s after " + std::to_string(received) + " messages";
          break;
        }
        continue;
      }
      idle_since = now_ms();
      std::int64_t seq = -1;
      bool intact = message_intact(*datum, &seq);
      if (seq != next) {
        mismatch = "expected message " + std::to_string(next) + ", got " + std::to_string(seq);
        break;
      }
      if (!intact) {
        mismatch = "message " + std::to_string(next) + " is damaged";
        break;
      }
      next++;
      received++;
    } catch (const Error &e) {
      if (e.code() == IR_ERR_LAGGED) {
        missed += static_cast<std::int64_t>(sub->missed());
        next += static_cast<std::int64_t>(sub->missed());
      } else if (e.code() == IR_ERR_CLOSED && expect_closed) {
        say("closed");
        break;
      } else {
        error.emplace(e.code(), e.what());
        break;
      }
    }
  }
  say("received " + std::to_string(received));
  if (args.text("--stall-ms") || missed > 0) {
    say("missed " + std::to_string(missed) + " received " + std::to_string(received));
  }
  if (mismatch) {
    throw Mismatch{*mismatch};
  }
  if (error) {
    throw Error(error->first, error->second);
  }
}

void provider(const Args &args) {
  std::optional<std::int64_t> fail_on;
  if (args.text("--fail-on")) {
    fail_on = args.number("--fail-on", 0);
  }
  auto sleep = std::chrono::milliseconds(args.number("--sleep-ms", 0));
  Connection conn("testee-provider");
  auto add = [fail_on, sleep](ByteView request) {
    std::this_thread::sleep_for(sleep);
    ir_avro_reader_t r;
    ir_avro_reader_init(&r, request.data(), request.size());
    std::int64_t a = ir_avro_read_long(&r);
    std::int64_t b = ir_avro_read_long(&r);
    if (!ir_avro_reader_finish(&r)) {
      throw Error(IR_ERR_DECODE, ir_avro_reader_error(&r));
    }
    if (fail_on && a == *fail_on) {
      throw std::runtime_error("refusing a = " + std::to_string(a));
    }
    Writer w;
    ir_avro_write_long(w.get(),
                       static_cast<std::int64_t>(static_cast<std::uint64_t>(a) + static_cast<std::uint64_t>(b)));
    return w.view().to_vector();
  };
  impulse_ring::Function fn =
      conn.expose_function(args.text_or("--function", "add"), kAddRequest, kAddResponse, add, args.text("--key"));
  say("ready");
  // Serve until stdin closes (the harness's way to stop us), or the broker goes.
  std::atomic<bool> stdin_closed{false};
  std::thread watcher([&] {
    char buf[256];
    while (read(STDIN_FILENO, buf, sizeof buf) > 0 || errno == EINTR) {
      errno = 0;
    }
    stdin_closed = true;
    conn.serve_stop();
  });
  try {
    while (!stdin_closed) {
      conn.serve(100ms);
    }
  } catch (const Error &e) {
    fail_ring(e);  // exits at once: the watcher still blocks on stdin and uses the connection
  }
  watcher.join();
}

struct Plan {
  Connection *conn;
  std::string function;
  std::optional<std::string> key;
  std::int64_t base;
  std::chrono::milliseconds timeout;
  bool keep_going;
};

std::vector<std::uint8_t> request(const Plan &plan, std::int64_t i) {
  Writer w;
  ir_avro_write_long(w.get(), plan.base + i);
  ir_avro_write_long(w.get(), i * 3);
  return w.view().to_vector();
}

std::mutex output_lock;

// Checks call `i`'s outcome; 1 when it failed and --keep-going lets the run go on.
int check_result(const Plan &plan, std::int64_t i, const std::function<ByteView()> &result) {
  try {
    ByteView datum = result();
    ir_avro_reader_t r;
    ir_avro_reader_init(&r, datum.data(), datum.size());
    std::int64_t sum = ir_avro_read_long(&r);
    if (!ir_avro_reader_finish(&r) || sum != plan.base + i + i * 3) {
      std::lock_guard<std::mutex> guard(output_lock);
      say("mismatch call " + std::to_string(i) + " returned " + std::to_string(sum));
      std::exit(2);
    }
    return 0;
  } catch (const Error &e) {
    if (!plan.keep_going) {
      throw;
    }
    std::lock_guard<std::mutex> guard(output_lock);
    say(std::string("error ") + e.name() + ": " + e.what());
    return 1;
  }
}

std::int64_t call_async(const Plan &plan, std::int64_t count, std::int64_t in_flight) {
  std::vector<std::pair<std::int64_t, std::optional<impulse_ring::Call>>> slots(static_cast<std::size_t>(in_flight));
  std::int64_t started = 0;
  std::int64_t done = 0;
  std::int64_t failed = 0;
  while (done < count) {
    for (auto &slot : slots) {
      if (slot.second || started >= count) {
        continue;
      }
      std::int64_t i = started++;
      std::vector<std::uint8_t> req = request(plan, i);
      try {
        slot.second.emplace(
            plan.conn->start_call(plan.function, kAddRequest, kAddResponse, req, plan.timeout, plan.key));
        slot.first = i;
      } catch (const Error &e) {
        failed += check_result(plan, i, [&e]() -> ByteView { throw e; });
        done++;
      }
      if (i == 0) {
        say("calling");
      }
    }
    bool progressed = false;
    for (auto &slot : slots) {
      if (!slot.second || !slot.second->poll()) {
        continue;
      }
      failed += check_result(plan, slot.first, [&slot] { return slot.second->result(); });
      slot.second.reset();
      done++;
      progressed = true;
    }
    if (!progressed) {
      // Sleep on the oldest pending call until something completes.
      for (auto &slot : slots) {
        if (slot.second) {
          (void)slot.second->poll(10ms);
          break;
        }
      }
    }
  }
  return failed;
}

void caller(const Args &args) {
  std::int64_t count = args.number("--count", 1000);
  std::int64_t threads = args.number("--threads", 0);
  std::int64_t in_flight = std::max<std::int64_t>(1, args.number("--in-flight", 1));
  Connection conn("testee-caller");
  Plan plan{&conn,
            args.text_or("--function", "add"),
            args.text("--key"),
            args.number("--base", 0),
            std::chrono::milliseconds(args.number("--timeout-ms", 30000)),
            args.flag("--keep-going")};
  std::int64_t failed = 0;
  if (threads <= 0) {
    failed = call_async(plan, count, in_flight);
  } else {
    std::vector<std::thread> workers;
    std::vector<std::int64_t> failures(static_cast<std::size_t>(threads), 0);
    for (std::int64_t t = 0; t < threads; t++) {
      workers.emplace_back([&, t] {
        try {
          for (std::int64_t i = t; i < count; i += threads) {
            std::vector<std::uint8_t> response;
            failures[t] += check_result(plan, i, [&]() -> ByteView {
              response = conn.call(plan.function, kAddRequest, kAddResponse, request(plan, i), plan.timeout, plan.key);
              return ByteView(response.data(), response.size());
            });
          }
        } catch (const Error &e) {
          std::lock_guard<std::mutex> guard(output_lock);
          fail_ring(e);
        }
      });
    }
    for (auto &worker : workers) {
      worker.join();
    }
    for (std::int64_t f : failures) {
      failed += f;
    }
  }
  if (plan.keep_going) {
    say("ok " + std::to_string(count - failed) + " failed " + std::to_string(failed));
  } else {
    say("ok " + std::to_string(count));
  }
}

}  // namespace

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (std::strcmp(argv[i], "--help") == 0) {
      std::fputs(reinterpret_cast<const char *>(TESTEE_CONTRACT), stdout);
      return 0;
    }
  }
  try {
    if (argc < 2) {
      throw Usage{"no role given"};
    }
    std::string role = argv[1];
    auto options = roles().find(role);
    if (options == roles().end()) {
      throw Usage{"unknown role `" + role + "`"};
    }
    Args args(options->second, argc - 2, argv + 2);
    if (role == "publisher") {
      publisher(args);
    } else if (role == "subscriber") {
      subscriber(args);
    } else if (role == "provider") {
      provider(args);
    } else {
      caller(args);
    }
  } catch (const Error &e) {
    fail_ring(e);
  } catch (const Mismatch &m) {
    say("mismatch " + m.what);
    return 2;
  } catch (const Usage &u) {
    std::cerr << "testee: " << u.what << "\nusage: testee publisher|subscriber|provider|caller [--option value]...\n";
    return 64;
  } catch (const std::exception &e) {
    std::cerr << "testee: " << e.what() << "\n";
    return 1;
  } catch (...) {
    return 1;
  }
  return 0;
}
