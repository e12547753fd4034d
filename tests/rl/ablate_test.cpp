// Example configs and ablation sets all load; the ablation report's numbers on hand-made runs (final accuracy
// mean ± std, steps and time to target), its ordering sentence, and the plots it writes.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <unistd.h>

#include "rl/ablate.h"
#include "rl/config/config_loader.h"

namespace grpo::rl {
namespace {

namespace fs = std::filesystem;

TEST(Examples, EveryRunConfigAndAblationSetLoads) {
  const fs::path examples = fs::path(GRPO_SOURCE_DIR) / "examples";
  int configs = 0, sets = 0;
  // Paths inside are relative to the repository root, as when run from there.
  const auto cwd = fs::current_path();
  fs::current_path(GRPO_SOURCE_DIR);
  for (const auto& entry : fs::recursive_directory_iterator(examples)) {
    if (entry.path().extension() != ".textproto") continue;
    if (entry.path().parent_path().filename() == "ablations") {
      const auto set = load_ablation_set(entry.path());
      for (const auto& variant : set.variants()) {
        std::vector<std::string> overrides(set.set().begin(), set.set().end());
        overrides.insert(overrides.end(), variant.set().begin(), variant.set().end());
        EXPECT_NO_THROW(config::load_config_file(set.base(), overrides)) << entry.path() << " variant " << variant.name();
      }
      ++sets;
    } else {
      EXPECT_NO_THROW(config::load_config_file(entry.path(), {})) << entry.path();
      ++configs;
    }
  }
  fs::current_path(cwd);
  EXPECT_GE(configs, 6);  // the embedded default and the five recipes
  EXPECT_GE(sets, 6);     // group size, β, loss aggregation, std normalisation, clip-higher, recipes
}

TEST(Ablation, MalformedSetsNameTheLine) {
  const auto file = fs::temp_directory_path() / fmt::format("grpo_ablate_bad_{}.textproto", ::getpid());
  std::ofstream(file) << "name: \"x\"\nbase: \"a.textproto\"\nvariants { nme: \"y\" }\n";
  try {
    load_ablation_set(file);
    FAIL();
  } catch (const config::ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find(":3:"), std::string::npos) << error.what();
  }
  std::ofstream(file, std::ios::trunc) << "name: \"x\"\nvariants { name: \"y\" }\n";
  EXPECT_THROW(load_ablation_set(file), config::ConfigError);  // no base
  fs::remove(file);
}

RunMetrics run_with(std::vector<std::pair<int, double>> evals, double seconds_per_step) {
  RunMetrics run;
  for (int step = 1; step <= 30; ++step) run.steps.push_back({{"step", step}, {"time_s", step * seconds_per_step}, {"reward_mean", 0.5}});
  for (const auto& [step, accuracy] : evals) run.evals.push_back({{"step", step}, {"eval_accuracy", accuracy}});
  return run;
}

TEST(Ablation, SummaryAndReport) {
  // Two seeds: accuracy reaches 0.9 at step 10 and at step 20; finals 0.92 and 0.96.
  const std::vector<RunMetrics> fast = {run_with({{0, 0.5}, {10, 0.91}, {20, 0.95}, {30, 0.92}}, 2.0),
                                        run_with({{0, 0.5}, {10, 0.80}, {20, 0.90}, {30, 0.96}}, 2.0)};
  const auto s = summarize_variant("fast", fast, 0.9);
  EXPECT_EQ(s.runs, 2);
  EXPECT_NEAR(s.final_accuracy_mean, 0.94, 1e-12);
  EXPECT_NEAR(s.final_accuracy_std, std::sqrt(0.0008), 1e-12);  // unbiased std of (0.92, 0.96)
  EXPECT_EQ(s.reached_target, 2);
  EXPECT_DOUBLE_EQ(s.steps_to_target, 15.0);
  EXPECT_DOUBLE_EQ(s.seconds_to_target, 30.0);
  EXPECT_DOUBLE_EQ(s.seconds_mean, 60.0);
  const std::vector<RunMetrics> slow = {run_with({{0, 0.5}, {30, 0.60}}, 1.0), run_with({{0, 0.5}, {30, 0.64}}, 1.0)};
  EXPECT_EQ(summarize_variant("slow", slow, 0.9).reached_target, 0);

  config::AblationSet set;
  set.set_name("demo");
  set.set_base("examples/r1_zero_arithmetic.textproto");
  set.set_seeds(2);
  set.set_target_accuracy(0.9);
  set.add_variants()->set_name("slow");
  set.add_variants()->set_name("fast");
  set.add_expected_order("fast");
  set.add_expected_order("slow");
  const auto dir = fs::temp_directory_path() / fmt::format("grpo_ablate_report_{}", ::getpid());
  fs::create_directories(dir);
  write_ablation_report(dir, set, {"slow", "fast"}, {slow, fast});
  std::ifstream in(dir / "report.md");
  const std::string report((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(report.find("| fast | `` | 2 | 94.0% ± 2.8 | 2/2 | 15 | 30 s | 60 s |"), std::string::npos) << report;
  EXPECT_NE(report.find("| slow | `` | 2 | 62.0% ± 2.8 | 0/2 | — | — | 30 s |"), std::string::npos) << report;
  EXPECT_NE(report.find("best first: fast > slow"), std::string::npos) << report;
  EXPECT_NE(report.find("The runs show the expected order."), std::string::npos) << report;
  for (const char* plot : {"accuracy.svg", "reward.svg", "completion_length.svg"}) {
    std::ifstream svg(dir / plot);
    const std::string text((std::istreambuf_iterator<char>(svg)), std::istreambuf_iterator<char>());
    EXPECT_NE(text.find("<svg"), std::string::npos) << plot;
    EXPECT_NE(text.find(">fast</text>"), std::string::npos) << plot;
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace grpo::rl
