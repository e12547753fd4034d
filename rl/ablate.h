// `grpo ablate SET`: runs every variant of an ablation set (examples/ablations/*.textproto) over several seeds, each
// as its own `grpo train` process, then writes report.md with a table (final held-out accuracy mean ± std over
// seeds, steps and wall time to the target accuracy) and SVG plots of accuracy, reward and completion length against
// the step, one line per variant. Runs that finished before (their final/ checkpoint exists) are not run again, so an
// interrupted ablation picks up where it stopped.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rl/config/run_config.pb.h"

namespace grpo::rl {

struct AblateOptions {
  std::filesystem::path set_file;
  std::filesystem::path output;       // empty: runs/ablate-<set name>
  std::filesystem::path grpo_binary;  // the executable to run `train` with
  int jobs = 1;                       // runs at once
  int seeds = 0;                      // 0: the set's own
  std::vector<std::string> overrides;  // --set for every run (after the set's)
};

// Reads an ablation set. Throws config::ConfigError naming file, line and column for a malformed file, and for a
// set without base, variants or variant names.
config::AblationSet load_ablation_set(const std::filesystem::path& file);

// One run's logged rows, split into training steps and evaluations.
struct RunMetrics {
  std::vector<nlohmann::json> steps;
  std::vector<nlohmann::json> evals;
};
RunMetrics read_run_metrics(const std::filesystem::path& metrics_file);

struct VariantSummary {
  std::string name;
  int runs = 0;
  double final_accuracy_mean = 0.0, final_accuracy_std = 0.0;
  int reached_target = 0;          // runs whose held-out accuracy reached the target
  double steps_to_target = 0.0;    // mean over the runs that reached it
  double seconds_to_target = 0.0;  // likewise, training wall time
  double seconds_mean = 0.0;       // whole run
};

// The table's numbers for one variant from its runs' metrics.
VariantSummary summarize_variant(const std::string& name, const std::vector<RunMetrics>& runs, double target_accuracy);

// report.md and the plots in `dir` from every variant's runs; `overrides` are the command line's, named in the report.
void write_ablation_report(const std::filesystem::path& dir, const config::AblationSet& set, const std::vector<std::string>& variant_names,
                           const std::vector<std::vector<RunMetrics>>& runs, const std::vector<std::string>& overrides = {});

int run_ablation(const AblateOptions& options);

}  // namespace grpo::rl
