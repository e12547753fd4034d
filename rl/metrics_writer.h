// metrics.jsonl: one JSON object per training step or evaluation, appended line by line so that a run can be
// plotted while it trains and a killed run keeps every line but the one being written.
#pragma once

#include <cstdio>
#include <filesystem>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

namespace grpo::rl {

// Writes rows to a JSON Lines file. Not thread-safe: one writer per file, called from the trainer's thread.
class MetricsWriter {
 public:
  // Opens `file` (truncating it, or appending when `append`, as a resumed run does); the parent folder must exist.
  // Throws std::runtime_error naming the path and the OS reason when the file cannot be opened.
  explicit MetricsWriter(std::filesystem::path file, bool append = false);

  // Writes `row` (a JSON object; anything else throws std::invalid_argument) as one line, keys in insertion order,
  // and flushes it to the OS. NaN and ±inf become null, at any depth; invalid UTF-8 in strings becomes U+FFFD.
  // Throws std::runtime_error naming the path and the OS reason when the write fails (disk full, I/O error).
  void write(const nlohmann::ordered_json& row);

  const std::filesystem::path& path() const { return path_; }

 private:
  struct FileCloser {
    void operator()(std::FILE* file) const { std::fclose(file); }
  };

  std::filesystem::path path_;
  std::unique_ptr<std::FILE, FileCloser> file_;
};

// Rewrites a metrics file keeping only the rows of steps ≤ `step` (a resumed run drops what its killed
// predecessor logged after its checkpoint; a torn last line is dropped too) and returns them. A missing file is
// empty. Throws std::runtime_error naming the file when it cannot be rewritten.
std::vector<nlohmann::json> keep_metrics_up_to(const std::filesystem::path& file, long long step);

}  // namespace grpo::rl
