// What a checkpoint holds besides the policy, so that `grpo train --resume RUN_DIR` continues exactly where the run
// stopped: the step, the optimizer's moments, the data stream's position, LibTorch's random generator, the
// reference model when it is no longer the initial policy, and the wall time so far. Written next to the policy's
// Hugging Face files in each checkpoint folder (trainer_state/), which is written under a temporary name and renamed
// into place, so a run killed while saving leaves the previous checkpoint intact.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include <torch/torch.h>

#include "policy/checkpoint.h"

namespace grpo::rl {

struct TrainerState {
  int step = 0;                  // the last finished step
  double elapsed_seconds = 0.0;  // training wall time up to it
  std::string data_state;        // the task's training-stream state
  bool reference_differs = false;  // the reference was reset away from the initial policy (saved beside)
};

// dir/trainer_state/{state.json, optimizer.pt, rng.pt[, reference/]}. Throws std::runtime_error naming the file.
void save_trainer_state(const std::filesystem::path& checkpoint, const TrainerState& state, torch::optim::Optimizer& optimizer,
                        const policy::Policy* reference);

// Reads what save_trainer_state wrote into `optimizer` (which must hold the same parameters) and LibTorch's
// generator; loads the reference model into `reference` when one was saved. Throws std::runtime_error naming the
// file and what is wrong (missing, truncated, from another run shape).
TrainerState load_trainer_state(const std::filesystem::path& checkpoint, torch::optim::Optimizer& optimizer,
                                policy::LlamaForCausalLM* reference, torch::Device device);

// The newest step checkpoint of a run folder that holds a complete trainer state, or nullopt.
std::optional<std::filesystem::path> latest_checkpoint(const std::filesystem::path& run_dir);

}  // namespace grpo::rl
