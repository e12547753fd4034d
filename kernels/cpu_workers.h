// Independent pieces of work (generation shards, micro-batches) on one CPU core each.
//
// A small model's ops on the CPU are tiny (a 128-wide layer over a few thousand tokens): handing each to a team of
// intra-op threads costs a barrier per op, which on the embedded policy is a sixth of the update's time. Running
// whole micro-batches side by side, one thread each with one intra-op thread, uses the cores with no
// synchronisation inside. Large layers parallelise well inside each op and read every weight once, so they do not
// take this path.
#pragma once

#include <cstdint>
#include <functional>

#include <c10/core/Device.h>

namespace grpo::kernels {

// Models wider than this keep one batch and the intra-op threads.
inline constexpr std::int64_t kLargestHiddenForCpuWorkers = 512;

// How many threads to spread `items` independent pieces of work of a model with this hidden size over: on the CPU
// and for a small model, up to the intra-op thread count (never more than the items); 1 otherwise, or when called
// from inside a parallel region.
int independent_cpu_workers(c10::Device device, std::int64_t hidden_size, std::int64_t items);

// work(item, worker) for every item in [0, items). Worker w (of `workers`) takes the contiguous block of items
// [w·items/workers, (w+1)·items/workers) in order, on its own thread with one intra-op thread, so what a worker
// sums, it sums in a fixed order. With one worker everything runs on the calling thread, as is. Thread-local state
// (grad mode, autocast) starts at its defaults on the other threads: `work` sets what it needs. The first failure,
// in worker order, is rethrown once all have stopped.
void run_on_cpu_workers(std::int64_t items, int workers, const std::function<void(std::int64_t item, int worker)>& work);

}  // namespace grpo::kernels
