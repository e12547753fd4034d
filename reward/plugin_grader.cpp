// Graders from shared-library plug-ins: loading and checking a plug-in against the C ABI in grpo_grader_plugin.h,
// turning whatever it returns into a GradeResult (anything outside the contract becomes "cannot score"), and, for
// PluginIsolation::kSubprocess, running it in a worker process so that its crashes and hangs cost only the sample in
// flight.
//
// The worker is a plain fork() of the trainer, without exec: the plug-in needs no helper binary, and glibc resets the
// malloc, stdio and dynamic-loader locks in the child of a multithreaded process, so malloc, stdio and dlopen work
// there. (Should some other lock, held by a trainer thread at the moment of the fork, still block the worker, it
// hangs and is killed at the time limit like any hung plug-in.) The library is loaded only in the worker, never in
// the trainer, so that even its constructors and create() run where a crash is contained; load errors (dlerror
// text, a missing symbol, a bad descriptor, create()'s message) come back as the worker's first message and are
// thrown from load_plugin_grader. The worker then serves one request at a time over a Unix socket pair, in a private
// length-prefixed encoding (FrameWriter/FrameReader below); both ends are the same binary, so scalars travel in
// native byte order. When a reply does not come (the worker died, or the call overran its limit), the host kills the
// worker's process group and reaps it, marks that sample "cannot score", and forks a fresh worker, which loads the
// library and calls create() again, for the next sample.
#include "reward/plugin_grader.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio_ext.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <limits>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "reward/grpo_grader_plugin.h"

namespace grpo::reward {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::size_t kErrorBufferBytes = 4096;  // create()'s error_buf; the header promises at least 256
// A descriptor claiming to be larger than this is garbage, not a future minor version.
constexpr std::uint32_t kMaxDescriptorBytes = 4096;
// Replies carry at most two texts of GRPO_GRADER_MAX_TEXT_BYTES plus the host's prefix to the reason, and the
// components; anything larger is a corrupted worker.
constexpr std::size_t kMaxReplyBytes = 4 * GRPO_GRADER_MAX_TEXT_BYTES;
constexpr std::size_t kMaxReasonBytes = GRPO_GRADER_MAX_TEXT_BYTES + 4096;
// Requests carry one sample's prompt, completion, reference and metadata; the frame length is a uint32.
constexpr std::size_t kMaxRequestBytes = std::size_t{1} << 30;
// How long a worker that lost its connection gets to finish dying before it is killed, and how long a worker being
// shut down gets to run the plug-in's destroy().
constexpr milliseconds kExitGrace{200};
constexpr milliseconds kShutdownGrace{2000};
// The worker's socket and the file descriptor number it is moved to (everything above it is closed in the worker).
constexpr int kWorkerSocketFd = 3;

std::string errno_text(int error) { return std::error_code(error, std::generic_category()).message(); }

// --------------------------------------------------------------------------------------------------------------------
// The plug-in, loaded and checked: shared by kInProcess (in the trainer) and kSubprocess (in the worker).

struct LoadedPlugin {
  const GrpoGraderPluginV1* descriptor = nullptr;
  void* state = nullptr;
  std::string name;
  std::string description;
  std::uint32_t flags = 0;
};

bool is_valid_plugin_name(std::string_view name) {
  if (name.empty() || name.size() > GRPO_GRADER_MAX_NAME_BYTES) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '-';
  });
}

bool is_valid_score(double score) { return std::isfinite(score) && std::fabs(score) <= GRPO_GRADER_MAX_ABS_SCORE; }

bool is_printable_ascii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

// The entry point's address without casting an object pointer to a function pointer, which ISO C++ leaves
// conditionally-supported; POSIX guarantees the representations match.
GrpoGraderPluginEntry to_entry(void* symbol) {
  GrpoGraderPluginEntry entry = nullptr;
  static_assert(sizeof(entry) == sizeof(symbol));
  std::memcpy(&entry, &symbol, sizeof(entry));
  return entry;
}

// Loads `library` (an absolute path), checks its descriptor and creates its state. Throws std::runtime_error with
// the message load_plugin_grader promises. The library is never unloaded: atexit handlers, thread-local destructors
// or threads the plug-in started may still point into it, and unloading it under them would crash the process at
// exit; a mapping left in the trainer (kInProcess) or in a worker that is about to exit costs nothing.
LoadedPlugin open_plugin(const std::filesystem::path& library, const std::string& config_json) {
  const std::string where = fmt::format("grader plug-in '{}'", library.string());
  dlerror();  // clear any stale error, so the one reported below is ours
  void* handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* error = dlerror();
    throw std::runtime_error(fmt::format(
        "cannot load {}: {}; it must be a shared library built for this machine whose own dependencies can be found "
        "(`ldd {}` lists them)",
        where, error != nullptr ? error : "dlopen failed without a message", library.string()));
  }
  void* symbol = dlsym(handle, GRPO_GRADER_PLUGIN_ENTRY);
  if (symbol == nullptr) {
    throw std::runtime_error(fmt::format(
        "{} does not export {}; is it a grpo grader plug-in? A plug-in defines `GRPO_GRADER_EXPORT const void* "
        "grpo_grader_plugin(uint32_t)` from reward/grpo_grader_plugin.h (see examples/plugin_grader/)",
        where, GRPO_GRADER_PLUGIN_ENTRY));
  }
  const void* raw = to_entry(symbol)(GRPO_GRADER_ABI_VERSION);
  if (raw == nullptr) {
    throw std::runtime_error(fmt::format(
        "{} has no descriptor for grader ABI version {} ({}({}) returned NULL), so it supports only other versions; "
        "rebuild it against this trainer's reward/grpo_grader_plugin.h",
        where, GRPO_GRADER_ABI_VERSION, GRPO_GRADER_PLUGIN_ENTRY, GRPO_GRADER_ABI_VERSION));
  }
  std::uint32_t header[2] = {0, 0};  // abi_version, struct_size: the fields every version starts with
  std::memcpy(header, raw, sizeof(header));
  if (header[0] != GRPO_GRADER_ABI_VERSION) {
    throw std::runtime_error(fmt::format(
        "{} was built for grader ABI version {}, but this trainer speaks version {}; rebuild the plug-in against this "
        "trainer's reward/grpo_grader_plugin.h",
        where, header[0], GRPO_GRADER_ABI_VERSION));
  }
  if (header[1] < sizeof(GrpoGraderPluginV1) || header[1] > kMaxDescriptorBytes) {
    throw std::runtime_error(fmt::format(
        "{} returned a garbage descriptor: its struct_size is {} bytes where GrpoGraderPluginV1 has {}; set "
        "struct_size = sizeof(GrpoGraderPluginV1) and return a pointer to a static descriptor",
        where, header[1], sizeof(GrpoGraderPluginV1)));
  }
  const auto* descriptor = static_cast<const GrpoGraderPluginV1*>(raw);

  LoadedPlugin plugin;
  plugin.descriptor = descriptor;
  plugin.flags = descriptor->flags;
  if (descriptor->name == nullptr) {
    throw std::runtime_error(fmt::format("{} returned a descriptor without a name (name is NULL)", where));
  }
  plugin.name.assign(descriptor->name, strnlen(descriptor->name, GRPO_GRADER_MAX_NAME_BYTES + 1));
  if (!is_valid_plugin_name(plugin.name)) {
    throw std::runtime_error(fmt::format("{} declares the name {}, which is not 1 to {} characters of [A-Za-z0-9_.-]",
                                         where, quote_excerpt(plugin.name), GRPO_GRADER_MAX_NAME_BYTES));
  }
  if (descriptor->description != nullptr) {
    plugin.description.assign(descriptor->description,
                              strnlen(descriptor->description, GRPO_GRADER_MAX_DESCRIPTION_BYTES + 1));
    if (plugin.description.size() > GRPO_GRADER_MAX_DESCRIPTION_BYTES || !is_printable_ascii(plugin.description)) {
      throw std::runtime_error(
          fmt::format("{} ('{}') has a description {} that is not one line of printable ASCII of at most {} bytes",
                      where, plugin.name, quote_excerpt(plugin.description), GRPO_GRADER_MAX_DESCRIPTION_BYTES));
    }
  }
  for (const auto& [missing, function] :
       {std::pair{descriptor->create == nullptr, "create"}, std::pair{descriptor->destroy == nullptr, "destroy"},
        std::pair{descriptor->grade == nullptr, "grade"}}) {
    if (missing) {
      throw std::runtime_error(
          fmt::format("{} ('{}') returned a descriptor whose {} function is NULL", where, plugin.name, function));
    }
  }

  // create() gets the config NUL-terminated, as the header promises, and a zeroed error buffer whose last byte the
  // host re-zeroes afterwards, so a plug-in that fills it without a terminator cannot make us read past it.
  const std::string config = config_json.empty() ? std::string("{}") : config_json;
  std::vector<char> error_buffer(kErrorBufferBytes, '\0');
  try {
    plugin.state = descriptor->create(config.c_str(), config.size(), error_buffer.data(), error_buffer.size());
  } catch (const std::exception& error) {
    throw std::runtime_error(
        fmt::format("{} ('{}') let an exception escape create(): {}", where, plugin.name, error.what()));
  } catch (...) {
    throw std::runtime_error(fmt::format("{} ('{}') let a non-standard exception escape create()", where, plugin.name));
  }
  if (plugin.state == nullptr) {
    error_buffer.back() = '\0';
    std::string message(error_buffer.data());
    if (message.empty()) message = "create() returned NULL without a message";
    throw std::runtime_error(
        fmt::format("{} ('{}') rejected its config {}: {}", where, plugin.name, quote_excerpt(config, 200), message));
  }
  return plugin;
}

// --------------------------------------------------------------------------------------------------------------------
// One grade() call: what the plug-in reports through GrpoGradeOutput's functions, checked as it arrives.

struct OutputCollector {
  std::string extracted;
  std::string reason;
  std::vector<GradeComponent> components;
  std::string violation;  // the first rule of the ABI the plug-in broke; empty when none

  int refuse(std::string what) {
    if (violation.empty()) violation = std::move(what);
    return 1;
  }

  int set_text(const char* function, std::string& target, const char* data, std::size_t size) {
    if (data == nullptr && size != 0) return refuse(fmt::format("{} got a NULL pointer with size {}", function, size));
    if (size > GRPO_GRADER_MAX_TEXT_BYTES) {
      return refuse(fmt::format("{} got {} bytes; the limit is {}", function, size, GRPO_GRADER_MAX_TEXT_BYTES));
    }
    target.assign(data == nullptr ? "" : data, size);
    return 0;
  }

  int add_component(const char* name, std::size_t name_size, double score) {
    if (name == nullptr && name_size != 0) {
      return refuse(fmt::format("add_component got a NULL name with size {}", name_size));
    }
    const std::string_view view(name == nullptr ? "" : name, name_size);
    if (name_size == 0 || name_size > GRPO_GRADER_MAX_COMPONENT_NAME_BYTES) {
      return refuse(fmt::format("add_component got a name of {} bytes; names are 1 to {} bytes", name_size,
                                GRPO_GRADER_MAX_COMPONENT_NAME_BYTES));
    }
    if (!std::all_of(view.begin(), view.end(),
                     [](char c) { return static_cast<unsigned char>(c) >= 0x20 && c != 0x7f; })) {
      return refuse(fmt::format("add_component got the name {} with control characters", quote_excerpt(view)));
    }
    if (!is_valid_score(score)) {
      return refuse(fmt::format("add_component got the score {} for {}; scores are finite and within [-{:g}, {:g}]",
                                score, quote_excerpt(view), GRPO_GRADER_MAX_ABS_SCORE, GRPO_GRADER_MAX_ABS_SCORE));
    }
    if (components.size() >= GRPO_GRADER_MAX_COMPONENTS) {
      return refuse(fmt::format("add_component was called more than {} times", GRPO_GRADER_MAX_COMPONENTS));
    }
    if (std::any_of(components.begin(), components.end(), [&](const GradeComponent& c) { return c.name == view; })) {
      return refuse(fmt::format("add_component got the name {} twice", quote_excerpt(view)));
    }
    components.push_back({.name = std::string(view), .score = score});
    return 0;
  }
};

// The functions a GrpoGradeOutput points to. C linkage because the plug-in calls them through C function pointers;
// they must not throw into it, so allocation failures become refusals.
extern "C" {
static int grpo_plugin_output_set_extracted(void* host, const char* data, size_t size) {
  if (host == nullptr) return 1;
  auto& collector = *static_cast<OutputCollector*>(host);
  try {
    return collector.set_text("set_extracted", collector.extracted, data, size);
  } catch (...) {
    return 1;
  }
}

static int grpo_plugin_output_set_reason(void* host, const char* data, size_t size) {
  if (host == nullptr) return 1;
  auto& collector = *static_cast<OutputCollector*>(host);
  try {
    return collector.set_text("set_reason", collector.reason, data, size);
  } catch (...) {
    return 1;
  }
}

static int grpo_plugin_output_add_component(void* host, const char* name, size_t name_size, double score) {
  if (host == nullptr) return 1;
  try {
    return static_cast<OutputCollector*>(host)->add_component(name, name_size, score);
  } catch (...) {
    return 1;
  }
}
}  // extern "C"

GradeResult cannot_score(std::string reason) { return {.scorable = false, .reason = std::move(reason)}; }

// Never NULL, as the header promises, even for an empty string_view.
const char* data_or_empty(std::string_view text) { return text.data() == nullptr ? "" : text.data(); }

// Calls the plug-in's grade() on one sample and holds its result to the contract.
GradeResult call_plugin(const LoadedPlugin& plugin, const GradeInput& input, std::int64_t time_limit_ms) {
  GrpoGradeInput abi_input{};
  abi_input.struct_size = sizeof(GrpoGradeInput);
  abi_input.prompt = data_or_empty(input.prompt);
  abi_input.prompt_size = input.prompt.size();
  abi_input.completion = data_or_empty(input.completion);
  abi_input.completion_size = input.completion.size();
  abi_input.reference = data_or_empty(input.reference);
  abi_input.reference_size = input.reference.size();
  abi_input.metadata = data_or_empty(input.metadata);
  abi_input.metadata_size = input.metadata.size();
  abi_input.time_limit_ms = time_limit_ms;

  OutputCollector collector;
  GrpoGradeOutput output{};
  output.struct_size = sizeof(GrpoGradeOutput);
  output.score = std::numeric_limits<double>::quiet_NaN();
  output.host = &collector;
  output.set_extracted = grpo_plugin_output_set_extracted;
  output.set_reason = grpo_plugin_output_set_reason;
  output.add_component = grpo_plugin_output_add_component;

  int status = GRPO_GRADE_ERROR;
  try {
    status = plugin.descriptor->grade(plugin.state, &abi_input, &output);
  } catch (const std::exception& error) {
    return cannot_score(fmt::format("plug-in '{}' let an exception escape grade(): {}", plugin.name, error.what()));
  } catch (...) {
    return cannot_score(fmt::format("plug-in '{}' let a non-standard exception escape grade()", plugin.name));
  }

  if (!collector.violation.empty()) {
    return cannot_score(fmt::format("plug-in '{}' broke the grader ABI: {}", plugin.name, collector.violation));
  }
  switch (status) {
    case GRPO_GRADE_OK: {
      const double score = output.score;
      if (!is_valid_score(score)) {
        return cannot_score(fmt::format(
            "plug-in '{}' returned the score {}; scores must be finite and within [-{:g}, {:g}]{}", plugin.name, score,
            GRPO_GRADER_MAX_ABS_SCORE, GRPO_GRADER_MAX_ABS_SCORE,
            std::isnan(score) ? " (NaN is also what a GRPO_GRADE_OK without setting output->score leaves)" : ""));
      }
      return {.score = score,
              .extracted = std::move(collector.extracted),
              .reason = std::move(collector.reason),
              .components = std::move(collector.components)};
    }
    case GRPO_GRADE_CANNOT_SCORE: {
      GradeResult result = cannot_score(fmt::format("plug-in '{}' cannot score: {}", plugin.name,
                                                    collector.reason.empty() ? "(no reason given)" : collector.reason));
      result.extracted = std::move(collector.extracted);
      return result;
    }
    case GRPO_GRADE_ERROR:
      return cannot_score(fmt::format("plug-in '{}' failed: {}", plugin.name,
                                      collector.reason.empty() ? "(no reason given)" : collector.reason));
    default:
      return cannot_score(fmt::format(
          "plug-in '{}' returned the unknown status {}; grade() returns GRPO_GRADE_OK (0), GRPO_GRADE_CANNOT_SCORE "
          "(1) or GRPO_GRADE_ERROR (2)",
          plugin.name, status));
  }
}

// The limit of one call: call_timeout, or less when the sample's deadline comes first.
struct CallLimit {
  Clock::time_point deadline;
  milliseconds length;
  bool from_sample_deadline;
};

CallLimit call_limit(const GradeInput& input, milliseconds call_timeout, Clock::time_point now) {
  const Clock::time_point by_timeout = now + call_timeout;
  if (input.deadline < by_timeout) {
    return {input.deadline, std::chrono::duration_cast<milliseconds>(input.deadline - now), true};
  }
  return {by_timeout, call_timeout, false};
}

// --------------------------------------------------------------------------------------------------------------------
// kInProcess.

class InProcessPluginGrader final : public Grader {
 public:
  InProcessPluginGrader(LoadedPlugin plugin, milliseconds call_timeout)
      : plugin_(std::move(plugin)), call_timeout_(call_timeout) {}
  ~InProcessPluginGrader() override { plugin_.descriptor->destroy(plugin_.state); }
  InProcessPluginGrader(const InProcessPluginGrader&) = delete;
  InProcessPluginGrader& operator=(const InProcessPluginGrader&) = delete;

  std::string_view name() const override { return plugin_.name; }

  GradeResult grade(const GradeInput& input) const override {
    const Clock::time_point now = Clock::now();
    if (input.deadline <= now) {
      return cannot_score(fmt::format("the sample's deadline passed before plug-in '{}' was called", plugin_.name));
    }
    const CallLimit limit = call_limit(input, call_timeout_, now);
    if ((plugin_.flags & GRPO_GRADER_FLAG_THREAD_SAFE) != 0) return call_plugin(plugin_, input, limit.length.count());
    const std::lock_guard lock(mutex_);
    return call_plugin(plugin_, input, limit.length.count());
  }

 private:
  LoadedPlugin plugin_;
  milliseconds call_timeout_;
  mutable std::mutex mutex_;  // serializes grade() unless the plug-in declares GRPO_GRADER_FLAG_THREAD_SAFE
};

// --------------------------------------------------------------------------------------------------------------------
// The worker protocol. Every message is a frame: a uint32 payload length, then the payload, which starts with a tag.
//   worker -> host, once, first:  'R' name, description, u32 flags    (loaded and created; ready)
//                                 'E' message                         (load failed; the worker exits)
//   host -> worker, per sample:   'G' i64 time_limit_ms, prompt, completion, reference, metadata
//   worker -> host, per request:  'A' u8 scorable, f64 score, extracted, reason, u32 n, n x (name, f64 score)
// Strings are a uint32 length and the bytes. The host closes its end to ask the worker to destroy() and exit.

constexpr char kTagReady = 'R';
constexpr char kTagLoadError = 'E';
constexpr char kTagGrade = 'G';
constexpr char kTagAnswer = 'A';

class FrameWriter {
 public:
  explicit FrameWriter(char tag) : bytes_(sizeof(std::uint32_t), '\0') { bytes_ += tag; }

  template <typename T>
  void put(T value) {
    static_assert(std::is_arithmetic_v<T>);
    char raw[sizeof(T)];
    std::memcpy(raw, &value, sizeof(T));
    bytes_.append(raw, sizeof(T));
  }
  void put_string(std::string_view text) {
    put(static_cast<std::uint32_t>(text.size()));
    bytes_.append(text);
  }
  std::size_t payload_size() const { return bytes_.size() - sizeof(std::uint32_t); }
  // The frame, length prefix filled in.
  std::string_view finish() {
    const auto length = static_cast<std::uint32_t>(payload_size());
    std::memcpy(bytes_.data(), &length, sizeof(length));
    return bytes_;
  }

 private:
  std::string bytes_;
};

// Reads a payload written by FrameWriter; any read past the end or over a limit clears ok() and returns zeros, so a
// corrupted frame is detected once, at the end.
class FrameReader {
 public:
  explicit FrameReader(std::string_view payload) : rest_(payload) {}

  template <typename T>
  T get() {
    static_assert(std::is_arithmetic_v<T>);
    T value{};
    if (rest_.size() < sizeof(T)) {
      ok_ = false;
      return value;
    }
    std::memcpy(&value, rest_.data(), sizeof(T));
    rest_.remove_prefix(sizeof(T));
    return value;
  }
  std::string_view get_string(std::size_t max_size) {
    const auto size = get<std::uint32_t>();
    if (!ok_ || size > max_size || size > rest_.size()) {
      ok_ = false;
      return {};
    }
    const std::string_view text = rest_.substr(0, size);
    rest_.remove_prefix(size);
    return text;
  }
  bool ok_and_done() const { return ok_ && rest_.empty(); }

 private:
  std::string_view rest_;
  bool ok_ = true;
};

// ---- The worker's side: blocking I/O on its socket.

bool write_all_blocking(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t written = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(written));
  }
  return true;
}

bool read_exact_blocking(int fd, char* out, std::size_t size) {
  while (size > 0) {
    const ssize_t got = ::recv(fd, out, size, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    out += got;
    size -= static_cast<std::size_t>(got);
  }
  return true;
}

// False at end of stream (the host closed its end) or on a malformed frame.
bool read_frame_blocking(int fd, std::string& payload) {
  std::uint32_t length = 0;
  if (!read_exact_blocking(fd, reinterpret_cast<char*>(&length), sizeof(length))) return false;
  if (length == 0 || length > kMaxRequestBytes) return false;
  payload.resize(length);
  return read_exact_blocking(fd, payload.data(), payload.size());
}

struct WorkerLaunch {
  std::filesystem::path library;  // absolute
  std::string config_json;
};

// Exit codes of a worker that ends on its own; a plug-in that calls exit() may use any of these too, so the host
// describes them only as "exited with status N".
constexpr int kWorkerExitDone = 0;
constexpr int kWorkerExitOrphaned = 70;
constexpr int kWorkerExitBadRequest = 71;
constexpr int kWorkerExitInternal = 72;

// Loads the plug-in, says so, and grades requests until the host closes the socket.
int serve_requests(int fd, const WorkerLaunch& launch) {
  LoadedPlugin plugin;
  try {
    plugin = open_plugin(launch.library, launch.config_json);
  } catch (const std::exception& error) {
    FrameWriter frame(kTagLoadError);
    frame.put_string(std::string_view(error.what()).substr(0, kMaxReasonBytes));
    write_all_blocking(fd, frame.finish());
    return kWorkerExitDone;
  }
  {
    FrameWriter frame(kTagReady);
    frame.put_string(plugin.name);
    frame.put_string(plugin.description);
    frame.put(plugin.flags);
    if (!write_all_blocking(fd, frame.finish())) {
      plugin.descriptor->destroy(plugin.state);
      return kWorkerExitDone;
    }
  }
  int exit_code = kWorkerExitDone;
  std::string request;
  while (read_frame_blocking(fd, request)) {
    FrameReader reader(request);
    const auto tag = reader.get<char>();
    const auto time_limit_ms = reader.get<std::int64_t>();
    const GradeInput input = {.prompt = reader.get_string(kMaxRequestBytes),
                              .completion = reader.get_string(kMaxRequestBytes),
                              .reference = reader.get_string(kMaxRequestBytes),
                              .metadata = reader.get_string(kMaxRequestBytes)};
    if (tag != kTagGrade || !reader.ok_and_done()) {
      exit_code = kWorkerExitBadRequest;
      break;
    }
    const GradeResult result = call_plugin(plugin, input, time_limit_ms);
    FrameWriter frame(kTagAnswer);
    frame.put(static_cast<std::uint8_t>(result.scorable ? 1 : 0));
    frame.put(result.score);
    frame.put_string(result.extracted);
    frame.put_string(result.reason);
    frame.put(static_cast<std::uint32_t>(result.components.size()));
    for (const GradeComponent& component : result.components) {
      frame.put_string(component.name);
      frame.put(component.score);
    }
    if (!write_all_blocking(fd, frame.finish())) break;
  }
  plugin.descriptor->destroy(plugin.state);
  return exit_code;
}

// Resets what the worker inherited from the trainer that would make it behave unlike a fresh process.
void prepare_worker_process(int socket_fd) {
  // Signals: default dispositions (so a crash is a crash, not whatever handler the trainer installed) and none
  // blocked. This is the worker's copy; the trainer's own dispositions are untouched.
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  sigemptyset(&default_action.sa_mask);
  for (int signal_number = 1; signal_number < NSIG; ++signal_number) {
    if (signal_number == SIGKILL || signal_number == SIGSTOP) continue;
    sigaction(signal_number, &default_action, nullptr);  // fails harmlessly for numbers glibc reserves
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);

  // Output the trainer had buffered but not yet written belongs to the trainer; without this a plug-in that prints
  // and flushes would write it a second time.
  __fpurge(stdout);
  __fpurge(stderr);

  // Only stdin (now /dev/null), stdout, stderr and the socket stay open: the worker must not hold the trainer's files,
  // nor other workers' sockets (which would keep those workers from seeing their host go away).
  if (socket_fd != kWorkerSocketFd) {
    if (::dup2(socket_fd, kWorkerSocketFd) < 0) ::_exit(kWorkerExitInternal);
    if (socket_fd > kWorkerSocketFd) ::close(socket_fd);
  }
#ifdef SYS_close_range
  const bool closed = ::syscall(SYS_close_range, kWorkerSocketFd + 1, ~0u, 0) == 0;
#else
  const bool closed = false;
#endif
  if (!closed) {
    for (int fd = kWorkerSocketFd + 1; fd < 65536; ++fd) ::close(fd);
  }
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd >= 0 && null_fd != STDIN_FILENO) {
    ::dup2(null_fd, STDIN_FILENO);
    ::close(null_fd);
  }
}

[[noreturn]] void run_worker(int socket_fd, pid_t host_pid, const WorkerLaunch& launch) {
  // Die with the trainer: PR_SET_PDEATHSIG fires when the thread that forked us exits (see ForkThread); checking the
  // parent afterwards closes the window where the trainer died before the prctl.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != host_pid) ::_exit(kWorkerExitOrphaned);
  // A process group of its own: the terminal's Ctrl-C goes to the trainer, which decides, and killing the group also
  // ends any processes the plug-in started.
  ::setpgid(0, 0);
  ::prctl(PR_SET_NAME, "grpo-grader");
  prepare_worker_process(socket_fd);
  int exit_code = kWorkerExitInternal;
  try {
    exit_code = serve_requests(kWorkerSocketFd, launch);
  } catch (...) {
    exit_code = kWorkerExitInternal;
  }
  // _exit, not exit: the trainer's atexit handlers and static destructors are the trainer's, not the worker's.
  ::_exit(exit_code);
}

// ---- The host's side.

struct WorkerProcess {
  pid_t pid = -1;
  int fd = -1;  // the host's end of the socket, non-blocking
};

WorkerProcess fork_worker(const WorkerLaunch& launch) {
  int fds[2] = {-1, -1};
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    throw std::runtime_error(fmt::format("socketpair failed: {}", errno_text(errno)));
  }
  const pid_t host_pid = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int error = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    throw std::runtime_error(fmt::format("fork failed: {}", errno_text(error)));
  }
  if (pid == 0) {
    ::close(fds[0]);
    run_worker(fds[1], host_pid, launch);
  }
  ::close(fds[1]);
  ::setpgid(pid, pid);  // also done by the child; whichever runs first makes the group exist before we signal it
  ::fcntl(fds[0], F_SETFL, ::fcntl(fds[0], F_GETFL) | O_NONBLOCK);
  return {pid, fds[0]};
}

// Forks workers from a thread that lives exactly as long as the grader. PR_SET_PDEATHSIG fires when the *thread* that
// forked the worker exits, not the process: forking on the caller's thread, perhaps a short-lived pool thread, would
// kill an idle worker whenever that thread ended.
class ForkThread {
 public:
  ForkThread() : thread_([this] { loop(); }) {}
  ~ForkThread() {
    {
      const std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  ForkThread(const ForkThread&) = delete;
  ForkThread& operator=(const ForkThread&) = delete;

  // One caller at a time (the grader's mutex sees to that).
  WorkerProcess fork_worker_on_thread(const WorkerLaunch& launch) {
    std::unique_lock lock(mutex_);
    launch_ = &launch;
    done_ = false;
    wake_.notify_all();
    finished_.wait(lock, [this] { return done_; });
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
    return result_;
  }

 private:
  void loop() {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return stopping_ || launch_ != nullptr; });
      if (stopping_) return;
      const WorkerLaunch* launch = std::exchange(launch_, nullptr);
      lock.unlock();
      WorkerProcess result;
      std::exception_ptr error;
      try {
        result = fork_worker(*launch);
      } catch (...) {
        error = std::current_exception();
      }
      lock.lock();
      result_ = result;
      error_ = error;
      done_ = true;
      finished_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable finished_;
  const WorkerLaunch* launch_ = nullptr;
  bool done_ = false;
  bool stopping_ = false;
  WorkerProcess result_;
  std::exception_ptr error_;
  std::thread thread_;  // last: starts after the members it uses exist
};

enum class Io { kOk, kTimeout, kClosed, kTooLarge };

// Waits until `fd` is ready for `events` or `deadline` passes (false). Errors and hang-ups count as ready: the
// following send or recv reports them.
bool wait_ready(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    int timeout_ms = -1;
    if (deadline != Clock::time_point::max()) {
      const Clock::time_point now = Clock::now();
      if (now >= deadline) return false;
      const auto left = std::chrono::ceil<milliseconds>(deadline - now).count();
      timeout_ms = static_cast<int>(std::min<std::int64_t>(left, INT_MAX));
    }
    pollfd entry{.fd = fd, .events = events, .revents = 0};
    const int ready = ::poll(&entry, 1, timeout_ms);
    if (ready > 0) return true;
    if (ready < 0 && errno != EINTR) return true;
  }
}

Io send_all(int fd, std::string_view bytes, Clock::time_point deadline) {
  while (!bytes.empty()) {
    const ssize_t written = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (written > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(written));
    } else if (written < 0 && errno == EINTR) {
      continue;
    } else if (written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait_ready(fd, POLLOUT, deadline)) return Io::kTimeout;
    } else {
      return Io::kClosed;  // EPIPE, ECONNRESET: the worker is gone
    }
  }
  return Io::kOk;
}

Io recv_exact(int fd, char* out, std::size_t size, Clock::time_point deadline) {
  while (size > 0) {
    const ssize_t got = ::recv(fd, out, size, 0);
    if (got > 0) {
      out += got;
      size -= static_cast<std::size_t>(got);
    } else if (got < 0 && errno == EINTR) {
      continue;
    } else if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait_ready(fd, POLLIN, deadline)) return Io::kTimeout;
    } else {
      return Io::kClosed;
    }
  }
  return Io::kOk;
}

Io recv_frame(int fd, std::string& payload, Clock::time_point deadline) {
  std::uint32_t length = 0;
  const Io io = recv_exact(fd, reinterpret_cast<char*>(&length), sizeof(length), deadline);
  if (io != Io::kOk) return io;
  if (length == 0 || length > kMaxReplyBytes) return Io::kTooLarge;
  payload.resize(length);
  return recv_exact(fd, payload.data(), payload.size(), deadline);
}

// "SIGSEGV" for the signals a crashing or killed plug-in dies of; glibc's sigabbrev_np is not everywhere.
std::string signal_name(int signal_number) {
  static constexpr std::pair<int, const char*> kNames[] = {
      {SIGSEGV, "SIGSEGV"}, {SIGBUS, "SIGBUS"},   {SIGFPE, "SIGFPE"},   {SIGILL, "SIGILL"},   {SIGABRT, "SIGABRT"},
      {SIGTRAP, "SIGTRAP"}, {SIGSYS, "SIGSYS"},   {SIGKILL, "SIGKILL"}, {SIGTERM, "SIGTERM"}, {SIGINT, "SIGINT"},
      {SIGQUIT, "SIGQUIT"}, {SIGHUP, "SIGHUP"},   {SIGPIPE, "SIGPIPE"}, {SIGALRM, "SIGALRM"}, {SIGXCPU, "SIGXCPU"},
      {SIGXFSZ, "SIGXFSZ"}, {SIGUSR1, "SIGUSR1"}, {SIGUSR2, "SIGUSR2"},
  };
  for (const auto& [number, name] : kNames) {
    if (number == signal_number) return name;
  }
  return fmt::format("signal {}", signal_number);
}

// How a reaped worker ended, for reasons: "crashed with SIGSEGV", "exited with status 3".
std::string describe_exit(int wait_status) {
  if (WIFSIGNALED(wait_status)) {
    const int signal_number = WTERMSIG(wait_status);
    std::string text = fmt::format("crashed with {}", signal_name(signal_number));
    if (signal_number == SIGKILL) text += " (killed from outside, e.g. by the out-of-memory killer)";
    return text;
  }
  if (WIFEXITED(wait_status)) return fmt::format("exited with status {}", WEXITSTATUS(wait_status));
  return fmt::format("ended with wait status {}", wait_status);
}

// waitpid without WNOHANG, retrying on EINTR.
int reap(pid_t pid) {
  int wait_status = 0;
  while (::waitpid(pid, &wait_status, 0) < 0 && errno == EINTR) {
  }
  return wait_status;
}

// The worker's wait status if it exits by `deadline`; polls, because the worker may have closed the socket without
// exiting, and then blocking in waitpid would hang the trainer.
std::optional<int> wait_for_exit(pid_t pid, Clock::time_point deadline) {
  auto pause = std::chrono::microseconds(50);
  for (;;) {
    int wait_status = 0;
    const pid_t reaped = ::waitpid(pid, &wait_status, WNOHANG);
    if (reaped == pid) return wait_status;
    if (reaped < 0 && errno != EINTR) return 0;  // not our child any more (cannot happen); nothing left to wait for
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(pause);
    pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(5));
  }
}

// Kills the worker's process group (the worker and whatever it started) and reaps the worker.
int kill_and_reap(pid_t pid) {
  ::kill(-pid, SIGKILL);
  ::kill(pid, SIGKILL);  // in case the group was never made
  return reap(pid);
}

class SubprocessPluginGrader final : public Grader {
 public:
  // Starts the first worker; throws std::runtime_error when the plug-in does not load.
  SubprocessPluginGrader(WorkerLaunch launch, milliseconds call_timeout)
      : launch_(std::move(launch)), call_timeout_(call_timeout) {
    const std::lock_guard lock(mutex_);
    if (std::string problem = start_worker_locked(Clock::now() + call_timeout_, call_timeout_); !problem.empty()) {
      throw std::runtime_error(problem);
    }
  }

  ~SubprocessPluginGrader() override {
    const std::lock_guard lock(mutex_);
    if (worker_.pid < 0) return;
    // Closing our end is the request to destroy() and exit; a worker that does not finish in time is killed.
    ::close(std::exchange(worker_.fd, -1));
    if (!wait_for_exit(worker_.pid, Clock::now() + std::min(call_timeout_, kShutdownGrace))) kill_and_reap(worker_.pid);
    worker_.pid = -1;
  }

  SubprocessPluginGrader(const SubprocessPluginGrader&) = delete;
  SubprocessPluginGrader& operator=(const SubprocessPluginGrader&) = delete;

  std::string_view name() const override { return name_; }

  GradeResult grade(const GradeInput& input) const override {
    const std::lock_guard lock(mutex_);
    return grade_locked(input);
  }

  // One lock for the whole batch, so that another thread's samples do not interleave with it; samples go one at a
  // time, and one that crashes or hangs the worker costs only itself: the next sample gets a fresh worker.
  std::vector<GradeResult> grade_batch(std::span<const GradeInput> inputs) const override {
    const std::lock_guard lock(mutex_);
    std::vector<GradeResult> results;
    results.reserve(inputs.size());
    for (const GradeInput& input : inputs) results.push_back(grade_locked(input));
    return results;
  }

 private:
  // Forks a worker and reads its first message by `deadline` (`length` after now, for the reason). Returns "" when
  // it is ready, else what went wrong (the worker is then reaped). The first start records the plug-in's name; later
  // ones insist on the same plug-in.
  std::string start_worker_locked(Clock::time_point deadline, milliseconds length) const {
    const std::string where = name_.empty() ? fmt::format("grader plug-in '{}'", launch_.library.string())
                                            : fmt::format("plug-in '{}'", name_);
    try {
      worker_ = fork_thread_.fork_worker_on_thread(launch_);
    } catch (const std::exception& error) {
      return fmt::format("cannot start a worker process for {}: {}", where, error.what());
    }
    std::string payload;
    switch (recv_frame(worker_.fd, payload, deadline)) {
      case Io::kOk:
        break;
      case Io::kTimeout:
        kill_worker_locked();
        return fmt::format(
            "{} did not finish loading within {} ms (in a library constructor or create()); it "
            "was killed",
            where, length.count());
      case Io::kClosed:
        return fmt::format("{} {} while loading (in a library constructor or create())", where,
                           reap_closed_worker_locked());
      case Io::kTooLarge:
        kill_worker_locked();
        return fmt::format("{} sent a malformed first message", where);
    }
    FrameReader reader(payload);
    const auto tag = reader.get<char>();
    if (tag == kTagLoadError) {
      std::string message(reader.get_string(kMaxReasonBytes));
      reap_closed_worker_locked();
      if (!reader.ok_and_done()) return fmt::format("{} sent a malformed first message", where);
      return message;
    }
    const std::string_view name = reader.get_string(GRPO_GRADER_MAX_NAME_BYTES);
    reader.get_string(GRPO_GRADER_MAX_DESCRIPTION_BYTES);
    reader.get<std::uint32_t>();
    if (tag != kTagReady || !reader.ok_and_done()) {
      kill_worker_locked();
      return fmt::format("{} sent a malformed first message", where);
    }
    if (name_.empty()) {
      name_ = name;
    } else if (name != name_) {
      kill_worker_locked();
      return fmt::format("{} now declares the name '{}' (was the library at '{}' replaced during the run?)", where,
                         name, launch_.library.string());
    }
    return "";
  }

  // Kills and reaps the worker, which is alive but of no further use (overran its limit, sent garbage).
  void kill_worker_locked() const {
    ::close(std::exchange(worker_.fd, -1));
    kill_and_reap(std::exchange(worker_.pid, -1));
  }

  // Reaps a worker whose connection closed (it crashed, exited, or is exiting after a load error) and says how it
  // ended. It gets kExitGrace to finish dying; one that closed the socket but lives on is killed.
  std::string reap_closed_worker_locked() const {
    ::close(std::exchange(worker_.fd, -1));
    const pid_t pid = std::exchange(worker_.pid, -1);
    if (const std::optional<int> wait_status = wait_for_exit(pid, Clock::now() + kExitGrace)) {
      return describe_exit(*wait_status);
    }
    kill_and_reap(pid);
    return "closed its connection without exiting (its worker was killed)";
  }

  GradeResult grade_locked(const GradeInput& input) const {
    const Clock::time_point now = Clock::now();
    if (input.deadline <= now) {
      return cannot_score(fmt::format("the sample's deadline passed before plug-in '{}' was called", name_));
    }
    const CallLimit limit = call_limit(input, call_timeout_, now);

    // A worker that died while idle (killed from outside) is replaced without costing this sample.
    if (worker_.pid >= 0) {
      int wait_status = 0;
      if (::waitpid(worker_.pid, &wait_status, WNOHANG) == worker_.pid) {
        ::close(std::exchange(worker_.fd, -1));
        worker_.pid = -1;
      }
    }
    if (worker_.pid < 0) {
      if (std::string problem = start_worker_locked(limit.deadline, limit.length); !problem.empty()) {
        return cannot_score(fmt::format("could not start a fresh worker: {}", problem));
      }
    }

    FrameWriter request(kTagGrade);
    request.put(static_cast<std::int64_t>(
        std::max<milliseconds>(std::chrono::duration_cast<milliseconds>(limit.deadline - Clock::now()), {}).count()));
    request.put_string(input.prompt);
    request.put_string(input.completion);
    request.put_string(input.reference);
    request.put_string(input.metadata);
    if (request.payload_size() > kMaxRequestBytes) {
      return cannot_score(fmt::format("the sample is {} bytes, more than the {} that plug-in '{}' can be sent",
                                      request.payload_size(), kMaxRequestBytes, name_));
    }

    std::string payload;
    Io io = send_all(worker_.fd, request.finish(), limit.deadline);
    if (io == Io::kOk) io = recv_frame(worker_.fd, payload, limit.deadline);
    switch (io) {
      case Io::kOk:
        break;
      case Io::kTimeout:
        kill_worker_locked();
        return cannot_score(fmt::format("plug-in '{}' did not answer within {} ms{}; its worker was killed", name_,
                                        limit.length.count(),
                                        limit.from_sample_deadline ? " (the sample's deadline)" : ""));
      case Io::kClosed:
        return cannot_score(fmt::format("plug-in '{}' {} while grading", name_, reap_closed_worker_locked()));
      case Io::kTooLarge:
        kill_worker_locked();
        return cannot_score(
            fmt::format("plug-in '{}' sent a malformed reply (a frame over {} bytes); its worker was killed", name_,
                        kMaxReplyBytes));
    }
    if (std::optional<GradeResult> result = decode_answer(payload)) return *std::move(result);
    kill_worker_locked();
    return cannot_score(fmt::format("plug-in '{}' sent a malformed reply; its worker was killed", name_));
  }

  // The worker checked the plug-in's output already; this checks the frame, which a plug-in that corrupted the
  // worker's memory could have garbled.
  static std::optional<GradeResult> decode_answer(std::string_view payload) {
    FrameReader reader(payload);
    GradeResult result;
    const auto tag = reader.get<char>();
    result.scorable = reader.get<std::uint8_t>() != 0;
    result.score = reader.get<double>();
    result.extracted = reader.get_string(GRPO_GRADER_MAX_TEXT_BYTES);
    result.reason = reader.get_string(kMaxReasonBytes);
    const auto count = reader.get<std::uint32_t>();
    if (count > GRPO_GRADER_MAX_COMPONENTS) return std::nullopt;
    for (std::uint32_t i = 0; i < count; ++i) {
      GradeComponent component;
      component.name = reader.get_string(GRPO_GRADER_MAX_COMPONENT_NAME_BYTES);
      component.score = reader.get<double>();
      result.components.push_back(std::move(component));
    }
    if (tag != kTagAnswer || !reader.ok_and_done()) return std::nullopt;
    if (result.scorable && !is_valid_score(result.score)) return std::nullopt;
    for (const GradeComponent& component : result.components) {
      if (!is_valid_score(component.score)) return std::nullopt;
    }
    return result;
  }

  const WorkerLaunch launch_;
  const milliseconds call_timeout_;
  mutable std::string name_;  // the plug-in's declared name, set by the first start
  mutable std::mutex mutex_;  // one sample in flight at a time: the worker serves requests in order
  mutable WorkerProcess worker_;
  mutable ForkThread fork_thread_;
};

}  // namespace

std::unique_ptr<Grader> load_plugin_grader(const PluginGraderOptions& options) {
  if (options.call_timeout <= milliseconds::zero()) {
    throw std::invalid_argument(fmt::format("grader plug-in '{}': call_timeout must be positive, not {} ms",
                                            options.library.string(), options.call_timeout.count()));
  }
  // An absolute path, so that dlopen never searches the library path for a bare file name and a restarted worker
  // loads the same file even if the trainer changed directory.
  std::error_code error;
  const std::filesystem::path library = std::filesystem::absolute(options.library, error);
  if (options.library.empty() || error) {
    throw std::invalid_argument(fmt::format(
        "grader plug-in path '{}' is not a usable path; set it to the plug-in's .so file", options.library.string()));
  }
  const std::filesystem::file_status status = std::filesystem::status(library, error);
  if (!std::filesystem::exists(status)) {
    throw std::runtime_error(fmt::format(
        "grader plug-in library '{}' does not exist (looked for '{}'); build the plug-in or fix the path in the config",
        options.library.string(), library.string()));
  }
  if (!std::filesystem::is_regular_file(status)) {
    throw std::runtime_error(fmt::format(
        "grader plug-in library '{}' is not a file; the config must name the plug-in's .so file", library.string()));
  }
  if (options.isolation == PluginIsolation::kInProcess) {
    return std::make_unique<InProcessPluginGrader>(open_plugin(library, options.config_json), options.call_timeout);
  }
  return std::make_unique<SubprocessPluginGrader>(WorkerLaunch{library, options.config_json}, options.call_timeout);
}

}  // namespace grpo::reward
