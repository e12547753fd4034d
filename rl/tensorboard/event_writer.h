// TensorBoard event files: scalars written as TensorFlow Event protos in TFRecord framing (length, masked CRC-32C
// of the length, data, masked CRC-32C of the data), the layout TensorBoard and the `tensorboard` Python package read.
// A run writes runs/<name>/tensorboard/events.out.tfevents.<time>.<host>.<pid>; `tensorboard --logdir runs` shows
// every run side by side.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace grpo::rl {

// CRC-32C (Castagnoli), and TFRecord's masking of it (rotate right by 15, add 0xa282ead8).
std::uint32_t crc32c(std::string_view data);
std::uint32_t masked_crc32c(std::string_view data);

class EventWriter {
 public:
  // Creates `dir` and a new event file in it, whose first record is the file-version event. Throws
  // std::runtime_error naming the path when it cannot.
  explicit EventWriter(const std::filesystem::path& dir);
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;
  ~EventWriter();

  void add_scalar(std::string_view tag, double value, std::int64_t step, double wall_time);
  // Every finite number of a metrics row (except "step") as a scalar at row["step"], tagged prefix + key; the keys'
  // groups become TensorBoard's sections ("train/loss", "eval/accuracy", "time/update_s").
  void add_row(const nlohmann::ordered_json& row, std::string_view prefix, double wall_time);
  void flush();
  const std::filesystem::path& path() const { return path_; }

 private:
  void write_record(const std::string& data);
  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
};

// Reads back the scalars of an event file as (tag, step, value), checking every record's CRCs. Throws
// std::runtime_error naming the file and byte offset of a truncated or corrupt record. Tests use it beside the
// `tensorboard` package.
struct ScalarEvent {
  std::string tag;
  std::int64_t step = 0;
  float value = 0.0f;
};
std::vector<ScalarEvent> read_scalar_events(const std::filesystem::path& file);

}  // namespace grpo::rl
