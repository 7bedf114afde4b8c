// The demo in C++: two apps on one bus, like rust/connector/examples/demo.rs. `sensor` publishes
// readings on a keyed channel and exposes `add` (served on a thread); `dashboard` subscribes and
// calls. Run a broker first (`cargo run -p impulsed`), then `target/cpp/demo`.
#include <cstdint>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "impulse_ring.hpp"

namespace {

using namespace std::chrono_literals;
using impulse_ring::ByteView;
using impulse_ring::Connection;
using impulse_ring::Error;

const std::string kReading =
    R"({"type":"record","name":"Reading","namespace":"demo","fields":[{"name":"seq","type":"long"},)"
    R"({"name":"celsius","type":"double"},{"name":"sensor","type":"string"}]})";
const std::string kAddRequest =
    R"({"type":"record","name":"AddRequest","namespace":"demo","fields":[{"name":"a","type":"long"},)"
    R"({"name":"b","type":"long"}]})";
const std::string kAddResponse =
    R"({"type":"record","name":"AddResponse","namespace":"demo","fields":[{"name":"sum","type":"long"}]})";

// A small owner of an Avro writer, so datums come back as vectors.
std::vector<std::uint8_t> encode(void (*fill)(ir_avro_writer_t *, const void *), const void *value) {
  ir_avro_writer_t w;
  ir_avro_writer_init_dynamic(&w);
  fill(&w, value);
  std::vector<std::uint8_t> out(w.data, w.data + w.len);
  ir_avro_writer_free(&w);
  return out;
}

struct Reading {
  std::int64_t seq;
  double celsius;
  std::string sensor;
};

std::vector<std::uint8_t> encode_reading(const Reading &r) {
  return encode(
      [](ir_avro_writer_t *w, const void *v) {
        const auto *r = static_cast<const Reading *>(v);
        ir_avro_write_long(w, r->seq);
        ir_avro_write_double(w, r->celsius);
        ir_avro_write_string_n(w, r->sensor.data(), r->sensor.size());
      },
      &r);
}

std::vector<std::uint8_t> encode_pair(std::int64_t a, std::int64_t b) {
  const std::int64_t ab[2] = {a, b};
  return encode(
      [](ir_avro_writer_t *w, const void *v) {
        const auto *ab = static_cast<const std::int64_t *>(v);
        ir_avro_write_long(w, ab[0]);
        ir_avro_write_long(w, ab[1]);
      },
      ab);
}

std::vector<std::uint8_t> add(ByteView request) {
  ir_avro_reader_t r;
  ir_avro_reader_init(&r, request.data(), request.size());
  std::int64_t a = ir_avro_read_long(&r);
  std::int64_t b = ir_avro_read_long(&r);
  if (!ir_avro_reader_finish(&r)) {
    throw Error(IR_ERR_DECODE, ir_avro_reader_error(&r));
  }
  std::int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) {
    throw std::overflow_error("overflow");
  }
  return encode(
      [](ir_avro_writer_t *w, const void *v) { ir_avro_write_long(w, *static_cast<const std::int64_t *>(v)); }, &sum);
}

void call_add(Connection &dashboard, const std::string &function, std::int64_t a, std::int64_t b) {
  try {
    std::vector<std::uint8_t> response = dashboard.call(function, kAddRequest, kAddResponse, encode_pair(a, b), 5s);
    ir_avro_reader_t r;
    ir_avro_reader_init(&r, response.data(), response.size());
    std::cout << "dashboard called " << function << "(" << a << ", " << b << ") = " << ir_avro_read_long(&r) << "\n";
  } catch (const Error &e) {
    std::cout << "dashboard called " << function << "(" << a << ", " << b << "): " << e.name() << ": " << e.what()
              << "\n";
  }
}

}  // namespace

int main() {
  try {
    Connection sensor("sensor");
    std::cout << "sensor connected as app " << sensor.app_id() << " in namespace `" << sensor.ns() << "`\n";
    Connection dashboard("dashboard");
    std::cout << "dashboard connected as app " << dashboard.app_id() << "\n";

    std::optional<impulse_ring::Publisher> publisher = sensor.publish_channel("readings", kReading, "demo-key");
    std::cout << "sensor publishes `readings` (schema " << std::hex << publisher->fingerprint() << std::dec << ")\n";
    impulse_ring::Function fn = sensor.expose_function("add", kAddRequest, kAddResponse, add);
    std::cout << "sensor exposes `add`\n";
    std::thread server([&] { sensor.serve(); });

    try {
      dashboard.subscribe("readings", kReading, "wrong-key");
      std::cout << "dashboard with a wrong key was let in (unexpected)\n";
    } catch (const Error &e) {
      std::cout << "dashboard with a wrong key: " << e.name() << ": " << e.what() << "\n";
    }
    impulse_ring::Subscriber subscriber = dashboard.subscribe("readings", kReading, "demo-key");
    for (std::int64_t seq = 0; seq < 5; seq++) {
      publisher->publish(encode_reading({seq, 20.0 + static_cast<double>(seq) / 2, "greenhouse"}));
    }
    for (int i = 0; i < 5; i++) {
      std::optional<ByteView> datum = subscriber.receive_view(2s);
      if (!datum) {
        std::cout << "dashboard: no reading within 2 s\n";
        continue;
      }
      ir_avro_reader_t r;
      ir_avro_reader_init(&r, datum->data(), datum->size());
      std::int64_t seq = ir_avro_read_long(&r);
      double celsius = ir_avro_read_double(&r);
      std::size_t len = 0;
      const char *name = ir_avro_read_string(&r, &len);
      if (ir_avro_reader_finish(&r)) {
        std::cout << "dashboard received Reading { seq: " << seq << ", celsius: " << celsius << ", sensor: \""
                  << std::string(name, len) << "\" }\n";
      }
    }

    call_add(dashboard, "add", 40, 2);
    call_add(dashboard, "add", INT64_MAX, 1);
    call_add(dashboard, "nope", 1, 2);

    publisher.reset();
    try {
      subscriber.receive(2s);
    } catch (const Error &e) {
      std::cout << "dashboard after the sensor closed the channel: " << e.name() << ": " << e.what() << "\n";
    }
    sensor.serve_stop();
    server.join();
    std::cout << "demo done\n";
    return 0;
  } catch (const Error &e) {
    std::cerr << "demo: " << e.name() << ": " << e.what() << "\n";
    return 1;
  }
}
