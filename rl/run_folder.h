// The run folder runs/<name>/: config.textproto, metrics.jsonl, checkpoints/step-NNNNNN/ and final/.
#pragma once

#include <filesystem>
#include <string>

namespace grpo::rl {

class RunFolder {
 public:
  // Creates the folder and checks that it is writable (throws std::runtime_error saying which path and why).
  explicit RunFolder(std::filesystem::path root);

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path config_file() const { return root_ / "config.textproto"; }
  std::filesystem::path metrics_file() const { return root_ / "metrics.jsonl"; }
  std::filesystem::path final_checkpoint() const { return root_ / "final"; }
  std::filesystem::path step_checkpoint(long long step) const;
  // A checkpoint is written into begin_step_checkpoint(step) (checkpoints/step-NNNNNN.tmp, emptied first) and
  // commit_step_checkpoint(step) renames it into place, replacing an older one of the same step.
  std::filesystem::path begin_step_checkpoint(long long step) const;
  void commit_step_checkpoint(long long step) const;
  // Deletes step checkpoints beyond the newest keep_last.
  void prune_step_checkpoints(int keep_last) const;
  void write_text(const std::filesystem::path& file, const std::string& text) const;

 private:
  std::filesystem::path root_;
};

}  // namespace grpo::rl
