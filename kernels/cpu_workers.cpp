// Independent work on one core each (see cpu_workers.h).
#include "kernels/cpu_workers.h"

#include <algorithm>
#include <exception>
#include <thread>
#include <vector>

#include <ATen/Parallel.h>

namespace grpo::kernels {

int independent_cpu_workers(c10::Device device, std::int64_t hidden_size, std::int64_t items) {
  if (!device.is_cpu() || hidden_size > kLargestHiddenForCpuWorkers || at::in_parallel_region()) return 1;
  return static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(at::get_num_threads(), items)));
}

void run_on_cpu_workers(std::int64_t items, int workers, const std::function<void(std::int64_t item, int worker)>& work) {
  workers = static_cast<int>(std::clamp<std::int64_t>(workers, 1, std::max<std::int64_t>(items, 1)));
  if (workers == 1) {
    for (std::int64_t item = 0; item < items; ++item) work(item, 0);
    return;
  }
  std::vector<std::exception_ptr> failures(static_cast<std::size_t>(workers));
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(workers));
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      try {
        at::set_num_threads(1);  // this thread's OpenMP and MKL teams only
        const auto begin = items * w / workers, end = items * (w + 1) / workers;
        for (auto item = begin; item < end; ++item) work(item, w);
      } catch (...) {
        failures[static_cast<std::size_t>(w)] = std::current_exception();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& failure : failures) {
    if (failure) std::rethrow_exception(failure);
  }
}

}  // namespace grpo::kernels
