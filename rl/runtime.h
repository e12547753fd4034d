// Process-wide runtime settings of a run: device choice, LibTorch threads, and Ctrl-C / SIGTERM handling.
#pragma once

#include <optional>
#include <string_view>

#include <torch/torch.h>

namespace grpo::rl {

// "auto" → CUDA when LibTorch has it and a GPU is present, else CPU. Throws std::invalid_argument when "cuda" is
// asked for and none is available.
torch::Device resolve_device(std::string_view name);

// A data-parallel rank's device: its own GPU (cuda:LOCAL_RANK) when `device` is CUDA; throws std::invalid_argument
// when the node has fewer GPUs than ranks.
torch::Device device_for_rank(torch::Device device, int local_rank, bool distributed);

// "float32", "bfloat16", "float16" (model.dtype, --dtype) → the scalar type; nullopt for any other name.
std::optional<torch::ScalarType> parse_dtype(std::string_view name);

// 0 → every core.
void configure_threads(int threads);

// The first SIGINT/SIGTERM asks the running job to stop at the next safe point (after the current step, with a
// checkpoint); a second one exits at once with status 130.
void install_interrupt_handlers();
bool interrupt_requested();

// Exit status of a run stopped by the user (128 + SIGINT, as shells report it).
inline constexpr int kInterruptedExitCode = 130;

}  // namespace grpo::rl
