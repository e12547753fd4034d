// Run folder layout and housekeeping (see run_folder.h).
#include "rl/run_folder.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

namespace grpo::rl {
namespace fs = std::filesystem;

RunFolder::RunFolder(fs::path root) : root_(std::move(root)) {
  std::error_code error;
  fs::create_directories(root_ / "checkpoints", error);
  if (error) {
    throw std::runtime_error(fmt::format("cannot create run folder {}: {} (choose another output_dir or name)", root_.string(), error.message()));
  }
  const auto probe = root_ / ".write_probe";
  std::ofstream out(probe);
  if (!out) {
    throw std::runtime_error(fmt::format("run folder {} is not writable: {}", root_.string(), std::strerror(errno)));
  }
  out.close();
  fs::remove(probe, error);
}

fs::path RunFolder::step_checkpoint(long long step) const { return root_ / "checkpoints" / fmt::format("step-{:06d}", step); }

fs::path RunFolder::begin_step_checkpoint(long long step) const {
  const auto staging = step_checkpoint(step).string() + ".tmp";
  fs::remove_all(staging);
  fs::create_directories(staging);
  return staging;
}

void RunFolder::commit_step_checkpoint(long long step) const {
  const auto target = step_checkpoint(step);
  fs::remove_all(target);
  fs::rename(target.string() + ".tmp", target);
}

void RunFolder::prune_step_checkpoints(int keep_last) const {
  std::vector<fs::path> steps;
  for (const auto& entry : fs::directory_iterator(root_ / "checkpoints")) {
    const auto name = entry.path().filename().string();
    if (entry.is_directory() && name.starts_with("step-") && !name.ends_with(".tmp")) steps.push_back(entry.path());
  }
  std::sort(steps.begin(), steps.end());
  for (std::size_t i = 0; i + static_cast<std::size_t>(keep_last) < steps.size(); ++i) fs::remove_all(steps[i]);
}

void RunFolder::write_text(const fs::path& file, const std::string& text) const {
  std::ofstream out(file);
  out << text;
  if (!out) throw std::runtime_error(fmt::format("cannot write {}: {}", file.string(), std::strerror(errno)));
}

}  // namespace grpo::rl
