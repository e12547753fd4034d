// Device, threads and interrupt handling (see runtime.h).
#include "rl/runtime.h"

#include <atomic>
#include <csignal>
#include <stdexcept>
#include <thread>
#include <unistd.h>

#include <fmt/format.h>

namespace grpo::rl {
namespace {

std::atomic<int> g_interrupts{0};

extern "C" void on_interrupt(int) {
  if (g_interrupts.fetch_add(1) >= 1) {
    static constexpr char kMessage[] = "\ngrpo: interrupted twice, exiting without a checkpoint\n";
    (void)!::write(STDERR_FILENO, kMessage, sizeof(kMessage) - 1);
    std::_Exit(kInterruptedExitCode);
  }
  static constexpr char kMessage[] = "\ngrpo: interrupt received; stopping after the current step (Ctrl-C again to quit now)\n";
  (void)!::write(STDERR_FILENO, kMessage, sizeof(kMessage) - 1);
}

}  // namespace

torch::Device device_for_rank(torch::Device device, int local_rank, bool distributed) {
  if (!device.is_cuda() || !distributed) return device;
  const auto gpus = static_cast<int>(torch::cuda::device_count());
  if (local_rank >= gpus) {
    throw std::invalid_argument(fmt::format("local rank {} needs its own GPU but this node has {}: start at most {} ranks per node", local_rank, gpus, gpus));
  }
  return {torch::kCUDA, static_cast<c10::DeviceIndex>(local_rank)};
}

std::optional<torch::ScalarType> parse_dtype(std::string_view name) {
  if (name == "float32") return torch::kFloat32;
  if (name == "bfloat16") return torch::kBFloat16;
  if (name == "float16") return torch::kFloat16;
  return std::nullopt;
}

torch::Device resolve_device(std::string_view name) {
  if (name == "cpu") return torch::kCPU;
  const bool has_cuda = torch::cuda::is_available();
  if (name == "cuda") {
    if (!has_cuda) throw std::invalid_argument("runtime.device is \"cuda\" but no CUDA device is available (use \"auto\" or \"cpu\")");
    return torch::kCUDA;
  }
  if (name == "auto") return has_cuda ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  throw std::invalid_argument(fmt::format("unknown device '{}'; valid: auto, cpu, cuda", name));
}

void configure_threads(int threads) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(threads > 0 ? threads : cores);
}

void install_interrupt_handlers() {
  struct sigaction action {};
  action.sa_handler = on_interrupt;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

bool interrupt_requested() { return g_interrupts.load() > 0; }

}  // namespace grpo::rl
