// Independent work on one core each: every item once, in fixed blocks, one intra-op thread per worker, failures
// passed on, and the rule for when a model takes this path.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <ATen/Parallel.h>

#include "kernels/cpu_workers.h"

namespace grpo::kernels {
namespace {

TEST(CpuWorkers, EveryItemOnceInContiguousBlocksOnOneIntraOpThreadEach) {
  const auto caller = std::this_thread::get_id();
  const int caller_threads = at::get_num_threads();
  std::vector<int> worker_of(10, -1);
  std::vector<int> calls(10, 0);
  std::vector<std::thread::id> thread_of(10);
  std::vector<int> intra_op(10, 0);
  std::mutex mutex;
  run_on_cpu_workers(10, 3, [&](std::int64_t item, int worker) {
    const std::lock_guard lock(mutex);
    ++calls[static_cast<std::size_t>(item)];
    worker_of[static_cast<std::size_t>(item)] = worker;
    thread_of[static_cast<std::size_t>(item)] = std::this_thread::get_id();
    intra_op[static_cast<std::size_t>(item)] = at::get_num_threads();
  });
  // Blocks [0, 3), [3, 6), [6, 10).
  EXPECT_EQ(worker_of, (std::vector<int>{0, 0, 0, 1, 1, 1, 2, 2, 2, 2}));
  for (std::size_t i = 0; i < calls.size(); ++i) {
    EXPECT_EQ(calls[i], 1) << "item " << i;
    EXPECT_NE(thread_of[i], caller);
    EXPECT_EQ(intra_op[i], 1);
    EXPECT_EQ(thread_of[i], thread_of[static_cast<std::size_t>(worker_of[i] == 0 ? 0 : worker_of[i] == 1 ? 3 : 6)]);
  }
  EXPECT_EQ(at::get_num_threads(), caller_threads) << "the caller's thread count is untouched";
}

TEST(CpuWorkers, OneWorkerRunsOnTheCallersThreadAndMoreWorkersThanItemsAreCapped) {
  const auto caller = std::this_thread::get_id();
  std::vector<std::thread::id> seen;
  run_on_cpu_workers(3, 1, [&](std::int64_t, int worker) {
    EXPECT_EQ(worker, 0);
    seen.push_back(std::this_thread::get_id());
  });
  EXPECT_EQ(seen, (std::vector<std::thread::id>(3, caller)));
  std::atomic<int> largest_worker{-1};
  std::atomic<int> count{0};
  run_on_cpu_workers(2, 8, [&](std::int64_t, int worker) {
    ++count;
    int previous = largest_worker.load();
    while (worker > previous && !largest_worker.compare_exchange_weak(previous, worker)) {}
  });
  EXPECT_EQ(count.load(), 2);
  EXPECT_EQ(largest_worker.load(), 1) << "two items: two workers, not eight";
  run_on_cpu_workers(0, 4, [&](std::int64_t, int) { ADD_FAILURE() << "no items, no calls"; });
}

TEST(CpuWorkers, AFailureIsRethrownAfterEveryWorkerStopped) {
  std::atomic<int> done{0};
  EXPECT_THROW(run_on_cpu_workers(4, 2,
                                  [&](std::int64_t item, int) {
                                    if (item == 2) throw std::runtime_error("item 2 failed");
                                    ++done;
                                  }),
               std::runtime_error);
  // Worker 0 (items 0, 1) finished its block; worker 1 stopped at its failing item 2, before item 3.
  EXPECT_EQ(done.load(), 2);
}

TEST(CpuWorkers, OnlySmallModelsOnTheCpuTakeThisPath) {
  const int threads = at::get_num_threads();
  EXPECT_EQ(independent_cpu_workers(c10::Device(c10::DeviceType::CPU), 128, 1000), threads);
  EXPECT_EQ(independent_cpu_workers(c10::Device(c10::DeviceType::CPU), 128, 1), 1);
  EXPECT_EQ(independent_cpu_workers(c10::Device(c10::DeviceType::CPU), kLargestHiddenForCpuWorkers + 1, 1000), 1);
  EXPECT_EQ(independent_cpu_workers(c10::Device(c10::DeviceType::CUDA, 0), 128, 1000), 1);
}

}  // namespace
}  // namespace grpo::kernels
