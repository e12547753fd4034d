// Saving and restoring the trainer's state (see trainer_state.h).
#include "rl/trainer_state.h"

#include <algorithm>
#include <fstream>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace grpo::rl {
namespace fs = std::filesystem;
namespace {

constexpr int kStateFormat = 1;

fs::path state_dir(const fs::path& checkpoint) { return checkpoint / "trainer_state"; }

}  // namespace

void save_trainer_state(const fs::path& checkpoint, const TrainerState& state, torch::optim::Optimizer& optimizer,
                        const policy::Policy* reference) {
  const auto dir = state_dir(checkpoint);
  fs::create_directories(dir);
  try {
    torch::save(optimizer, (dir / "optimizer.pt").string());
    torch::save(at::detail::getDefaultCPUGenerator().get_state(), (dir / "rng.pt").string());
  } catch (const c10::Error& error) {
    throw std::runtime_error(fmt::format("cannot write the trainer state in {}: {}", dir.string(), error.what_without_backtrace()));
  }
  if (reference != nullptr) policy::save_policy(dir / "reference", *reference);
  const nlohmann::ordered_json json = {{"format", kStateFormat},
                                       {"step", state.step},
                                       {"elapsed_seconds", state.elapsed_seconds},
                                       {"data_state", state.data_state},
                                       {"reference_differs", reference != nullptr}};
  std::ofstream out(dir / "state.json");
  out << json.dump(1) << '\n';
  if (!out) throw std::runtime_error(fmt::format("cannot write {}", (dir / "state.json").string()));
}

TrainerState load_trainer_state(const fs::path& checkpoint, torch::optim::Optimizer& optimizer, policy::LlamaForCausalLM* reference,
                                torch::Device device) {
  const auto dir = state_dir(checkpoint);
  std::ifstream in(dir / "state.json");
  if (!in) throw std::runtime_error(fmt::format("{} is missing: {} is not a resumable checkpoint", (dir / "state.json").string(), checkpoint.string()));
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& error) {
    throw std::runtime_error(fmt::format("{} is not valid JSON: {}", (dir / "state.json").string(), error.what()));
  }
  TrainerState state;
  try {
    if (json.at("format").get<int>() != kStateFormat) {
      throw std::runtime_error(fmt::format("{} has format {}, this grpo reads {}", (dir / "state.json").string(), json.at("format").get<int>(), kStateFormat));
    }
    state.step = json.at("step").get<int>();
    state.elapsed_seconds = json.at("elapsed_seconds").get<double>();
    state.data_state = json.at("data_state").get<std::string>();
    state.reference_differs = json.at("reference_differs").get<bool>();
  } catch (const nlohmann::json::exception& error) {
    throw std::runtime_error(fmt::format("{} lacks a field or has one of the wrong type: {}", (dir / "state.json").string(), error.what()));
  }
  try {
    torch::load(optimizer, (dir / "optimizer.pt").string());
    torch::Tensor rng;
    torch::load(rng, (dir / "rng.pt").string());
    auto generator = at::detail::getDefaultCPUGenerator();
    generator.set_state(rng);
  } catch (const c10::Error& error) {
    throw std::runtime_error(fmt::format("cannot read the optimizer or generator state in {} (does the config describe the same model?): {}",
                                         dir.string(), error.what_without_backtrace()));
  }
  if (state.reference_differs && reference != nullptr) {
    auto saved = policy::load_policy(dir / "reference", device, (*reference)->dtype());
    torch::NoGradGuard no_grad;
    auto target = (*reference)->named_parameters();
    for (const auto& item : saved.model->named_parameters()) target[item.key()].copy_(item.value());
  }
  return state;
}

std::optional<fs::path> latest_checkpoint(const fs::path& run_dir) {
  std::vector<fs::path> found;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(run_dir / "checkpoints", error)) {
    const auto name = entry.path().filename().string();
    if (entry.is_directory() && name.starts_with("step-") && !name.ends_with(".tmp") && fs::exists(state_dir(entry.path()) / "state.json")) {
      found.push_back(entry.path());
    }
  }
  if (found.empty()) return std::nullopt;
  std::sort(found.begin(), found.end());
  return found.back();
}

}  // namespace grpo::rl
