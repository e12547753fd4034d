// The process sandbox: runs one untrusted program with its own namespaces, an unprivileged uid, rlimits and a seccomp
// filter, and leaves nothing of it behind.
//
// Process layout (root, the path that matters):
//
//   trainer thread (run_sandboxed) --clone(NEWPID|NEWNS|NEWNET|NEWIPC, CLONE_PIDFD)--> init (pid 1, root)
//   init --clone(CLONE_VM|CLONE_VFORK)--> program (pid 2, sandbox uid, rlimits, seccomp) --execve--> the program
//
// The init sets up the mounts, starts the program, reaps every orphan and reports the program's wait status through a
// pipe. When the program ends, init exits and the kernel kills everything else in the PID namespace; when a limit is
// hit the trainer SIGKILLs init, with the same effect. The program is pid 2, not 1, so signals it sends itself behave
// normally (abort() is SIGABRT). Without namespaces (a container without CAP_SYS_ADMIN, no user namespaces) init stays
// in the host PID namespace as a child subreaper and kills the program's descendants one by one instead.
//
// The trainer is multithreaded, so everything the children need (argv, envp, paths, the seccomp program, stacks) is
// prepared before clone, and the children use only thin system-call wrappers until execve: no allocation, no locks,
// and raw syscall() for set*id (glibc's wrappers signal the trainer's other threads, which do not exist in the child).
// Setup failures travel back as fixed-size records through a close-on-exec pipe.
//
// Init is a copy of the trainer (fork semantics; the program is then started with CLONE_VM | CLONE_VFORK from it, so
// only one address-space copy is made per run, as for a plain fork + exec). Sharing the trainer's memory instead would
// make the copy free but let credential changes and oom_score_adj in the children act on the trainer itself.
#include "reward/sandbox.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/mount.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <fmt/format.h>

#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

namespace grpo::reward {
namespace {

using Clock = std::chrono::steady_clock;

static_assert(std::endian::native == std::endian::little, "the seccomp filter reads the low half of 64-bit arguments");

// ---------------------------------------------------------------------------------------------------------------------
// Constants

constexpr const char* kDefaultPath = "/usr/local/bin:/usr/bin:/bin";

// Uids for the program when the trainer is root: one per concurrent run (also across processes), so that RLIMIT_NPROC,
// which the kernel counts per uid, limits each run on its own and a fork bomb in one run never starves another.
// 61000-61127 is free on Debian (system users end at 999, nobody is 65534) and below systemd's dynamic users (61184+).
constexpr uid_t kSandboxUidBase = 61000;
constexpr int kSandboxUidSlots = 128;
constexpr uid_t kNobodyUid = 65534;  // used for every run where the uid range above is not mapped (a user namespace)

// Directories every program may write to; inside the sandbox they are throwaway tmpfs mounts.
constexpr std::array<const char*, 4> kScratchDirs = {"/tmp", "/var/tmp", "/run/lock", "/dev/shm"};
constexpr const char* kScratchTmpfsOptions = "size=64m,nr_inodes=16384,mode=1777";

// The working directory is a private tmpfs when the trainer is root: a program cannot fill the trainer's disk, and the
// files vanish with the last reference. It holds the request's files plus this much, at least kWorkdirMinBytes.
constexpr std::size_t kWorkdirFileSizeMultiple = 4;
constexpr std::size_t kWorkdirMinBytes = 64ull << 20;
constexpr int kWorkdirInodes = 8192;

constexpr std::size_t kProgramStackBytes = 64 * 1024;  // the CLONE_VM child's stack, until execve
constexpr std::size_t kReadChunkBytes = 64 * 1024;
constexpr rlim_t kStackLimitBytes = 8ull << 20;
constexpr auto kStopGrace = std::chrono::seconds(2);  // process-group mode: SIGTERM to init, then SIGKILL

// File descriptors inside init (and the program until execve): 0-2 stdio, then these.
constexpr int kReportFd = 3;
constexpr int kWorkdirTreeFd = 4;
constexpr int kHighFdFloor = 16;  // where fds are parked while 0-4 are arranged
constexpr int kSetupFailedExit = 127;
constexpr int kMaxKillRounds = 5000;  // process-group mode: 1 ms apart

// ---------------------------------------------------------------------------------------------------------------------
// What the children report back.

enum class IsolationMode { kRootNamespaces, kUserNamespaces, kProcessGroup };

enum class SetupStep : std::int32_t {
  kArrangeFds,
  kSetgroupsDeny,
  kUidMap,
  kGidMap,
  kCloneWorkdir,
  kMountPrivate,
  kMountScratch,
  kMoveWorkdir,
  kChdir,
  kSpawn,
  kSetsid,
  kSetrlimit,
  kSetgroups,
  kSetresgid,
  kSetresuid,
  kNoNewPrivs,
  kSeccomp,
  kExec,
};

// Isolation features; the namespace bits come from the mode, the others from init once it has set them up.
enum IsolationBit : std::int64_t {
  kPrivateProcBit = 1 << 0,
  kReadOnlyRootBit = 1 << 1,
  kWorkdirTmpfsBit = 1 << 2,
  kOomScoreBit = 1 << 3,
  kScratchTmpfsFirstBit = 1 << 4,  // one bit per kScratchDirs entry
};

struct ChildReport {
  enum class Kind : std::int32_t { kSetupFailed = 1, kIsolation, kProgramEnded };
  Kind kind = Kind::kSetupFailed;
  SetupStep step = SetupStep::kArrangeFds;
  std::int32_t detail = 0;      // kSetupFailed: which scratch dir / rlimit
  std::int32_t error = 0;       // kSetupFailed: errno
  std::int64_t value = 0;       // kIsolation: IsolationBit set; kProgramEnded: the wait status
  std::int64_t cpu_micros = 0;  // kProgramEnded: user + system time of the program and the children it waited for
};

struct RlimitSetting {
  int resource = 0;
  rlim_t soft = 0;
  rlim_t hard = 0;
};

constexpr std::array<const char*, 9> kRlimitNames = {"RLIMIT_CPU",    "RLIMIT_AS",     "RLIMIT_FSIZE",
                                                     "RLIMIT_NOFILE", "RLIMIT_NPROC",  "RLIMIT_CORE",
                                                     "RLIMIT_STACK",  "RLIMIT_RTPRIO", "RLIMIT_NICE"};

// Everything init and the program need, prepared by the trainer before clone; the children only read it.
struct ChildPlan {
  IsolationMode mode = IsolationMode::kProcessGroup;
  pid_t trainer_pid = 0;
  // In the trainer's numbering; init moves them to 0, 1, 2, kReportFd and kWorkdirTreeFd.
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  int report_fd = -1;
  int workdir_tree_fd = -1;  // detached tmpfs (root); -1: init bind-mounts the host directory itself
  const char* workdir = nullptr;
  const char* const* workdir_prefixes = nullptr;  // "/tmp", "/tmp/grpo-sandbox-x": created inside the scratch tmpfs
  std::size_t workdir_prefix_count = 0;
  const char* program = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  bool drop_privileges = false;
  uid_t uid = 0;
  gid_t gid = 0;
  const char* uid_map = nullptr;  // user-namespace mode
  const char* gid_map = nullptr;
  std::array<RlimitSetting, kRlimitNames.size()> rlimits = {};
  const sock_fprog* seccomp = nullptr;
  char* program_stack_top = nullptr;
};

// ---------------------------------------------------------------------------------------------------------------------
// Child side: thin system-call wrappers only (see the file comment).

// Marks code that runs in the children before execve: on a stack the sanitizer runtimes do not know, with RLIMIT_AS
// already below what they need. Sanitizer builds of the trainer must not instrument it.
#define GRPO_SANDBOX_CHILD_CODE __attribute__((no_sanitize("address", "undefined")))

GRPO_SANDBOX_CHILD_CODE long sys_mount(const char* source, const char* target, const char* type, unsigned long flags,
                                       const void* data) {
  return syscall(SYS_mount, source, target, type, flags, data);
}

GRPO_SANDBOX_CHILD_CODE void send_report(int fd, const ChildReport& report) {
  const ssize_t written = write(fd, &report, sizeof report);
  static_cast<void>(written);  // nothing to do if the trainer is gone
}

[[noreturn]] GRPO_SANDBOX_CHILD_CODE void fail_setup(int report_fd, SetupStep step, int detail = 0) {
  ChildReport report;
  report.kind = ChildReport::Kind::kSetupFailed;
  report.step = step;
  report.detail = detail;
  report.error = errno;
  send_report(report_fd, report);
  _exit(kSetupFailedExit);
}

GRPO_SANDBOX_CHILD_CODE void set_signal_mask(std::uint64_t mask) {
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &mask, nullptr, sizeof mask);
}

// Init is a copy of the trainer, handlers included; and SIG_IGN would survive execve into the program.
GRPO_SANDBOX_CHILD_CODE void reset_signal_dispositions() {
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    std::array<std::uint64_t, 4> zeroed_kernel_sigaction = {};  // handler SIG_DFL, no flags, empty mask
    syscall(SYS_rt_sigaction, sig, zeroed_kernel_sigaction.data(), nullptr, sizeof(std::uint64_t));
  }
}

GRPO_SANDBOX_CHILD_CODE void close_fds_from(int first) {
  if (close_range(static_cast<unsigned>(first), ~0U, 0) == 0) return;
  for (int fd = first; fd < 65536; ++fd) close(fd);  // kernels before 5.9
}

// 0, 1, 2 become the program's stdio, kReportFd the report pipe (close-on-exec), kWorkdirTreeFd the workdir tmpfs;
// the trainer's other descriptors are closed.
GRPO_SANDBOX_CHILD_CODE void arrange_init_fds(const ChildPlan& plan) {
  const std::array<int, 5> wanted = {plan.stdin_fd, plan.stdout_fd, plan.stderr_fd, plan.report_fd,
                                     plan.workdir_tree_fd};
  std::array<int, 5> parked = {-1, -1, -1, -1, -1};
  for (std::size_t i = 0; i < wanted.size(); ++i) {
    if (wanted[i] < 0) continue;
    parked[i] = fcntl(wanted[i], F_DUPFD_CLOEXEC, kHighFdFloor);
    if (parked[i] < 0) fail_setup(plan.report_fd, SetupStep::kArrangeFds);
  }
  for (int target = 0; target < 3; ++target) {
    if (dup2(parked[static_cast<std::size_t>(target)], target) < 0) fail_setup(plan.report_fd, SetupStep::kArrangeFds);
  }
  if (dup3(parked[3], kReportFd, O_CLOEXEC) < 0) fail_setup(plan.report_fd, SetupStep::kArrangeFds);
  if (parked[4] >= 0 && dup3(parked[4], kWorkdirTreeFd, O_CLOEXEC) < 0) {
    fail_setup(kReportFd, SetupStep::kArrangeFds);
  }
  close_fds_from(parked[4] >= 0 ? kWorkdirTreeFd + 1 : kWorkdirTreeFd);
}

GRPO_SANDBOX_CHILD_CODE bool write_proc_file(const char* path, const char* text) {
  const int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const std::size_t length = std::strlen(text);
  const bool written = write(fd, text, length) == static_cast<ssize_t>(length);
  const int saved = errno;
  close(fd);
  errno = saved;
  return written;
}

// User-namespace mode: the trainer's uid and gid keep their numbers inside.
GRPO_SANDBOX_CHILD_CODE void write_id_maps(const ChildPlan& plan) {
  if (!write_proc_file("/proc/self/setgroups", "deny")) fail_setup(kReportFd, SetupStep::kSetgroupsDeny);
  if (!write_proc_file("/proc/self/uid_map", plan.uid_map)) fail_setup(kReportFd, SetupStep::kUidMap);
  if (!write_proc_file("/proc/self/gid_map", plan.gid_map)) fail_setup(kReportFd, SetupStep::kGidMap);
}

// Mount namespace: nothing propagates back to the host, the host tree is read-only, the usual scratch directories are
// fresh tmpfs mounts, and the working directory (the private tmpfs, or a bind mount of the host directory) appears at
// plan.workdir. Returns the IsolationBits achieved.
GRPO_SANDBOX_CHILD_CODE std::int64_t set_up_mounts(const ChildPlan& plan) {
  std::int64_t bits = 0;
  int tree = kWorkdirTreeFd;
  if (plan.workdir_tree_fd >= 0) {
    bits |= kWorkdirTmpfsBit;
  } else {
    // A detached bind mount of the host directory, taken before the scratch tmpfs hides it.
    tree = static_cast<int>(syscall(SYS_open_tree, AT_FDCWD, plan.workdir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
    if (tree < 0) fail_setup(kReportFd, SetupStep::kCloneWorkdir);
  }
  if (sys_mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    fail_setup(kReportFd, SetupStep::kMountPrivate);
  }
  // A /proc of the new PID namespace: the trainer and the host's processes are not in it. As root, hidepid also hides
  // init (root) from the program (the sandbox uid).
  const unsigned long proc_flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  const char* proc_options = plan.mode == IsolationMode::kRootNamespaces ? "hidepid=invisible" : nullptr;
  if (sys_mount("proc", "/proc", "proc", proc_flags, proc_options) == 0 ||
      (proc_options != nullptr && sys_mount("proc", "/proc", "proc", proc_flags, nullptr) == 0)) {
    bits |= kPrivateProcBit;
  }
  mount_attr read_only = {};
  read_only.attr_set = MOUNT_ATTR_RDONLY;
  if (syscall(SYS_mount_setattr, AT_FDCWD, "/", AT_RECURSIVE, &read_only, sizeof read_only) == 0) {
    bits |= kReadOnlyRootBit;
  }
  for (std::size_t i = 0; i < kScratchDirs.size(); ++i) {
    if (sys_mount("tmpfs", kScratchDirs[i], "tmpfs", MS_NOSUID | MS_NODEV, kScratchTmpfsOptions) == 0) {
      bits |= kScratchTmpfsFirstBit << i;
    } else if (errno != ENOENT) {
      fail_setup(kReportFd, SetupStep::kMountScratch, static_cast<int>(i));
    }
  }
  // The mount point: new directories inside a scratch tmpfs, EEXIST elsewhere (the host path itself).
  for (std::size_t i = 0; i < plan.workdir_prefix_count; ++i) mkdir(plan.workdir_prefixes[i], 0755);
  if (syscall(SYS_move_mount, tree, "", AT_FDCWD, plan.workdir, MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    fail_setup(kReportFd, SetupStep::kMoveWorkdir);
  }
  close(tree);
  if (chdir(plan.workdir) != 0) fail_setup(kReportFd, SetupStep::kChdir);
  return bits;
}

// The program process: runs on its own stack in init's memory (CLONE_VM | CLONE_VFORK) until execve, init waiting.
GRPO_SANDBOX_CHILD_CODE int run_program(void* plan_pointer) {
  const ChildPlan& plan = *static_cast<const ChildPlan*>(plan_pointer);
  // A new session: its own process group, and no controlling terminal to reach the trainer's through.
  if (setsid() < 0) fail_setup(kReportFd, SetupStep::kSetsid);
  // Limits first, then the uid (a limit is per process, not per uid, except RLIMIT_NPROC's count).
  for (std::size_t i = 0; i < plan.rlimits.size(); ++i) {
    const rlimit limit = {plan.rlimits[i].soft, plan.rlimits[i].hard};
    if (setrlimit(static_cast<__rlimit_resource_t>(plan.rlimits[i].resource), &limit) != 0) {
      fail_setup(kReportFd, SetupStep::kSetrlimit, static_cast<int>(i));
    }
  }
  if (plan.drop_privileges) {
    if (syscall(SYS_setgroups, 0, nullptr) != 0) fail_setup(kReportFd, SetupStep::kSetgroups);
    if (syscall(SYS_setresgid, plan.gid, plan.gid, plan.gid) != 0) fail_setup(kReportFd, SetupStep::kSetresgid);
    if (syscall(SYS_setresuid, plan.uid, plan.uid, plan.uid) != 0) fail_setup(kReportFd, SetupStep::kSetresuid);
  }
  // After the uid change, which clears it: the program dies with init (the PID namespace would kill it anyway).
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail_setup(kReportFd, SetupStep::kNoNewPrivs);
  set_signal_mask(0);
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, plan.seccomp) != 0) fail_setup(kReportFd, SetupStep::kSeccomp);
  execve(plan.program, plan.argv, plan.envp);
  fail_setup(kReportFd, SetupStep::kExec);
}

GRPO_SANDBOX_CHILD_CODE std::int64_t cpu_micros(const rusage& usage) {
  return (static_cast<std::int64_t>(usage.ru_utime.tv_sec) + usage.ru_stime.tv_sec) * 1'000'000 +
         usage.ru_utime.tv_usec + usage.ru_stime.tv_usec;
}

// Reaps every child that has ended (the program and reparented orphans); records the program's end.
GRPO_SANDBOX_CHILD_CODE void reap_children(pid_t program, ChildReport& ended, bool& program_done) {
  for (;;) {
    int status = 0;
    rusage usage = {};
    const pid_t pid = wait4(-1, &status, WNOHANG | __WALL, &usage);
    if (pid <= 0) return;
    if (pid == program) {
      ended.value = status;
      ended.cpu_micros = cpu_micros(usage);
      program_done = true;
    }
  }
}

// Parses the parent pid out of /proc/<pid>/stat ("pid (comm) state ppid ..."); -1 if unreadable.
GRPO_SANDBOX_CHILD_CODE pid_t read_parent_pid(const char* pid_digits) {
  char path[64] = "/proc/";
  std::size_t length = std::strlen(path);
  for (const char* c = pid_digits; *c != '\0' && length + 6 < sizeof path; ++c) path[length++] = *c;
  std::memcpy(path + length, "/stat", 6);
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char text[512];
  const ssize_t size = read(fd, text, sizeof text - 1);
  close(fd);
  if (size <= 0) return -1;
  text[size] = '\0';
  const char* close_paren = std::strrchr(text, ')');
  if (close_paren == nullptr || close_paren[1] == '\0' || close_paren[2] == '\0') return -1;
  pid_t parent = 0;
  for (const char* c = close_paren + 4; *c >= '0' && *c <= '9'; ++c) parent = parent * 10 + (*c - '0');
  return parent;
}

// SIGKILLs every process whose parent is init, by scanning /proc (no CONFIG_PROC_CHILDREN needed).
GRPO_SANDBOX_CHILD_CODE void kill_children_of(pid_t self) {
  const int proc = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (proc < 0) return;
  alignas(8) char buffer[8192];
  for (;;) {
    const ssize_t size = getdents64(proc, buffer, sizeof buffer);
    if (size <= 0) break;
    for (ssize_t offset = 0; offset < size;) {
      unsigned short record_length = 0;
      std::memcpy(&record_length, buffer + offset + offsetof(dirent64, d_reclen), sizeof record_length);
      const char* name = buffer + offset + offsetof(dirent64, d_name);
      offset += record_length;
      if (name[0] < '1' || name[0] > '9') continue;
      if (read_parent_pid(name) != self) continue;
      pid_t pid = 0;
      for (const char* c = name; *c >= '0' && *c <= '9'; ++c) pid = pid * 10 + (*c - '0');
      kill(pid, SIGKILL);
    }
  }
  close(proc);
}

// Process-group mode: init is a child subreaper, so every descendant that loses its parent becomes init's child. Kill
// the children until none is left; grandchildren surface as their parents die.
GRPO_SANDBOX_CHILD_CODE void kill_all_descendants(pid_t program) {
  kill(-program, SIGKILL);
  const pid_t self = getpid();
  for (int round = 0; round < kMaxKillRounds; ++round) {
    for (;;) {
      const pid_t pid = wait4(-1, nullptr, WNOHANG | __WALL, nullptr);
      if (pid < 0 && errno == ECHILD) return;
      if (pid <= 0) break;
    }
    kill_children_of(self);
    const timespec pause = {0, 1'000'000};
    nanosleep(&pause, nullptr);
  }
}

// pid 1 of the sandbox (or, without namespaces, a subreaper in the trainer's PID namespace).
[[noreturn]] GRPO_SANDBOX_CHILD_CODE void run_init(const ChildPlan& plan) {
  set_signal_mask(~std::uint64_t{0});  // also the two glibc-internal signals pthread_sigmask leaves open
  reset_signal_dispositions();
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (plan.mode == IsolationMode::kProcessGroup) {
    if (getppid() != plan.trainer_pid) _exit(kSetupFailedExit);  // the trainer died before PDEATHSIG was set
    prctl(PR_SET_CHILD_SUBREAPER, 1);
  }
  arrange_init_fds(plan);
  ChildReport isolation;
  isolation.kind = ChildReport::Kind::kIsolation;
  // RLIMIT_AS is per process: many processes can still exhaust memory. Then the OOM killer must pick the run, never
  // the trainer. Inherited by every process of the run; /proc is read-only inside the namespaces, so it stays.
  if (write_proc_file("/proc/self/oom_score_adj", "1000")) isolation.value |= kOomScoreBit;
  if (plan.mode == IsolationMode::kUserNamespaces) write_id_maps(plan);
  // Last of the /proc/self writes (it makes them root's): init's memory is a copy of the trainer's, so
  // /proc/<init>/environ and mem must stay closed to the program.
  prctl(PR_SET_DUMPABLE, 0);
  if (plan.mode == IsolationMode::kProcessGroup) {
    if (chdir(plan.workdir) != 0) fail_setup(kReportFd, SetupStep::kChdir);
  } else {
    isolation.value |= set_up_mounts(plan);
  }
  send_report(kReportFd, isolation);

  const pid_t program =
      clone(run_program, plan.program_stack_top, CLONE_VM | CLONE_VFORK | SIGCHLD, const_cast<ChildPlan*>(&plan));
  if (program < 0) fail_setup(kReportFd, SetupStep::kSpawn);
  for (int fd = 0; fd < 3; ++fd) close(fd);  // only the program's processes hold the pipes now: EOF means they ended

  ChildReport ended;
  ended.kind = ChildReport::Kind::kProgramEnded;
  bool program_done = false;
  // SIGCHLD: reap. SIGTERM from the trainer (process-group mode only; with a PID namespace the trainer stops a run by
  // SIGKILLing init): stop now. A SIGTERM from the program itself must not end the run without a status.
  const std::uint64_t wait_set = (std::uint64_t{1} << (SIGCHLD - 1)) | (std::uint64_t{1} << (SIGTERM - 1));
  while (!program_done) {
    siginfo_t info = {};
    const long sig = syscall(SYS_rt_sigtimedwait, &wait_set, &info, nullptr, sizeof wait_set);
    if (sig == SIGTERM && plan.mode == IsolationMode::kProcessGroup && info.si_pid == plan.trainer_pid) break;
    if (sig < 0 && errno != EINTR && errno != EAGAIN) break;
    reap_children(program, ended, program_done);
  }
  // With a PID namespace, init's exit kills every process left in it.
  if (plan.mode == IsolationMode::kProcessGroup) kill_all_descendants(program);
  if (program_done) send_report(kReportFd, ended);
  _exit(0);
}

// ---------------------------------------------------------------------------------------------------------------------
// The seccomp filter, shared by all runs.

#if defined(__x86_64__)
constexpr std::uint32_t kAuditArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr std::uint32_t kAuditArch = AUDIT_ARCH_AARCH64;
#else
#error "reward/sandbox.cpp: the seccomp filter knows x86_64 and aarch64 only"
#endif

// Refused with EPERM: debugging other processes, kernel attack surface nothing here needs (keys, bpf, perf, io_uring,
// userfaultfd), and changing namespaces or mounts.
std::vector<std::uint32_t> denied_syscalls() {
  return {
      SYS_ptrace,
      SYS_process_vm_readv,
      SYS_process_vm_writev,
      SYS_kexec_load,
#ifdef SYS_kexec_file_load
      SYS_kexec_file_load,
#endif
      SYS_mount,
      SYS_umount2,
      SYS_pivot_root,
      SYS_chroot,
      SYS_unshare,
      SYS_setns,
      SYS_keyctl,
      SYS_add_key,
      SYS_request_key,
      SYS_bpf,
      SYS_perf_event_open,
      SYS_userfaultfd,
      SYS_open_by_handle_at,
      SYS_init_module,
      SYS_finit_module,
      SYS_delete_module,
      SYS_acct,
      SYS_swapon,
      SYS_swapoff,
      SYS_reboot,
#ifdef SYS_open_tree
      SYS_open_tree,
      SYS_move_mount,
      SYS_fsopen,
      SYS_fsconfig,
      SYS_fsmount,
      SYS_fspick,
#endif
#ifdef SYS_mount_setattr
      SYS_mount_setattr,
#endif
#ifdef SYS_io_uring_setup
      SYS_io_uring_setup,
      SYS_io_uring_enter,
      SYS_io_uring_register,
#endif
#ifdef SYS_pidfd_getfd
      SYS_pidfd_getfd,
#endif
  };
}

class SeccompFilter {
 public:
  SeccompFilter() {
    constexpr std::uint32_t kDeny = SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA);
    // A system call of another ABI (i386 via int 0x80) has other numbers: kill rather than misjudge it.
    load(offsetof(seccomp_data, arch));
    jump_if_equal(kAuditArch, 1, 0);
    ret(SECCOMP_RET_KILL_PROCESS);
    load(offsetof(seccomp_data, nr));
#if defined(__x86_64__)
    // x32 system calls share the arch value but set bit 30; refuse them so the checks below cannot be sidestepped.
    code_.push_back({BPF_JMP | BPF_JGE | BPF_K, 0, 1, 0x40000000U});
    ret(kDeny);
#endif
    for (const std::uint32_t nr : denied_syscalls()) {
      jump_if_equal(nr, 0, 1);
      ret(kDeny);
    }
    // socket() and socketpair() only for AF_UNIX: the network stays closed even without a network namespace.
    jump_if_equal(SYS_socket, 1, 0);
    jump_if_equal(SYS_socketpair, 0, 3);
    load(offsetof(seccomp_data, args[0]));  // the domain: an int, the low half on little-endian
    jump_if_equal(AF_UNIX, 1, 0);
    ret(kDeny);
    ret(SECCOMP_RET_ALLOW);
    program_.len = static_cast<unsigned short>(code_.size());
    program_.filter = code_.data();
  }
  const sock_fprog* program() const { return &program_; }

 private:
  void load(std::uint32_t offset) { code_.push_back({BPF_LD | BPF_W | BPF_ABS, 0, 0, offset}); }
  void ret(std::uint32_t action) { code_.push_back({BPF_RET | BPF_K, 0, 0, action}); }
  void jump_if_equal(std::uint32_t value, std::uint8_t if_true, std::uint8_t if_false) {
    code_.push_back({BPF_JMP | BPF_JEQ | BPF_K, if_true, if_false, value});
  }

  std::vector<sock_filter> code_;
  sock_fprog program_ = {};
};

const sock_fprog* seccomp_program() {
  static const SeccompFilter filter;
  return filter.program();
}

// ---------------------------------------------------------------------------------------------------------------------
// Trainer side: small helpers.

std::string errno_text(int error) { return std::system_category().message(error); }

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

bool is_plain_file_name(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

// Keeps std::strings alive and exposes them as the NULL-terminated char* array execve wants.
class CStringArray {
 public:
  explicit CStringArray(std::vector<std::string> strings) : strings_(std::move(strings)) {
    pointers_.reserve(strings_.size() + 1);
    for (std::string& s : strings_) pointers_.push_back(s.data());
    pointers_.push_back(nullptr);
  }
  char* const* data() const { return pointers_.data(); }

 private:
  std::vector<std::string> strings_;
  std::vector<char*> pointers_;
};

std::string validate_request(const SandboxRequest& request) {
  if (request.argv.empty()) return "empty argv";
  if (request.argv[0].empty()) return "argv[0] is empty";
  for (std::size_t i = 0; i < request.argv.size(); ++i) {
    if (request.argv[i].find('\0') != std::string::npos) return fmt::format("argv[{}] contains a NUL byte", i);
  }
  for (const std::string& entry : request.env) {
    const std::size_t equals = entry.find('=');
    if (equals == 0 || equals == std::string::npos || entry.find('\0') != std::string::npos) {
      return fmt::format("environment entry '{}' is not NAME=value", entry);
    }
  }
  for (const SandboxFile& file : request.files) {
    if (!is_plain_file_name(file.name)) {
      return fmt::format("bad file name '{}': a plain name is required (no '/', not '.' or '..')", file.name);
    }
  }
  for (const std::string& name : request.collect) {
    if (!is_plain_file_name(name)) {
      return fmt::format("bad collect name '{}': a plain name is required (no '/', not '.' or '..')", name);
    }
  }
  return {};
}

std::optional<std::string_view> env_value(const std::vector<std::string>& env, std::string_view name) {
  for (const std::string& entry : env) {
    if (entry.size() > name.size() && entry.compare(0, name.size(), name) == 0 && entry[name.size()] == '=') {
      return std::string_view(entry).substr(name.size() + 1);
    }
  }
  return std::nullopt;
}

// Exactly the request's environment, plus PATH, HOME, LANG and TMPDIR where it does not set them.
std::vector<std::string> sandbox_environment(const SandboxRequest& request, const std::string& workdir) {
  std::vector<std::string> env = request.env;
  const std::array<std::pair<std::string_view, std::string>, 4> defaults = {
      {{"PATH", kDefaultPath}, {"HOME", workdir}, {"LANG", "C.UTF-8"}, {"TMPDIR", workdir}}};
  for (const auto& [name, value] : defaults) {
    if (!env_value(env, name)) env.push_back(fmt::format("{}={}", name, value));
  }
  return env;
}

// argv[0] with a '/' is used as is (relative to the working directory); a bare name is looked up on the sandbox PATH.
std::optional<std::string> resolve_program(const std::string& name, std::string_view path) {
  if (name.find('/') != std::string::npos) return name;
  while (true) {
    const std::size_t colon = path.find(':');
    const std::string_view dir = path.substr(0, colon);
    if (!dir.empty()) {
      std::string candidate = fmt::format("{}/{}", dir, name);
      struct stat info = {};
      if (stat(candidate.c_str(), &info) == 0 && S_ISREG(info.st_mode) && access(candidate.c_str(), X_OK) == 0) {
        return candidate;
      }
    }
    if (colon == std::string_view::npos) return std::nullopt;
    path.remove_prefix(colon + 1);
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Sandbox uids.

// Whether [first, first + count) is mapped in this process's user namespace (all of it, outside one).
bool uid_range_is_mapped(uid_t first, uid_t count) {
  const UniqueFd fd(open("/proc/self/uid_map", O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return first + count <= 65536;  // no /proc: assume the usual full map
  char text[4096];
  const ssize_t size = read(fd.get(), text, sizeof text - 1);
  if (size <= 0) return false;
  text[size] = '\0';
  const char* cursor = text;
  unsigned long inside = 0;
  unsigned long outside = 0;
  unsigned long length = 0;
  int consumed = 0;
  while (std::sscanf(cursor, "%lu %lu %lu%n", &inside, &outside, &length, &consumed) == 3) {
    if (first >= inside && static_cast<unsigned long>(first) + count <= inside + length) return true;
    cursor += consumed;
  }
  return false;
}

struct UidPool {
  std::mutex mutex;
  std::condition_variable released;
  std::array<bool, kSandboxUidSlots> busy = {};
};

UidPool& uid_pool() {
  static UidPool pool;
  return pool;
}

// Holds a sandbox uid for one run. Across processes (several trainers, ctest -j), a uid is taken by binding an abstract
// Unix socket named after it: one bind succeeds at a time and the name is freed when the socket closes or its process
// dies, so no stale lock can outlive a crash.
class UidLease {
 public:
  UidLease() = default;
  UidLease(const UidLease&) = delete;
  UidLease& operator=(const UidLease&) = delete;
  ~UidLease() {
    if (slot_ < 0) return;
    lock_.reset();
    UidPool& pool = uid_pool();
    {
      const std::lock_guard guard(pool.mutex);
      pool.busy[static_cast<std::size_t>(slot_)] = false;
    }
    pool.released.notify_one();
  }

  // Returns an error message, empty on success.
  std::string acquire() {
    static const bool slots_mapped = uid_range_is_mapped(kSandboxUidBase, kSandboxUidSlots);
    static const bool nobody_mapped = uid_range_is_mapped(kNobodyUid, 1);
    if (!slots_mapped) {
      if (!nobody_mapped) {
        return fmt::format("root in a user namespace that maps neither uids {}-{} nor {}: no uid to drop to",
                           kSandboxUidBase, kSandboxUidBase + kSandboxUidSlots - 1, kNobodyUid);
      }
      uid_ = kNobodyUid;
      return {};
    }
    UidPool& pool = uid_pool();
    std::unique_lock lock(pool.mutex);
    for (;;) {
      for (int slot = 0; slot < kSandboxUidSlots; ++slot) {
        if (pool.busy[static_cast<std::size_t>(slot)]) continue;
        const uid_t uid = kSandboxUidBase + static_cast<uid_t>(slot);
        UniqueFd lock_fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!lock_fd.valid()) return fmt::format("socket: {}", errno_text(errno));
        if (!bind_uid_name(lock_fd.get(), uid)) continue;  // another process runs with this uid now
        pool.busy[static_cast<std::size_t>(slot)] = true;
        slot_ = slot;
        uid_ = uid;
        lock_ = std::move(lock_fd);
        return {};
      }
      pool.released.wait_for(lock, std::chrono::milliseconds(20));  // all busy here or in other processes
    }
  }

  uid_t uid() const { return uid_; }

 private:
  static bool bind_uid_name(int fd, uid_t uid) {
    sockaddr_un address = {};
    address.sun_family = AF_UNIX;
    const std::string name = fmt::format("grpo-sandbox-uid-{}", uid);
    std::memcpy(address.sun_path + 1, name.data(), name.size());  // sun_path[0] = '\0': the abstract namespace
    const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    return bind(fd, reinterpret_cast<const sockaddr*>(&address), length) == 0;
  }

  int slot_ = -1;
  uid_t uid_ = kNobodyUid;
  UniqueFd lock_;
};

// ---------------------------------------------------------------------------------------------------------------------
// The working directory.

struct Owner {
  uid_t uid = 0;
  gid_t gid = 0;
};

// Makes every directory under `dir` (not following symlinks) writable and searchable, so a tree the program made
// read-only or mode 000 can be removed.
void make_tree_removable(const std::filesystem::path& dir, int depth) {
  if (depth > 256) return;
  ::chmod(dir.c_str(), 0700);
  std::error_code error;
  for (std::filesystem::directory_iterator it(dir, error), end; !error && it != end; it.increment(error)) {
    if (it->symlink_status(error).type() == std::filesystem::file_type::directory) {
      make_tree_removable(it->path(), depth + 1);
    }
  }
}

// Returns an error message, empty on success.
// `owner`: chown the files to it (root), or nullptr.
std::string write_files(int dir_fd, const std::vector<SandboxFile>& files, const Owner* owner) {
  for (const SandboxFile& file : files) {
    const mode_t mode = file.executable ? 0755 : 0644;
    const UniqueFd fd(openat(dir_fd, file.name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
    if (!fd.valid()) {
      if (errno == EEXIST) return fmt::format("file '{}' is given twice", file.name);
      return fmt::format("create {}: {}", file.name, errno_text(errno));
    }
    for (std::size_t done = 0; done < file.content.size();) {
      const ssize_t written = write(fd.get(), file.content.data() + done, file.content.size() - done);
      if (written < 0 && errno == EINTR) continue;
      if (written <= 0) return fmt::format("write {}: {}", file.name, errno_text(errno));
      done += static_cast<std::size_t>(written);
    }
    if (owner != nullptr && fchown(fd.get(), owner->uid, owner->gid) != 0) {
      return fmt::format("chown {}: {}", file.name, errno_text(errno));
    }
    if (fchmod(fd.get(), mode) != 0) return fmt::format("chmod {}: {}", file.name, errno_text(errno));  // umask
  }
  return {};
}

// The run's working directory, fresh and empty but for the request's files, and gone afterwards.
//  - Root with namespaces: a detached tmpfs (owned by the sandbox uid, size-capped) that only the sandbox sees, at
//    /tmp/grpo-sandbox-XXXXXX inside its private /tmp. Nothing touches the host's disk: the program cannot fill it,
//    and there is no directory to remove (an rmdir on ext4 with online discard alone costs ~4 ms).
//  - Otherwise: mkdtemp under the temp directory, removed recursively afterwards.
class WorkDir {
 public:
  WorkDir() = default;
  WorkDir(const WorkDir&) = delete;
  WorkDir& operator=(const WorkDir&) = delete;
  ~WorkDir() { remove(); }

  // Sets up a private tmpfs when asked for and the kernel allows it, a host directory otherwise, and writes the files
  // (chowned to `owner` unless nullptr). May be called again to switch to a host directory. Returns an error message,
  // empty on success.
  std::string prepare(const SandboxRequest& request, bool private_tmpfs, const Owner* owner) {
    remove();
    if (private_tmpfs && owner != nullptr && attach_private_tmpfs(tmpfs_bytes(request), *owner)) {
      path_ = "/tmp/grpo-sandbox-" + random_suffix();
    } else if (std::string problem = create_host_directory(owner); !problem.empty()) {
      return problem;
    }
    return write_files(files_fd(), request.files, owner);
  }

  const std::string& path() const { return path_; }
  int files_fd() const { return tmpfs_fd_.valid() ? tmpfs_fd_.get() : dir_fd_.get(); }
  int tmpfs_fd() const { return tmpfs_fd_.get(); }
  std::size_t tmpfs_size() const { return tmpfs_size_; }

 private:
  static std::size_t tmpfs_bytes(const SandboxRequest& request) {
    std::size_t file_bytes = 0;
    for (const SandboxFile& file : request.files) file_bytes += file.content.size();
    const std::size_t room = request.limits.file_size_bytes * kWorkdirFileSizeMultiple;
    return std::max(kWorkdirMinBytes, room + file_bytes);
  }

  static std::string random_suffix() {
    static constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    std::array<unsigned char, 6> bytes = {};
    if (getrandom(bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size())) {
      const auto ticks = static_cast<std::uint64_t>(Clock::now().time_since_epoch().count());
      for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<unsigned char>(ticks >> (8 * i));
    }
    std::string suffix;
    for (const unsigned char byte : bytes) suffix += kAlphabet[byte % kAlphabet.size()];
    return suffix;
  }

  bool attach_private_tmpfs(std::size_t size_bytes, Owner owner) {
    const UniqueFd context(static_cast<int>(syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC)));
    if (!context.valid()) return false;
    const auto set = [&context](const char* key, const std::string& value) {
      return syscall(SYS_fsconfig, context.get(), FSCONFIG_SET_STRING, key, value.c_str(), 0) == 0;
    };
    const bool configured = set("size", std::to_string(size_bytes)) &&
                            set("nr_inodes", std::to_string(kWorkdirInodes)) && set("mode", "0700") &&
                            set("uid", std::to_string(owner.uid)) && set("gid", std::to_string(owner.gid)) &&
                            syscall(SYS_fsconfig, context.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) == 0;
    if (!configured) return false;
    tmpfs_fd_.reset(
        static_cast<int>(syscall(SYS_fsmount, context.get(), FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)));
    tmpfs_size_ = tmpfs_fd_.valid() ? size_bytes : 0;
    return tmpfs_fd_.valid();
  }

  std::string create_host_directory(const Owner* owner) {
    std::error_code error;
    const std::filesystem::path temp = std::filesystem::temp_directory_path(error);
    if (error) return fmt::format("no temp directory: {}", error.message());
    std::string name = (temp / "grpo-sandbox-XXXXXX").string();
    if (mkdtemp(name.data()) == nullptr) return fmt::format("mkdtemp {}: {}", name, errno_text(errno));
    path_ = std::move(name);
    host_directory_ = true;
    dir_fd_.reset(open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir_fd_.valid()) return fmt::format("open {}: {}", path_, errno_text(errno));
    if (owner != nullptr && fchown(dir_fd_.get(), owner->uid, owner->gid) != 0) {
      return fmt::format("chown {}: {}", path_, errno_text(errno));
    }
    return {};
  }

  void remove() {
    tmpfs_fd_.reset();  // the tmpfs goes with its last reference
    tmpfs_size_ = 0;
    dir_fd_.reset();
    if (host_directory_) {
      std::error_code error;
      std::filesystem::remove_all(path_, error);
      if (error && std::filesystem::exists(std::filesystem::symlink_status(path_, error))) {
        make_tree_removable(path_, 0);  // the program made parts of it read-only or mode 000
        std::filesystem::remove_all(path_, error);
      }
    }
    host_directory_ = false;
    path_.clear();
  }

  std::string path_;
  bool host_directory_ = false;
  UniqueFd dir_fd_;
  UniqueFd tmpfs_fd_;
  std::size_t tmpfs_size_ = 0;
};

// Reads back regular files only (no symlinks, no FIFOs), at most max_bytes each.
std::vector<SandboxFile> collect_files(int dir_fd, const std::vector<std::string>& names, std::size_t max_bytes) {
  std::vector<SandboxFile> collected;
  for (const std::string& name : names) {
    const UniqueFd fd(openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
    struct stat info = {};
    if (!fd.valid() || fstat(fd.get(), &info) != 0 || !S_ISREG(info.st_mode)) continue;
    SandboxFile file{.name = name, .content = {}, .executable = (info.st_mode & S_IXUSR) != 0};
    std::array<char, kReadChunkBytes> buffer;
    while (file.content.size() < max_bytes) {
      const ssize_t size = read(fd.get(), buffer.data(), std::min(buffer.size(), max_bytes - file.content.size()));
      if (size < 0 && errno == EINTR) continue;
      if (size <= 0) break;
      file.content.append(buffer.data(), static_cast<std::size_t>(size));
    }
    collected.push_back(std::move(file));
  }
  return collected;
}

std::vector<std::string> path_prefixes(const std::string& path) {
  std::vector<std::string> prefixes;
  for (std::size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1)) {
    prefixes.push_back(path.substr(0, slash));
  }
  prefixes.push_back(path);
  return prefixes;
}

// ---------------------------------------------------------------------------------------------------------------------
// Limits.

rlim_t whole_cpu_seconds(double seconds) {
  if (!(seconds > 1.0)) return 1;  // also NaN
  return static_cast<rlim_t>(std::ceil(std::min(seconds, 1e7)));
}

std::array<RlimitSetting, kRlimitNames.size()> rlimit_settings(const SandboxLimits& limits) {
  const rlim_t cpu = whole_cpu_seconds(limits.cpu_seconds);
  const rlim_t address_space = limits.address_space_bytes;
  const rlim_t stack = std::min<rlim_t>(kStackLimitBytes, address_space);
  const auto count = [](int value) { return static_cast<rlim_t>(std::max(value, 0)); };
  std::array<RlimitSetting, kRlimitNames.size()> settings = {{
      {RLIMIT_CPU, cpu, cpu + 1},  // SIGXCPU at the limit, SIGKILL a second later if it is caught
      {RLIMIT_AS, address_space, address_space},
      {RLIMIT_FSIZE, limits.file_size_bytes, limits.file_size_bytes},
      {RLIMIT_NOFILE, count(limits.open_files), count(limits.open_files)},
      {RLIMIT_NPROC, count(limits.processes), count(limits.processes)},
      {RLIMIT_CORE, 0, 0},
      {RLIMIT_STACK, stack, address_space},  // the program may raise its stack within its address space
      {RLIMIT_RTPRIO, 0, 0},                 // no realtime scheduling to starve the host with
      {RLIMIT_NICE, 0, 0},                   // no raising its priority either
  }};
  // Never more than the trainer has itself (raising a hard limit needs CAP_SYS_RESOURCE, which even root may lack).
  for (RlimitSetting& setting : settings) {
    rlimit current = {};
    if (getrlimit(static_cast<__rlimit_resource_t>(setting.resource), &current) != 0) continue;
    setting.hard = std::min(setting.hard, current.rlim_max);
    setting.soft = std::min(setting.soft, setting.hard);
  }
  return settings;
}

// ---------------------------------------------------------------------------------------------------------------------
// Starting init.

unsigned long clone_flags(IsolationMode mode) {
  const unsigned long namespaces = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC;
  switch (mode) {
    case IsolationMode::kRootNamespaces:
      return namespaces;
    case IsolationMode::kUserNamespaces:
      return namespaces | CLONE_NEWUSER;
    case IsolationMode::kProcessGroup:
      return 0;
  }
  return 0;
}

std::string clone_flags_text(IsolationMode mode) {
  switch (mode) {
    case IsolationMode::kRootNamespaces:
      return "CLONE_NEWPID|CLONE_NEWNS|CLONE_NEWNET|CLONE_NEWIPC";
    case IsolationMode::kUserNamespaces:
      return "CLONE_NEWUSER|CLONE_NEWPID|CLONE_NEWNS|CLONE_NEWNET|CLONE_NEWIPC";
    case IsolationMode::kProcessGroup:
      return "0";
  }
  return "?";
}

// Errors that mean "this kind of isolation is not available here", as opposed to a transient failure.
bool namespaces_unavailable(int error) {
  return error == EPERM || error == EINVAL || error == ENOSPC || error == EUSERS || error == ENOSYS;
}

struct Init {
  pid_t pid = -1;
  UniqueFd pidfd;
};

// Clones init with the plan's namespaces. exit_signal 0: the trainer gets no SIGCHLD for it and a waitpid(-1) elsewhere
// in the trainer cannot reap it (that needs __WALL); a SIG_IGN for SIGCHLD cannot auto-reap it either.
GRPO_SANDBOX_CHILD_CODE std::optional<Init> start_init(const ChildPlan& plan, int& error) {
  sigset_t all;
  sigset_t previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);  // no trainer handler may run in the child
  int pidfd = -1;
  const long pid = syscall(SYS_clone, clone_flags(plan.mode) | CLONE_PIDFD, nullptr, &pidfd, nullptr, nullptr);
  if (pid == 0) run_init(plan);
  error = errno;
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (pid < 0) return std::nullopt;
  Init init;
  init.pid = static_cast<pid_t>(pid);
  init.pidfd.reset(pidfd);
  return init;
}

struct Pipes {
  UniqueFd stdin_parent;  // a socketpair: send(MSG_NOSIGNAL) cannot raise SIGPIPE in the trainer
  UniqueFd stdin_child;
  UniqueFd stdout_read;
  UniqueFd stdout_write;
  UniqueFd stderr_read;
  UniqueFd stderr_write;
  UniqueFd report_read;
  UniqueFd report_write;
};

// Returns an error message, empty on success.
std::string make_pipes(Pipes& pipes) {
  std::array<int, 2> ends = {-1, -1};
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends.data()) != 0) {
    return fmt::format("socketpair: {}", errno_text(errno));
  }
  pipes.stdin_parent.reset(ends[0]);
  pipes.stdin_child.reset(ends[1]);
  shutdown(ends[0], SHUT_RD);  // the program's writes to its stdin go nowhere
  const std::array<std::pair<UniqueFd*, UniqueFd*>, 3> pairs = {{{&pipes.stdout_read, &pipes.stdout_write},
                                                                 {&pipes.stderr_read, &pipes.stderr_write},
                                                                 {&pipes.report_read, &pipes.report_write}}};
  for (const auto& [read_end, write_end] : pairs) {
    if (pipe2(ends.data(), O_CLOEXEC) != 0) return fmt::format("pipe2: {}", errno_text(errno));
    read_end->reset(ends[0]);
    write_end->reset(ends[1]);
    fcntl(ends[0], F_SETFL, O_NONBLOCK);
  }
  fcntl(pipes.stdin_parent.get(), F_SETFL, O_NONBLOCK);
  return {};
}

// The strings and arrays one launch needs, built before clone (the children must not allocate) and kept alive until
// the run is over.
class LaunchPlan {
 public:
  LaunchPlan(const SandboxRequest& request, const std::string& program, IsolationMode mode, bool root,
             const UidLease& lease, const Pipes& pipes, const WorkDir& workdir)
      : program_(program),
        argv_(request.argv),
        envp_(sandbox_environment(request, workdir.path())),
        prefixes_(path_prefixes(workdir.path())),
        uid_map_(fmt::format("{0} {0} 1", geteuid())),
        gid_map_(fmt::format("{0} {0} 1", getegid())),
        program_stack_(new char[kProgramStackBytes]) {
    for (const std::string& prefix : prefixes_) prefix_pointers_.push_back(prefix.c_str());
    plan_.mode = mode;
    plan_.trainer_pid = getpid();
    plan_.stdin_fd = pipes.stdin_child.get();
    plan_.stdout_fd = pipes.stdout_write.get();
    plan_.stderr_fd = pipes.stderr_write.get();
    plan_.report_fd = pipes.report_write.get();
    plan_.workdir_tree_fd = workdir.tmpfs_fd();
    plan_.workdir = workdir.path().c_str();
    plan_.workdir_prefixes = prefix_pointers_.data();
    plan_.workdir_prefix_count = prefix_pointers_.size();
    plan_.program = program_.c_str();
    plan_.argv = argv_.data();
    plan_.envp = envp_.data();
    plan_.drop_privileges = root;
    plan_.uid = lease.uid();
    plan_.gid = static_cast<gid_t>(lease.uid());
    plan_.uid_map = uid_map_.c_str();
    plan_.gid_map = gid_map_.c_str();
    plan_.rlimits = rlimit_settings(request.limits);
    plan_.seccomp = seccomp_program();
    char* const stack_end = program_stack_.get() + kProgramStackBytes;
    plan_.program_stack_top = stack_end - reinterpret_cast<std::uintptr_t>(stack_end) % 16;  // the ABI's alignment
  }
  LaunchPlan(const LaunchPlan&) = delete;
  LaunchPlan& operator=(const LaunchPlan&) = delete;

  const ChildPlan& child() const { return plan_; }

 private:
  std::string program_;
  CStringArray argv_;
  CStringArray envp_;
  std::vector<std::string> prefixes_;
  std::vector<const char*> prefix_pointers_;
  std::string uid_map_;
  std::string gid_map_;
  std::unique_ptr<char[]> program_stack_;
  ChildPlan plan_;
};

// Prepares the working directory and starts init with the strongest isolation the kernel grants: namespaces first,
// the process-group fallback only where the kernel says namespaces are not available to us. Returns an error
// message, empty on success.
std::string launch_init(const SandboxRequest& request, const std::string& program, bool root, const UidLease& lease,
                        const Pipes& pipes, WorkDir& workdir, std::optional<LaunchPlan>& launch,
                        std::optional<Init>& init, std::string& no_namespaces_reason) {
  const Owner owner = {lease.uid(), static_cast<gid_t>(lease.uid())};
  const Owner* const file_owner = root ? &owner : nullptr;
  for (const IsolationMode mode :
       {root ? IsolationMode::kRootNamespaces : IsolationMode::kUserNamespaces, IsolationMode::kProcessGroup}) {
    const bool private_tmpfs = mode == IsolationMode::kRootNamespaces;
    if (std::string problem = workdir.prepare(request, private_tmpfs, file_owner); !problem.empty()) return problem;
    launch.emplace(request, program, mode, root, lease, pipes, workdir);
    int error = 0;
    init = start_init(launch->child(), error);
    if (init) return {};
    const std::string failure = fmt::format("clone({}): {}", clone_flags_text(mode), errno_text(error));
    if (mode == IsolationMode::kProcessGroup || !namespaces_unavailable(error)) return "sandbox setup: " + failure;
    no_namespaces_reason = failure;
  }
  return "sandbox setup: no isolation mode left";
}

// ---------------------------------------------------------------------------------------------------------------------
// Supervising a run.

enum class StopReason { kNone, kWallTimeout, kOutputLimit };

class RunMonitor {
 public:
  RunMonitor(const SandboxRequest& request, IsolationMode mode, Init& init, Pipes& pipes, SandboxResult& result)
      : request_(request), mode_(mode), init_(init), pipes_(pipes), result_(result) {
    if (request_.stdin_data.empty()) pipes_.stdin_parent.reset();
  }

  // Runs until init exits, or a limit is hit and init has been stopped. Returns why it was stopped.
  StopReason run(Clock::time_point deadline) {
    StopReason reason = StopReason::kNone;
    bool init_exited = false;
    while (!init_exited) {
      // The report pipe is read once init has exited: reports are small, and waking for each costs time.
      std::array<pollfd, 4> fds = {};
      const std::array<int, 4> sources = {init_.pidfd.get(), pipes_.stdout_read.get(), pipes_.stderr_read.get(),
                                          pipes_.stdin_parent.get()};
      for (std::size_t i = 0; i < fds.size(); ++i) {
        fds[i].fd = sources[i];  // a negative fd is skipped by poll
        fds[i].events = i == 3 ? POLLOUT : POLLIN;
      }
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
      const int ready = poll(fds.data(), fds.size(), static_cast<int>(std::clamp<long long>(left, 0, 60'000)));
      if (ready < 0 && errno != EINTR) break;
      if (fds[3].revents != 0) feed_stdin();
      if (fds[1].revents != 0) pump(pipes_.stdout_read, result_.stdout_data);
      if (fds[2].revents != 0) pump(pipes_.stderr_read, result_.stderr_data);
      init_exited = (fds[0].revents & POLLIN) != 0;
      if (result_.output_truncated) {
        reason = StopReason::kOutputLimit;
      } else if (!init_exited && Clock::now() >= deadline) {
        reason = StopReason::kWallTimeout;
      }
      if (reason != StopReason::kNone) break;
    }
    if (!init_exited) stop_init();
    pipes_.stdin_parent.reset();
    // Every process of the run is gone: what they wrote is in the pipes, read it without waiting.
    if (!result_.output_truncated) {
      pump(pipes_.stdout_read, result_.stdout_data);
      pump(pipes_.stderr_read, result_.stderr_data);
    }
    read_reports();
    return reason;
  }

  const std::vector<ChildReport>& reports() const { return reports_; }

 private:
  void feed_stdin() {
    const std::string& data = request_.stdin_data;
    while (stdin_offset_ < data.size()) {
      const std::size_t chunk = std::min(kReadChunkBytes, data.size() - stdin_offset_);
      const ssize_t sent =
          send(pipes_.stdin_parent.get(), data.data() + stdin_offset_, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (sent < 0 && errno == EINTR) continue;
      if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (sent <= 0) break;  // EPIPE, ECONNRESET: the program stopped reading
      stdin_offset_ += static_cast<std::size_t>(sent);
    }
    pipes_.stdin_parent.reset();  // EOF for the program
  }

  // Reads what is available now; closes the fd at EOF. Keeps at most limits.output_bytes of stdout + stderr.
  void pump(UniqueFd& fd, std::string& target) {
    std::array<char, kReadChunkBytes> buffer;
    for (int rounds = 0; fd.valid() && rounds < 64; ++rounds) {
      const ssize_t size = read(fd.get(), buffer.data(), buffer.size());
      if (size < 0 && errno == EINTR) continue;
      if (size < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (size <= 0) {
        fd.reset();
        return;
      }
      const std::size_t kept = result_.stdout_data.size() + result_.stderr_data.size();
      const std::size_t room = request_.limits.output_bytes - std::min(kept, request_.limits.output_bytes);
      const auto got = static_cast<std::size_t>(size);
      target.append(buffer.data(), std::min(got, room));
      if (got > room) {
        result_.output_truncated = true;
        return;
      }
    }
  }

  void read_reports() {
    std::array<char, sizeof(ChildReport) * 8> buffer;
    while (pipes_.report_read.valid()) {
      const ssize_t size = read(pipes_.report_read.get(), buffer.data(), buffer.size());
      if (size < 0 && errno == EINTR) continue;
      if (size < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (size <= 0) {
        pipes_.report_read.reset();
        break;
      }
      report_bytes_.append(buffer.data(), static_cast<std::size_t>(size));
    }
    while (report_bytes_.size() >= sizeof(ChildReport)) {  // records are written whole (< PIPE_BUF)
      ChildReport report;
      std::memcpy(&report, report_bytes_.data(), sizeof report);
      report_bytes_.erase(0, sizeof report);
      reports_.push_back(report);
    }
  }

  // With a PID namespace, SIGKILL to init kills the whole run. Without one, init must kill the descendants itself:
  // SIGTERM asks it to, SIGKILL follows if it does not manage within kStopGrace.
  void stop_init() {
    const bool has_pid_namespace = mode_ != IsolationMode::kProcessGroup;
    syscall(SYS_pidfd_send_signal, init_.pidfd.get(), has_pid_namespace ? SIGKILL : SIGTERM, nullptr, 0);
    const auto escalate_at = Clock::now() + kStopGrace;
    bool escalated = has_pid_namespace;
    for (;;) {
      pollfd exited = {init_.pidfd.get(), POLLIN, 0};
      const int ready = poll(&exited, 1, 100);
      if (ready > 0) return;
      if (ready < 0 && errno != EINTR) return;
      if (!escalated && Clock::now() >= escalate_at) {
        syscall(SYS_pidfd_send_signal, init_.pidfd.get(), SIGKILL, nullptr, 0);
        escalated = true;
      }
    }
  }

  const SandboxRequest& request_;
  IsolationMode mode_;
  Init& init_;
  Pipes& pipes_;
  SandboxResult& result_;
  std::size_t stdin_offset_ = 0;
  std::string report_bytes_;
  std::vector<ChildReport> reports_;
};

// ---------------------------------------------------------------------------------------------------------------------
// Putting the result together.

std::string describe_setup_failure(const ChildReport& report, const std::string& program, const std::string& workdir,
                                   const ChildPlan& plan) {
  const std::string error = errno_text(report.error);
  const auto detail = static_cast<std::size_t>(std::max(report.detail, 0));
  std::string what;
  switch (report.step) {
    case SetupStep::kExec:
      return fmt::format("exec {}: {}", program, error);
    case SetupStep::kArrangeFds:
      what = "arranging file descriptors";
      break;
    case SetupStep::kSetgroupsDeny:
      what = "write /proc/self/setgroups";
      break;
    case SetupStep::kUidMap:
      what = "write /proc/self/uid_map";
      break;
    case SetupStep::kGidMap:
      what = "write /proc/self/gid_map";
      break;
    case SetupStep::kCloneWorkdir:
      what = fmt::format("open_tree({})", workdir);
      break;
    case SetupStep::kMountPrivate:
      what = "mount --make-rprivate /";
      break;
    case SetupStep::kMountScratch:
      what = fmt::format("mount tmpfs on {}", detail < kScratchDirs.size() ? kScratchDirs[detail] : "?");
      break;
    case SetupStep::kMoveWorkdir:
      what = fmt::format("mount the working directory on {}", workdir);
      break;
    case SetupStep::kChdir:
      what = fmt::format("chdir {}", workdir);
      break;
    case SetupStep::kSpawn:
      what = "clone the program process";
      break;
    case SetupStep::kSetsid:
      what = "setsid";
      break;
    case SetupStep::kSetrlimit:
      what = fmt::format("setrlimit({})", detail < kRlimitNames.size() ? kRlimitNames[detail] : "?");
      break;
    case SetupStep::kSetgroups:
      what = "setgroups(0)";
      break;
    case SetupStep::kSetresgid:
      what = fmt::format("setresgid({})", plan.gid);
      break;
    case SetupStep::kSetresuid:
      what = fmt::format("setresuid({})", plan.uid);
      break;
    case SetupStep::kNoNewPrivs:
      what = "prctl(PR_SET_NO_NEW_PRIVS)";
      break;
    case SetupStep::kSeccomp:
      what = "install the seccomp filter";
      break;
  }
  return fmt::format("sandbox setup: {}: {}", what, error);
}

std::string describe_isolation(IsolationMode mode, std::int64_t bits, const ChildPlan& plan, std::size_t tmpfs_size,
                               const std::string& no_namespaces_reason) {
  std::vector<std::string> parts;
  switch (mode) {
    case IsolationMode::kRootNamespaces:
      parts.emplace_back("namespaces: pid mount net ipc");
      break;
    case IsolationMode::kUserNamespaces:
      parts.emplace_back("namespaces: user pid mount net ipc");
      break;
    case IsolationMode::kProcessGroup:
      parts.push_back(fmt::format("no namespaces ({}); process group and subreaper kill", no_namespaces_reason));
      break;
  }
  parts.push_back(plan.drop_privileges ? fmt::format("uid {}", plan.uid)
                                       : fmt::format("uid {} (the trainer's)", geteuid()));
  std::string scratch;
  for (std::size_t i = 0; i < kScratchDirs.size(); ++i) {
    if ((bits & (kScratchTmpfsFirstBit << i)) != 0) scratch += fmt::format(" {}", kScratchDirs[i]);
  }
  if (!scratch.empty()) parts.push_back("tmpfs" + scratch);
  if ((bits & kWorkdirTmpfsBit) != 0) parts.push_back(fmt::format("workdir tmpfs {} MiB", tmpfs_size >> 20));
  if ((bits & kReadOnlyRootBit) != 0) parts.emplace_back("read-only /");
  if ((bits & kPrivateProcBit) != 0) parts.emplace_back("private /proc");
  if ((bits & kOomScoreBit) != 0) parts.emplace_back("oom_score_adj 1000");
  parts.emplace_back("seccomp");
  parts.emplace_back("rlimits");
  std::string text;
  for (const std::string& part : parts) text += (text.empty() ? "" : "; ") + part;
  return text;
}

void classify_program_end(const ChildReport& ended, const SandboxLimits& limits, SandboxResult& result) {
  const int status = static_cast<int>(ended.value);
  if (WIFEXITED(status)) {
    result.status = SandboxStatus::kExited;
    result.exit_code = WEXITSTATUS(status);
    return;
  }
  const int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  result.signal = sig;
  const auto cpu_limit_micros = static_cast<std::int64_t>(whole_cpu_seconds(limits.cpu_seconds)) * 1'000'000;
  if (sig == SIGXCPU || (sig == SIGKILL && ended.cpu_micros >= cpu_limit_micros)) {
    result.status = SandboxStatus::kCpuTime;
  } else if (sig == SIGXFSZ) {
    result.status = SandboxStatus::kOutputLimit;
  } else {
    result.status = SandboxStatus::kSignaled;
  }
}

// The status from what the children reported and why the trainer stopped the run.
void settle_status(const std::vector<ChildReport>& reports, StopReason stop, int init_status,
                   const SandboxLimits& limits, const std::string& program, const std::string& workdir,
                   const ChildPlan& plan, SandboxResult& result) {
  const ChildReport* setup_failure = nullptr;
  const ChildReport* ended = nullptr;
  for (const ChildReport& report : reports) {
    if (report.kind == ChildReport::Kind::kSetupFailed && setup_failure == nullptr) setup_failure = &report;
    if (report.kind == ChildReport::Kind::kProgramEnded) ended = &report;
  }
  if (setup_failure != nullptr) {
    result.status = SandboxStatus::kSandboxError;
    result.error = describe_setup_failure(*setup_failure, program, workdir, plan);
  } else if (stop == StopReason::kOutputLimit || result.output_truncated) {  // the latter: seen only after the end
    result.status = SandboxStatus::kOutputLimit;
    result.signal = stop == StopReason::kOutputLimit ? SIGKILL : 0;
  } else if (stop == StopReason::kWallTimeout) {
    result.status = SandboxStatus::kWallTimeout;
    result.signal = SIGKILL;
  } else if (ended != nullptr) {
    classify_program_end(*ended, limits, result);
  } else if (WIFSIGNALED(init_status)) {
    // Killed by someone else than the trainer, the OOM killer most likely; the run died with it.
    result.status = SandboxStatus::kSignaled;
    result.signal = WTERMSIG(init_status);
  } else {
    result.status = SandboxStatus::kSandboxError;
    result.error =
        fmt::format("sandbox init ended without reporting the program's end (wait status {:#x})", init_status);
  }
}

SandboxResult sandbox_error(std::string message) {
  SandboxResult result;
  result.status = SandboxStatus::kSandboxError;
  result.error = std::move(message);
  return result;
}

}  // namespace

std::string_view sandbox_status_name(SandboxStatus status) {
  switch (status) {
    case SandboxStatus::kExited:
      return "exited";
    case SandboxStatus::kSignaled:
      return "signaled";
    case SandboxStatus::kCpuTime:
      return "cpu_time";
    case SandboxStatus::kWallTimeout:
      return "wall_timeout";
    case SandboxStatus::kOutputLimit:
      return "output_limit";
    case SandboxStatus::kSandboxError:
      return "sandbox_error";
  }
  return "unknown";
}

SandboxResult run_sandboxed(const SandboxRequest& request) {
  const Clock::time_point started = Clock::now();
  if (std::string problem = validate_request(request); !problem.empty()) return sandbox_error(std::move(problem));
  const std::vector<std::string> probe_env = sandbox_environment(request, "");
  const std::string_view path = *env_value(probe_env, "PATH");
  const std::optional<std::string> program = resolve_program(request.argv[0], path);
  if (!program) return sandbox_error(fmt::format("program '{}' not found on PATH {}", request.argv[0], path));

  const bool root = geteuid() == 0;
  UidLease lease;
  if (root) {
    if (std::string problem = lease.acquire(); !problem.empty()) return sandbox_error(std::move(problem));
  }
  Pipes pipes;
  if (std::string problem = make_pipes(pipes); !problem.empty()) return sandbox_error(std::move(problem));

  WorkDir workdir;
  std::optional<LaunchPlan> launch;
  std::optional<Init> init;
  std::string no_namespaces_reason;
  if (std::string problem =
          launch_init(request, *program, root, lease, pipes, workdir, launch, init, no_namespaces_reason);
      !problem.empty()) {
    return sandbox_error(std::move(problem));
  }
  // Only the children hold these ends now, so EOF on the pipes means the run's processes are gone.
  pipes.stdin_child.reset();
  pipes.stdout_write.reset();
  pipes.stderr_write.reset();
  pipes.report_write.reset();

  SandboxResult result;
  const double wall_limit =
      std::isnan(request.limits.wall_seconds) ? 0.0 : std::clamp(request.limits.wall_seconds, 0.0, 1e7);
  const auto deadline =
      started + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(wall_limit));
  const ChildPlan& plan = launch->child();
  RunMonitor monitor(request, plan.mode, *init, pipes, result);
  const StopReason stop = monitor.run(deadline);

  int init_status = 0;
  rusage usage = {};
  while (wait4(init->pid, &init_status, __WALL, &usage) < 0 && errno == EINTR) {
  }
  result.wall_seconds = std::chrono::duration<double>(Clock::now() - started).count();
  result.cpu_seconds = static_cast<double>(cpu_micros(usage)) / 1e6;
  result.max_rss_bytes = static_cast<std::size_t>(usage.ru_maxrss) * 1024;
  settle_status(monitor.reports(), stop, init_status, request.limits, *program, workdir.path(), plan, result);
  std::int64_t isolation_bits = 0;
  for (const ChildReport& report : monitor.reports()) {
    if (report.kind == ChildReport::Kind::kIsolation) isolation_bits = report.value;
  }
  result.isolation = describe_isolation(plan.mode, isolation_bits, plan, workdir.tmpfs_size(), no_namespaces_reason);
  result.collected = collect_files(workdir.files_fd(), request.collect, request.limits.file_size_bytes);
  return result;
}

}  // namespace grpo::reward
