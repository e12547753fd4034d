// Runs one untrusted program (what a policy wrote, or the compiler on it) so that nothing it does reaches the host:
// the code grader's only way to execute anything. Each run gets a fresh empty working directory, a scrubbed
// environment, resource limits, its own process group (and PID namespace where the kernel allows), no network, and an
// unprivileged user when the trainer runs as root. When the run ends, for any reason, every process it started is
// killed and the working directory is removed.
//
// Isolation, strongest available first (SandboxResult::isolation says which were in force):
//  - started as root: new PID, mount, network and IPC namespaces; the program runs as an unprivileged uid/gid of its
//    own (one per concurrent run); /tmp, /var/tmp, /run/lock and /dev/shm are private throwaway tmpfs mounts, the
//    working directory is a private size-capped tmpfs and the rest of the file system is read-only, so nothing is
//    written outside the working directory;
//  - otherwise, where unprivileged user namespaces are allowed: the same namespaces inside a user namespace;
//  - always: PR_SET_NO_NEW_PRIVS, rlimits (CPU, address space, file size, open files, processes, no core dumps) and a
//    seccomp filter that denies creating non-Unix sockets (the network fallback when no network namespace exists) and
//    ptrace.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace grpo::reward {

struct SandboxLimits {
  double cpu_seconds = 2.0;                        // RLIMIT_CPU, rounded up to whole seconds; over it: kCpuTime
  double wall_seconds = 5.0;                       // then the whole process tree is SIGKILLed: kWallTimeout
  std::size_t address_space_bytes = 1ull << 30;    // RLIMIT_AS per process
  std::size_t file_size_bytes = 16ull << 20;       // RLIMIT_FSIZE: largest file the program may write
  std::size_t output_bytes = 8ull << 20;           // stdout + stderr kept; past it the tree is killed: kOutputLimit
  int open_files = 64;                             // RLIMIT_NOFILE
  int processes = 64;                              // RLIMIT_NPROC for the sandbox user (threads count)
};

// A file placed in the working directory before the run. `name` is a plain relative file name (no '/', not "." or
// ".."); anything else is refused with kSandboxError.
struct SandboxFile {
  std::string name = {};
  std::string content = {};
  bool executable = false;
};

struct SandboxRequest {
  // argv[0] is an absolute path (e.g. "/usr/bin/python3") or a name looked up on the sandbox's PATH
  // (/usr/local/bin:/usr/bin:/bin).
  std::vector<std::string> argv = {};
  std::string stdin_data = {};
  std::vector<SandboxFile> files = {};
  // The program's entire environment as "NAME=value"; nothing of the trainer's environment is inherited. PATH, HOME
  // (the working directory), LANG=C.UTF-8 and TMPDIR are set unless given here.
  std::vector<std::string> env = {};
  SandboxLimits limits = {};
  // Regular files to read back from the working directory after the run (e.g. a compiled binary), up to
  // limits.file_size_bytes each; missing ones are simply absent from SandboxResult::collected.
  std::vector<std::string> collect = {};
};

enum class SandboxStatus {
  kExited,        // exited on its own; see exit_code
  kSignaled,      // killed by a signal it raised or received (e.g. SIGSEGV, SIGABRT); see signal
  kCpuTime,       // over limits.cpu_seconds (SIGXCPU / SIGKILL from RLIMIT_CPU)
  kWallTimeout,   // still running at limits.wall_seconds
  kOutputLimit,   // wrote more than limits.output_bytes to stdout + stderr, or hit RLIMIT_FSIZE (SIGXFSZ)
  kSandboxError,  // the sandbox itself failed (fork, exec of a missing program, bad file name...); see error
};

std::string_view sandbox_status_name(SandboxStatus status);  // "exited", "signaled", "cpu_time", ...

struct SandboxResult {
  SandboxStatus status = SandboxStatus::kSandboxError;
  int exit_code = -1;     // for kExited
  int signal = 0;         // for kSignaled (and the signal that ended a limit)
  std::string stdout_data;
  std::string stderr_data;
  bool output_truncated = false;   // stdout_data/stderr_data were cut at limits.output_bytes
  double wall_seconds = 0.0;
  double cpu_seconds = 0.0;        // user + system of the whole tree that was waited for
  // Peak resident size of the largest process waited for (ru_maxrss). Linux also charges a process with the resident
  // size of the address space its execve replaced, i.e. the trainer's at spawn time: only values above that say
  // something about the program.
  std::size_t max_rss_bytes = 0;
  std::string error;               // for kSandboxError: what failed, e.g. "exec /usr/bin/nope: No such file..."
  std::vector<SandboxFile> collected;
  // What was in force, e.g. "namespaces: pid mount net ipc; uid 61000; tmpfs /tmp /var/tmp /run/lock /dev/shm;
  // workdir tmpfs 64 MiB; read-only /; private /proc; oom_score_adj 1000; seccomp; rlimits".
  std::string isolation;
};

// Runs the request to completion (or to a limit) and cleans up. Thread-safe: independent runs may proceed in
// parallel from several threads (the code grader's slots). Never throws for anything the program does; only
// std::bad_alloc escapes.
SandboxResult run_sandboxed(const SandboxRequest& request);

}  // namespace grpo::reward
