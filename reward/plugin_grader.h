// Graders from shared-library plug-ins (the C ABI in reward/grpo_grader_plugin.h), loaded from a path in the config,
// so that users add graders without rebuilding the trainer. A plug-in that fails on one completion, by returning an
// error or garbage or (in a worker process, the default) by crashing or hanging, costs that sample a "cannot score"
// with the reason; the run goes on.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "reward/grader.h"

namespace grpo::reward {

enum class PluginIsolation {
  // The plug-in runs in the trainer's process: no per-call overhead, for trusted plug-ins. Bad return values still
  // yield "cannot score", but a crash takes the trainer down and a hang stalls it (call_timeout is only passed on to
  // the plug-in as its time limit), and the plug-in's global state and memory errors are shared with the trainer.
  kInProcess,
  // The plug-in runs in a worker process forked from the trainer, one call at a time over a socket. A crash, exit
  // or overrun of the time limit marks the sample in flight "cannot score" and the next call starts a fresh worker.
  // Costs a round trip (tens of microseconds) per sample, and grading through one grader is serialized. This
  // contains faults, not malice: the worker runs as the same user, with the trainer's files and memory contents.
  kSubprocess,
};

struct PluginGraderOptions {
  std::filesystem::path library;  // the plug-in's .so; a relative path is taken from the current directory
  std::string config_json = {};   // passed to the plug-in's create(); empty means "{}"
  PluginIsolation isolation = PluginIsolation::kSubprocess;
  // kSubprocess: the longest one grade call (and the worker's start-up, including create()) may take before the
  // worker is killed; a sample's earlier GradeInput::deadline wins. kInProcess: only told to the plug-in.
  std::chrono::milliseconds call_timeout{10000};
};

// Loads the plug-in, checks its descriptor and creates its state (in the worker, for kSubprocess). The grader's
// name() is the plug-in's declared name; grade() and grade_batch() never throw and may be called from any thread.
// Throws std::runtime_error, naming the library and what to do, when the file is missing or is not a loadable
// library, does not export grpo_grader_plugin, was built for another ABI version, returns an invalid descriptor, or
// its create() rejects the config (with the plug-in's message); and for kSubprocess also when the worker cannot be
// started or crashes or hangs while loading. Throws std::invalid_argument for a non-positive call_timeout.
std::unique_ptr<Grader> load_plugin_grader(const PluginGraderOptions& options);

}  // namespace grpo::reward
