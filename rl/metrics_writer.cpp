// MetricsWriter (see metrics_writer.h): C stdio rather than std::ofstream because its failures set errno, which
// lets the error say why ("No space left on device"), not only that a write failed.
#include "rl/metrics_writer.h"

#include <fstream>

#include <fmt/format.h>

#include <cerrno>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

namespace grpo::rl {
namespace {

std::string os_reason(int error) { return std::generic_category().message(error); }

}  // namespace

MetricsWriter::MetricsWriter(std::filesystem::path file, bool append) : path_(std::move(file)) {
  errno = 0;
  file_.reset(std::fopen(path_.c_str(), append ? "a" : "w"));
  if (!file_) {
    const int error = errno;
    throw std::runtime_error(fmt::format("cannot open metrics file '{}' for {}: {}", path_.string(),
                                         append ? "appending" : "writing", os_reason(error)));
  }
}

void MetricsWriter::write(const nlohmann::ordered_json& row) {
  if (!row.is_object()) {
    throw std::invalid_argument(
        fmt::format("metrics row for '{}' must be a JSON object, got {}", path_.string(), row.type_name()));
  }
  // nlohmann's serializer writes non-finite floats as null at every depth (JSON has no NaN or infinity), which is
  // what readers such as pandas.read_json expect; `replace` keeps a stray byte in a logged completion from
  // throwing away the whole row.
  std::string line = row.dump(/*indent=*/-1, /*indent_char=*/' ', /*ensure_ascii=*/false,
                              nlohmann::ordered_json::error_handler_t::replace);
  line += '\n';
  // One fwrite of the whole line, then a flush: a kill between rows loses nothing already written.
  errno = 0;
  const bool written = std::fwrite(line.data(), 1, line.size(), file_.get()) == line.size();
  const bool flushed = written && std::fflush(file_.get()) == 0;
  if (!flushed) {
    const int error = errno;
    std::clearerr(file_.get());
    throw std::runtime_error(fmt::format("cannot write metrics file '{}': {}", path_.string(), os_reason(error)));
  }
}

std::vector<nlohmann::json> keep_metrics_up_to(const std::filesystem::path& file, long long step) {
  std::vector<nlohmann::json> kept;
  std::vector<std::string> lines;
  {
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);) {
      nlohmann::json row;
      try {
        row = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception&) {
        continue;  // the line a kill cut short
      }
      if (!row.is_object() || row.value("step", step + 1) > step) continue;
      kept.push_back(row);
      lines.push_back(line);
    }
  }
  const auto staging = file.string() + ".tmp";
  {
    std::ofstream out(staging, std::ios::trunc);
    for (const auto& line : lines) out << line << '\n';
    if (!out) throw std::runtime_error(fmt::format("cannot rewrite {}", file.string()));
  }
  std::filesystem::rename(staging, file);
  return kept;
}

}  // namespace grpo::rl
