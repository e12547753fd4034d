// Ablation runs and their report (see ablate.h).
#include "rl/ablate.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <fstream>
#include <iostream>
#include <map>
#include <numeric>
#include <thread>

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rl/config/config_loader.h"
#include "rl/progress_bar.h"
#include "rl/runtime.h"
#include "rl/svg_plot.h"

namespace grpo::rl {
namespace fs = std::filesystem;
namespace {

class CollectFirstError : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (first.empty()) first = fmt::format("{}:{}: {}", line + 1, column + 1, message);
  }
  std::string first;
};

double mean_of(const std::vector<double>& values) {
  return values.empty() ? 0.0 : std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
}

double std_of(const std::vector<double>& values) {
  if (values.size() < 2) return 0.0;
  const double m = mean_of(values);
  double sum = 0.0;
  for (const auto v : values) sum += (v - m) * (v - m);
  return std::sqrt(sum / static_cast<double>(values.size() - 1));
}

// The mean over runs of `key` at each step (eval or step rows), for the plots.
std::vector<std::pair<double, double>> mean_curve(const std::vector<RunMetrics>& runs, const std::string& key, bool evals) {
  std::map<long long, std::vector<double>> by_step;
  for (const auto& run : runs) {
    for (const auto& row : evals ? run.evals : run.steps) {
      if (row.contains(key) && row[key].is_number()) by_step[row.value("step", 0LL)].push_back(row[key].get<double>());
    }
  }
  std::vector<std::pair<double, double>> points;
  for (const auto& [step, values] : by_step) points.emplace_back(static_cast<double>(step), mean_of(values));
  return points;
}

// A moving average over `window` points: per-step training rewards are noisy.
std::vector<std::pair<double, double>> smoothed(const std::vector<std::pair<double, double>>& points, std::size_t window) {
  std::vector<std::pair<double, double>> out;
  for (std::size_t i = 0; i < points.size(); ++i) {
    const auto begin = i + 1 >= window ? i + 1 - window : 0;
    double sum = 0.0;
    for (auto j = begin; j <= i; ++j) sum += points[j].second;
    out.emplace_back(points[i].first, sum / static_cast<double>(i - begin + 1));
  }
  return out;
}

struct RunPlan {
  std::string variant;
  int seed = 0;
  std::string name;  // run folder name
  std::vector<std::string> overrides;
};

pid_t start_run(const AblateOptions& options, const config::AblationSet& set, const RunPlan& plan, const fs::path& runs_dir, const fs::path& log) {
  std::vector<std::string> argv = {options.grpo_binary.string(), "train", set.base()};
  for (const auto& o : set.set()) argv.insert(argv.end(), {"--set", o});
  for (const auto& o : plan.overrides) argv.insert(argv.end(), {"--set", o});
  for (const auto& o : options.overrides) argv.insert(argv.end(), {"--set", o});
  argv.insert(argv.end(), {"--set", fmt::format("seed={}", plan.seed), "--set", "name=" + plan.name, "--set", "output_dir=" + runs_dir.string(),
                           "--set", "logging.progress=LINES"});
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
    }
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

}  // namespace

config::AblationSet load_ablation_set(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw config::ConfigError(fmt::format("{}: cannot read the ablation set", file.string()));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  config::AblationSet set;
  google::protobuf::TextFormat::Parser parser;
  CollectFirstError errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, &set)) throw config::ConfigError(fmt::format("{}:{}", file.string(), errors.first));
  if (set.base().empty()) throw config::ConfigError(fmt::format("{}: base is empty; name the run config every variant starts from", file.string()));
  if (set.variants_size() == 0) throw config::ConfigError(fmt::format("{}: no variants", file.string()));
  for (int i = 0; i < set.variants_size(); ++i) {
    if (set.variants(i).name().empty()) throw config::ConfigError(fmt::format("{}: variants[{}] has no name", file.string(), i));
  }
  if (set.name().empty()) set.set_name(file.stem().string());
  return set;
}

RunMetrics read_run_metrics(const fs::path& metrics_file) {
  RunMetrics out;
  std::ifstream in(metrics_file);
  for (std::string line; std::getline(in, line);) {
    try {
      const auto row = nlohmann::json::parse(line);
      (row.contains("eval_accuracy") ? out.evals : out.steps).push_back(row);
    } catch (const nlohmann::json::exception&) {  // a torn last line
    }
  }
  return out;
}

VariantSummary summarize_variant(const std::string& name, const std::vector<RunMetrics>& runs, double target) {
  VariantSummary s;
  s.name = name;
  std::vector<double> finals, steps_to, seconds_to, seconds;
  for (const auto& run : runs) {
    if (run.evals.empty()) continue;
    ++s.runs;
    finals.push_back(run.evals.back().value("eval_accuracy", 0.0));
    if (!run.steps.empty()) seconds.push_back(run.steps.back().value("time_s", 0.0));
    for (const auto& e : run.evals) {
      if (e.value("eval_accuracy", 0.0) < target) continue;
      const auto step = e.value("step", 0LL);
      steps_to.push_back(static_cast<double>(step));
      double at = 0.0;
      for (const auto& row : run.steps) {
        if (row.value("step", 0LL) == step) at = row.value("time_s", 0.0);
      }
      seconds_to.push_back(at);
      break;
    }
  }
  s.final_accuracy_mean = mean_of(finals);
  s.final_accuracy_std = std_of(finals);
  s.reached_target = static_cast<int>(steps_to.size());
  s.steps_to_target = mean_of(steps_to);
  s.seconds_to_target = mean_of(seconds_to);
  s.seconds_mean = mean_of(seconds);
  return s;
}

void write_ablation_report(const fs::path& dir, const config::AblationSet& set, const std::vector<std::string>& names,
                           const std::vector<std::vector<RunMetrics>>& runs, const std::vector<std::string>& overrides) {
  std::vector<VariantSummary> summaries;
  for (std::size_t v = 0; v < names.size(); ++v) summaries.push_back(summarize_variant(names[v], runs[v], set.target_accuracy()));
  const struct {
    const char* file;
    const char* title;
    const char* key;
    bool evals;
    const char* y;
  } plots[] = {{"accuracy.svg", "Held-out greedy accuracy", "eval_accuracy", true, "accuracy"},
               {"reward.svg", "Training reward (moving average of 10 steps)", "reward_mean", false, "reward"},
               {"completion_length.svg", "Completion length (moving average of 10 steps)", "completion_tokens_mean", false, "tokens"}};
  for (const auto& plot : plots) {
    std::vector<PlotSeries> series;
    for (std::size_t v = 0; v < names.size(); ++v) {
      auto curve = mean_curve(runs[v], plot.key, plot.evals);
      if (!plot.evals) curve = smoothed(curve, 10);
      series.push_back({names[v], curve});
    }
    write_line_plot(dir / plot.file, fmt::format("{}: {}", set.name(), plot.title), "step", plot.y, series);
  }

  std::string md = fmt::format("# Ablation: {}\n\nBase config `{}`", set.name(), set.base());
  std::vector<std::string> common(set.set().begin(), set.set().end());
  common.insert(common.end(), overrides.begin(), overrides.end());
  if (!common.empty()) md += fmt::format(" with `{}`", fmt::join(common, "`, `"));
  md += fmt::format("; {} seeds per variant; target held-out accuracy {:.0f}%.\n\n", set.seeds(), 100 * set.target_accuracy());
  md += "| variant | overrides | runs | final accuracy (mean ± std) | reached target | steps to target | wall time to target | wall time |\n";
  md += "| --- | --- | --- | --- | --- | --- | --- | --- |\n";
  for (std::size_t v = 0; v < summaries.size(); ++v) {
    const auto& s = summaries[v];
    const auto& variant = set.variants(static_cast<int>(v));
    md += fmt::format("| {} | `{}` | {} | {:.1f}% ± {:.1f} | {}/{} | {} | {} | {:.0f} s |\n", s.name, fmt::join(variant.set(), " "), s.runs,
                      100 * s.final_accuracy_mean, 100 * s.final_accuracy_std, s.reached_target, s.runs,
                      s.reached_target ? fmt::format("{:.0f}", s.steps_to_target) : "—", s.reached_target ? fmt::format("{:.0f} s", s.seconds_to_target) : "—",
                      s.seconds_mean);
  }
  // The ordering the runs show, against the one the set expects.
  auto by_accuracy = summaries;
  // Final accuracy first (to the point), then how many runs reached the target and how soon.
  std::stable_sort(by_accuracy.begin(), by_accuracy.end(), [](const auto& a, const auto& b) {
    const auto pa = std::round(100 * a.final_accuracy_mean), pb = std::round(100 * b.final_accuracy_mean);
    if (pa != pb) return pa > pb;
    if (a.reached_target != b.reached_target) return a.reached_target > b.reached_target;
    return a.steps_to_target < b.steps_to_target;
  });
  std::vector<std::string> observed;
  for (const auto& s : by_accuracy) observed.push_back(s.name);
  md += fmt::format("\nBy final accuracy, then steps to target, best first: {}.\n", fmt::join(observed, " > "));
  if (!set.expectation().empty()) md += fmt::format("\nExpected: {}\n", set.expectation());
  if (set.expected_order_size() > 0) {
    const std::vector<std::string> expected(set.expected_order().begin(), set.expected_order().end());
    if (expected == observed) {
      md += "\nThe runs show the expected order.\n";
    } else {
      // Say whether the disagreement is within the noise of the seeds.
      double widest = 0.0;
      for (const auto& s : summaries) widest = std::max(widest, s.final_accuracy_std);
      const double spread = by_accuracy.front().final_accuracy_mean - by_accuracy.back().final_accuracy_mean;
      md += fmt::format("\nThe runs do not show the expected order ({}). ", fmt::join(expected, " > "));
      md += spread <= 2 * widest
                ? fmt::format("The variants' means lie within {:.1f} points of each other, less than two standard deviations over seeds ({:.1f} "
                              "points): at this scale and number of seeds the ablation cannot tell them apart.\n",
                              100 * spread, 100 * widest)
                : fmt::format("The means differ by {:.1f} points, more than two standard deviations over seeds ({:.1f} points); see the curves "
                              "below for when they part.\n",
                              100 * spread, 100 * widest);
    }
  }
  md += "\n![accuracy](accuracy.svg)\n\n![reward](reward.svg)\n\n![completion length](completion_length.svg)\n";
  md += "\nEach run's folder (config, metrics.jsonl, TensorBoard events) is under `runs/`; `tensorboard --logdir runs` shows them together.\n";
  std::ofstream out(dir / "report.md");
  out << md;
  if (!out) throw std::runtime_error(fmt::format("cannot write {}", (dir / "report.md").string()));
}

int run_ablation(const AblateOptions& options) {
  auto set = load_ablation_set(options.set_file);
  if (options.seeds > 0) set.set_seeds(options.seeds);
  const auto dir = options.output.empty() ? fs::path("runs") / ("ablate-" + set.name()) : options.output;
  const auto runs_dir = dir / "runs", logs_dir = dir / "logs";
  fs::create_directories(runs_dir);
  fs::create_directories(logs_dir);
  // Each variant's config must load before anything runs: a typo fails now, not after an hour.
  std::vector<RunPlan> plans;
  std::vector<std::string> names;
  for (const auto& variant : set.variants()) {
    names.push_back(variant.name());
    std::vector<std::string> overrides(set.set().begin(), set.set().end());
    overrides.insert(overrides.end(), variant.set().begin(), variant.set().end());
    overrides.insert(overrides.end(), options.overrides.begin(), options.overrides.end());
    try {
      config::load_config_file(set.base(), overrides);
    } catch (const config::ConfigError& error) {
      throw config::ConfigError(fmt::format("{}: variant '{}': {}", options.set_file.string(), variant.name(), error.what()));
    }
    std::string slug;
    for (const char c : variant.name()) slug += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    for (int seed = 1; seed <= set.seeds(); ++seed) {
      plans.push_back({variant.name(), seed, fmt::format("{}-seed{}", slug, seed), {variant.set().begin(), variant.set().end()}});
    }
  }
  std::cerr << fmt::format("grpo ablate: {} variants × {} seeds = {} runs in {} ({} at a time)\n", names.size(), set.seeds(), plans.size(),
                           dir.string(), options.jobs);
  ProgressBar bar("ablate", static_cast<long long>(plans.size()), resolve_progress_style("AUTO", ::isatty(STDERR_FILENO)), std::cerr, 1);
  std::deque<std::size_t> waiting;
  int done = 0, failed = 0;
  for (std::size_t i = 0; i < plans.size(); ++i) {
    if (fs::exists(runs_dir / plans[i].name / "final" / "model.safetensors")) {
      ++done;  // finished in an earlier invocation
    } else {
      waiting.push_back(i);
    }
  }
  std::map<pid_t, std::size_t> running;
  while ((!waiting.empty() || !running.empty()) && !interrupt_requested()) {
    while (!waiting.empty() && static_cast<int>(running.size()) < std::max(options.jobs, 1)) {
      const auto i = waiting.front();
      waiting.pop_front();
      running[start_run(options, set, plans[i], runs_dir, logs_dir / (plans[i].name + ".log"))] = i;
    }
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) break;
    const auto it = running.find(pid);
    if (it == running.end()) continue;
    const auto& plan = plans[it->second];
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
      ++failed;
      std::cerr << fmt::format("\ngrpo ablate: run {} failed (see {})\n", plan.name, (logs_dir / (plan.name + ".log")).string());
    }
    running.erase(it);
    bar.update(++done, plan.name);
  }
  bar.finish("");
  for (const auto& [pid, i] : running) ::kill(pid, SIGTERM);
  std::vector<std::vector<RunMetrics>> metrics(names.size());
  for (const auto& plan : plans) {
    const auto v = static_cast<std::size_t>(std::find(names.begin(), names.end(), plan.variant) - names.begin());
    metrics[v].push_back(read_run_metrics(runs_dir / plan.name / "metrics.jsonl"));
  }
  write_ablation_report(dir, set, names, metrics, options.overrides);
  std::cout << fmt::format("grpo ablate: report {}\n", (dir / "report.md").string());
  if (interrupt_requested()) return kInterruptedExitCode;
  return failed == 0 ? 0 : 1;
}

}  // namespace grpo::rl
