// The update's log-probs, chunked (kernels/chunked_token_logprobs.h) beside the naive path (logits, log-softmax,
// gather), forward and backward, on the same hidden states and output projection. Prints one JSON line: medians of
// both, their ratio, the largest difference, and the memory each needed (on CUDA the caching allocator's peak during
// the pass, inputs and gradients included; on the CPU the float32 tensors each path holds at once beyond its inputs,
// counted from the shapes).
//
//   build/bin/grpo_bench_logprobs [--tokens 2048] [--vocab 151936] [--hidden 896] [--dtype float32|bfloat16]
//                                 [--device cpu|cuda] [--repeats 5]
//
// The GPU figure: --device cuda --tokens 16384 --dtype bfloat16 (Qwen2.5-0.5B's vocabulary and width).
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <torch/torch.h>
#if defined(GRPO_HAVE_CUDA)
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include "kernels/chunked_token_logprobs.h"

namespace {

struct Options {
  std::int64_t tokens = 2048, vocab = 151936, hidden = 896;
  int repeats = 5;
  std::string dtype = "float32", device = "cpu";
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::cout << "Usage: grpo_bench_logprobs [--tokens N] [--vocab V] [--hidden C] [--dtype float32|bfloat16] [--device cpu|cuda] [--repeats R]\n"
                   "Times chunked and naive token log-probs (forward + backward) on the same inputs; prints one JSON line.\n";
      std::exit(0);
    }
    if (i + 1 >= argc) {
      std::cerr << "grpo_bench_logprobs: " << flag << " needs a value (see --help)\n";
      std::exit(2);
    }
    const std::string value = argv[++i];
    if (flag == "--tokens") o.tokens = std::stoll(value);
    else if (flag == "--vocab") o.vocab = std::stoll(value);
    else if (flag == "--hidden") o.hidden = std::stoll(value);
    else if (flag == "--repeats") o.repeats = std::stoi(value);
    else if (flag == "--dtype") o.dtype = value;
    else if (flag == "--device") o.device = value;
    else {
      std::cerr << "grpo_bench_logprobs: unknown flag " << flag << " (see --help)\n";
      std::exit(2);
    }
  }
  return o;
}

void synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

std::int64_t peak_bytes_since_reset(const torch::Device& device) {
#if defined(GRPO_HAVE_CUDA)
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index() < 0 ? 0 : device.index());
    return stats.allocated_bytes[0].peak;
  }
#endif
  (void)device;
  return -1;
}

void reset_peak(const torch::Device& device) {
#if defined(GRPO_HAVE_CUDA)
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index() < 0 ? 0 : device.index());
#endif
  (void)device;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const auto o = parse(argc, argv);
  const torch::Device device(o.device == "cuda" ? torch::kCUDA : torch::kCPU);
  if (device.is_cuda() && !torch::cuda::is_available()) {
    std::cerr << "grpo_bench_logprobs: --device cuda but no CUDA device is available\n";
    return 2;
  }
  const auto dtype = o.dtype == "bfloat16" ? torch::kBFloat16 : torch::kFloat32;
  torch::manual_seed(0);
  const auto options = torch::TensorOptions().dtype(dtype).device(device);
  const auto hidden = (torch::randn({o.tokens, o.hidden}, options) * 0.5).requires_grad_(true);
  const auto weight = (torch::randn({o.vocab, o.hidden}, options) * 0.05).requires_grad_(true);
  const auto targets = torch::randint(o.vocab, {o.tokens}, torch::TensorOptions().dtype(torch::kInt64).device(device));
  const auto upstream = torch::randn({o.tokens}, torch::TensorOptions().dtype(torch::kFloat32).device(device));

  auto pass = [&](bool chunked) {
    hidden.mutable_grad() = torch::Tensor();
    weight.mutable_grad() = torch::Tensor();
    const auto out = chunked ? grpo::kernels::chunked_token_logprobs(hidden, weight, targets)
                             : grpo::kernels::chunked_token_logprobs_reference(hidden, weight, targets);
    (out.logprobs * upstream).sum().backward();
    return out.logprobs.detach();
  };
  std::vector<double> naive_s, chunked_s;
  std::int64_t naive_peak = -1, chunked_peak = -1;
  double max_difference = 0.0;
  for (int r = 0; r < o.repeats + 1; ++r) {  // the first of each is a warm-up
    for (const bool chunked : {false, true}) {
      synchronize(device);
      reset_peak(device);
      const auto start = std::chrono::steady_clock::now();
      const auto logprobs = pass(chunked);
      synchronize(device);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const auto peak = peak_bytes_since_reset(device);
      if (r > 0) (chunked ? chunked_s : naive_s).push_back(seconds);
      (chunked ? chunked_peak : naive_peak) = std::max(chunked ? chunked_peak : naive_peak, peak);
      if (r == 0 && chunked) max_difference = (logprobs - pass(false)).abs().max().item<double>();
    }
  }
  // On the CPU: the float32 tensors each path holds at once beyond its inputs. Naive: logits, log-softmax and the
  // gradient of the log-softmax ([N, V] each); chunked: one chunk's logits and its gradient.
  const double nv = static_cast<double>(o.tokens) * static_cast<double>(o.vocab) * 4.0;
  const double chunk_rows = std::max<double>(1.0, static_cast<double>(std::int64_t{256} << 20) / (4.0 * static_cast<double>(o.vocab)));
  const double chunk = std::min<double>(chunk_rows, static_cast<double>(o.tokens)) * static_cast<double>(o.vocab) * 4.0;
  const double naive_mb = naive_peak >= 0 ? static_cast<double>(naive_peak) / 1e6 : 3.0 * nv / 1e6;
  const double chunked_mb = chunked_peak >= 0 ? static_cast<double>(chunked_peak) / 1e6 : 2.0 * chunk / 1e6;
  std::cout << fmt::format(
                   "{{\"device\": \"{}\", \"dtype\": \"{}\", \"tokens\": {}, \"vocab\": {}, \"hidden\": {}, \"naive_s\": {:.4f}, \"chunked_s\": {:.4f}, "
                   "\"speed_ratio\": {:.3f}, \"naive_mb\": {:.1f}, \"chunked_mb\": {:.1f}, \"memory_ratio\": {:.2f}, \"memory\": \"{}\", "
                   "\"max_abs_difference\": {:.3g}}}",
                   o.device, o.dtype, o.tokens, o.vocab, o.hidden, median(naive_s), median(chunked_s), median(naive_s) / median(chunked_s), naive_mb,
                   chunked_mb, naive_mb / chunked_mb, naive_peak >= 0 ? "allocator peak" : "float32 [N, V] tensors held, from the shapes",
                   max_difference)
            << std::endl;
  return 0;
}
