// TFRecord framing and Event protos for TensorBoard (see event_writer.h).
#include "rl/tensorboard/event_writer.h"

#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include <fmt/format.h>
#include <unistd.h>

#include "rl/tensorboard/event.pb.h"

namespace grpo::rl {
namespace {

std::array<std::uint32_t, 256> make_crc_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;  // the Castagnoli polynomial, reflected
    table[i] = c;
  }
  return table;
}

std::string little_endian(std::uint64_t value, int bytes) {
  std::string out(static_cast<std::size_t>(bytes), '\0');
  for (int i = 0; i < bytes; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>((value >> (8 * i)) & 0xFF);
  return out;
}

std::uint64_t read_little_endian(const std::string& bytes, std::size_t at, int count) {
  std::uint64_t value = 0;
  for (int i = count - 1; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(bytes[at + static_cast<std::size_t>(i)]);
  return value;
}

// Where TensorBoard groups a metric: step metrics under train/, evaluation under eval/, timings under time/.
std::string tag_of(std::string_view prefix, const std::string& key) {
  if (!prefix.empty()) return fmt::format("{}{}", prefix, key);
  if (key.starts_with("eval_")) return "eval/" + key.substr(5);
  if (key.starts_with("time_")) return "time/" + key.substr(5);
  if (key.starts_with("share_")) return "time/share_" + key.substr(6);
  return "train/" + key;
}

}  // namespace

std::uint32_t crc32c(std::string_view data) {
  static const auto table = make_crc_table();
  std::uint32_t crc = 0xFFFFFFFFu;
  for (const char c : data) crc = table[(crc ^ static_cast<unsigned char>(c)) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

std::uint32_t masked_crc32c(std::string_view data) {
  const auto crc = crc32c(data);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

EventWriter::EventWriter(const std::filesystem::path& dir) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) throw std::runtime_error(fmt::format("cannot create {}: {}", dir.string(), error.message()));
  char host[256] = "localhost";
  ::gethostname(host, sizeof host - 1);
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  path_ = dir / fmt::format("events.out.tfevents.{}.{}.{}", now, host, ::getpid());
  file_ = std::fopen(path_.c_str(), "ab");
  if (file_ == nullptr) throw std::runtime_error(fmt::format("cannot open {}: {}", path_.string(), std::strerror(errno)));
  tensorboard::Event version;
  version.set_wall_time(static_cast<double>(now));
  version.set_file_version("brain.Event:2");
  write_record(version.SerializeAsString());
  flush();
}

EventWriter::~EventWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

void EventWriter::write_record(const std::string& data) {
  const auto length = little_endian(data.size(), 8);
  const auto record = length + little_endian(masked_crc32c(length), 4) + data + little_endian(masked_crc32c(data), 4);
  if (std::fwrite(record.data(), 1, record.size(), file_) != record.size()) {
    throw std::runtime_error(fmt::format("cannot write {}: {}", path_.string(), std::strerror(errno)));
  }
}

void EventWriter::add_scalar(std::string_view tag, double value, std::int64_t step, double wall_time) {
  tensorboard::Event event;
  event.set_wall_time(wall_time);
  event.set_step(step);
  auto* v = event.mutable_summary()->add_value();
  v->set_tag(std::string(tag));
  v->set_simple_value(static_cast<float>(value));
  write_record(event.SerializeAsString());
}

void EventWriter::add_row(const nlohmann::ordered_json& row, std::string_view prefix, double wall_time) {
  const auto step = row.value("step", std::int64_t{0});
  for (const auto& [key, value] : row.items()) {
    if (key == "step" || !value.is_number()) continue;
    const auto number = value.get<double>();
    if (std::isfinite(number)) add_scalar(tag_of(prefix, key), number, step, wall_time);
  }
  flush();
}

void EventWriter::flush() { std::fflush(file_); }

std::vector<ScalarEvent> read_scalar_events(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("cannot read {}", file.string()));
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<ScalarEvent> out;
  std::size_t at = 0;
  while (at < bytes.size()) {
    const auto fail = [&](std::string_view what) {
      throw std::runtime_error(fmt::format("{}: {} in the record at byte {}", file.string(), what, at));
    };
    if (bytes.size() - at < 12) fail("truncated header");
    const auto length = read_little_endian(bytes, at, 8);
    if (read_little_endian(bytes, at + 8, 4) != masked_crc32c(std::string_view(bytes).substr(at, 8))) fail("length CRC mismatch");
    if (bytes.size() - at - 12 < length + 4) fail("truncated data");
    const auto data = std::string_view(bytes).substr(at + 12, length);
    if (read_little_endian(bytes, at + 12 + length, 4) != masked_crc32c(data)) fail("data CRC mismatch");
    tensorboard::Event event;
    if (!event.ParseFromArray(data.data(), static_cast<int>(data.size()))) fail("an Event that does not parse");
    for (const auto& value : event.summary().value()) out.push_back({value.tag(), event.step(), value.simple_value()});
    at += 12 + length + 4;
  }
  return out;
}

}  // namespace grpo::rl
