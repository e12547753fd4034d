// The sandbox against hostile programs: fork bombs, memory and output bombs, busy loops, sleepers, escaped children,
// writes outside the working directory, network access, signals to other processes, snooping on the trainer's
// environment, bad requests, parallel runs and file collection. Every test runs real programs (python3, sh) and checks
// the precise outcome, that nothing of the run is left running afterwards, and that the host is unaffected.
//
// Processes of a run are found afterwards by a marker: each request sets GRPO_SANDBOX_TEST_MARK=<random token> in the
// program's environment, which all its descendants inherit, and the test scans /proc/*/environ for it (root reads all).
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "reward/sandbox.h"

extern char** environ;

namespace grpo::reward {
namespace {

constexpr const char* kPython = "/usr/bin/python3";
constexpr const char* kMarkerName = "GRPO_SANDBOX_TEST_MARK";

std::string random_token() {
  static std::mt19937_64 generator{std::random_device{}()};
  std::ostringstream out;
  out << std::hex << generator();
  return out.str();
}

// Small limits so that the hostile tests end quickly.
SandboxLimits quick_limits() {
  SandboxLimits limits;
  limits.cpu_seconds = 2;
  limits.wall_seconds = 5;
  limits.address_space_bytes = 512ull << 20;
  limits.file_size_bytes = 1ull << 20;
  limits.output_bytes = 1ull << 20;
  limits.open_files = 64;
  limits.processes = 32;
  return limits;
}

struct MarkedRequest {
  SandboxRequest request;
  std::string marker;  // "GRPO_SANDBOX_TEST_MARK=<token>"
};

MarkedRequest marked(std::vector<std::string> argv, SandboxLimits limits = quick_limits()) {
  MarkedRequest marked_request;
  marked_request.marker = std::string(kMarkerName) + "=" + random_token();
  marked_request.request.argv = std::move(argv);
  marked_request.request.env = {marked_request.marker};
  marked_request.request.limits = limits;
  return marked_request;
}

MarkedRequest python(std::string code, std::vector<std::string> args = {}, SandboxLimits limits = quick_limits()) {
  std::vector<std::string> argv = {kPython, "-c", std::move(code)};
  argv.insert(argv.end(), args.begin(), args.end());
  return marked(std::move(argv), limits);
}

MarkedRequest shell(std::string script, SandboxLimits limits = quick_limits()) {
  return marked({"/bin/sh", "-c", std::move(script)}, limits);
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> split_nul(const std::string& text) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(text);
  while (std::getline(in, part, '\0')) parts.push_back(part);
  return parts;
}

// Live processes (not zombies) whose environment holds `entry` exactly.
std::vector<pid_t> processes_with_environment_entry(const std::string& entry) {
  std::vector<pid_t> found;
  std::error_code error;
  for (const auto& dir : std::filesystem::directory_iterator("/proc", error)) {
    const std::string name = dir.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    const std::vector<std::string> env = split_nul(read_file(dir.path() / "environ"));
    if (std::find(env.begin(), env.end(), entry) != env.end()) found.push_back(std::stoi(name));
  }
  return found;
}

// Processes whose command line is exactly `argv`.
std::vector<pid_t> processes_with_command_line(const std::vector<std::string>& argv) {
  std::vector<pid_t> found;
  std::error_code error;
  for (const auto& dir : std::filesystem::directory_iterator("/proc", error)) {
    const std::string name = dir.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    if (split_nul(read_file(dir.path() / "cmdline")) == argv) found.push_back(std::stoi(name));
  }
  return found;
}

// The run's processes must all be gone the moment run_sandboxed returns.
void expect_nothing_left(const MarkedRequest& run) {
  EXPECT_EQ(processes_with_environment_entry(run.marker), std::vector<pid_t>{}) << "processes of the run still exist";
}

bool has_namespaces(const SandboxResult& result) { return result.isolation.starts_with("namespaces:"); }

// Isolation this machine gives, from one trivial run (cached).
const std::string& machine_isolation() {
  static const std::string isolation = [] {
    SandboxRequest request;
    request.argv = {"/bin/true"};
    return run_sandboxed(request).isolation;
  }();
  return isolation;
}

bool namespaces_available() { return machine_isolation().starts_with("namespaces:"); }

// The uid the program ran as, from "uid N" in the isolation text.
long sandbox_uid(const SandboxResult& result) {
  const std::size_t at = result.isolation.find("uid ");
  return at == std::string::npos ? -1 : std::strtol(result.isolation.c_str() + at + 4, nullptr, 10);
}

// The host can still create processes.
void expect_host_can_fork() {
  const pid_t child = fork();
  ASSERT_GE(child, 0) << "fork failed on the host: " << std::strerror(errno);
  if (child == 0) _exit(42);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 42);
}

pid_t spawn_host_sleeper() {
  pid_t pid = -1;
  char sleep_path[] = "/bin/sleep";
  char seconds[] = "30";
  char* const argv[] = {sleep_path, seconds, nullptr};
  EXPECT_EQ(posix_spawn(&pid, sleep_path, nullptr, nullptr, argv, environ), 0);
  return pid;
}

bool still_running(pid_t pid) {
  int status = 0;
  return waitpid(pid, &status, WNOHANG) == 0 && kill(pid, 0) == 0;
}

// The first line of the program's stdout: the working directory, printed by the program.
std::filesystem::path first_line(const SandboxResult& result) {
  return result.stdout_data.substr(0, result.stdout_data.find('\n'));
}

// --------------------------------------------------------------------------------------------------------------------
// 1. Normal runs

TEST(Sandbox, RunsPythonWithStdinAndAScrubbedEnvironment) {
  setenv("GRPO_SECRET_TEST", "hunter2", 1);
  MarkedRequest run = python(R"(
import os, sys
print(sys.stdin.read()[::-1])
print(sorted(k for k in os.environ if k != 'GRPO_SANDBOX_TEST_MARK'))
print(os.environ.get('GRPO_SECRET_TEST', 'absent'))
try:
    open('/proc/%s/environ' % sys.argv[1], 'rb').read()
    print('parent environ readable')
except OSError:
    print('parent environ unreadable')
print(os.environ['HOME'] == os.environ['TMPDIR'] == os.getcwd(), os.environ['LANG'], os.environ['PATH'])
sys.exit(3)
)",
                             {std::to_string(getpid())});
  run.request.stdin_data = "abc\ndef";
  const SandboxResult result = run_sandboxed(run.request);
  unsetenv("GRPO_SECRET_TEST");

  EXPECT_EQ(result.status, SandboxStatus::kExited) << result.error << result.stderr_data;
  EXPECT_EQ(result.exit_code, 3);
  // Unreadable through a PID namespace or a uid other than ours; only the weakest fallback (not root, no user
  // namespaces: the same uid, the same PID namespace) can read it, as the isolation text then says.
  const bool isolated = geteuid() == 0 || has_namespaces(result);
  EXPECT_EQ(result.stdout_data, std::string("fed\ncba\n['HOME', 'LANG', 'PATH', 'TMPDIR']\nabsent\n") +
                                    (isolated ? "parent environ unreadable\n" : "parent environ readable\n") +
                                    "True C.UTF-8 /usr/local/bin:/usr/bin:/bin\n")
      << result.isolation;
  EXPECT_EQ(result.stderr_data, "");
  EXPECT_FALSE(result.output_truncated);
  EXPECT_GT(result.wall_seconds, 0.0);
  EXPECT_GT(result.max_rss_bytes, 0u);
  expect_nothing_left(run);
}

TEST(Sandbox, EnvironmentIsExactlyTheRequestPlusDefaults) {
  // env(1) prints its environment as it is (python would add LC_CTYPE for LANG=C).
  MarkedRequest run = marked({"/usr/bin/env"});
  run.request.env = {"FOO=bar", "PATH=/bin", "LANG=C"};
  const SandboxResult result = run_sandboxed(run.request);
  ASSERT_EQ(result.status, SandboxStatus::kExited) << result.error << result.stderr_data;
  const std::string home = result.stdout_data.substr(result.stdout_data.find("HOME="));
  const std::string workdir = home.substr(5, home.find('\n') - 5);
  EXPECT_TRUE(workdir.starts_with(std::filesystem::temp_directory_path().string())) << workdir;
  EXPECT_EQ(result.stdout_data, "FOO=bar\nPATH=/bin\nLANG=C\nHOME=" + workdir + "\nTMPDIR=" + workdir + "\n");
}

TEST(Sandbox, ReportsExitCodesSignalsAndStatusNames) {
  const SandboxResult exited = run_sandboxed(shell("exit 7").request);
  EXPECT_EQ(exited.status, SandboxStatus::kExited);
  EXPECT_EQ(exited.exit_code, 7);

  // The program is not pid 1 of its namespace: signals it sends itself act as usual.
  const SandboxResult aborted = run_sandboxed(python("import os\nos.abort()").request);
  EXPECT_EQ(aborted.status, SandboxStatus::kSignaled);
  EXPECT_EQ(aborted.signal, SIGABRT);
  const SandboxResult terminated = run_sandboxed(shell("kill -TERM $$; sleep 5").request);
  EXPECT_EQ(terminated.status, SandboxStatus::kSignaled);
  EXPECT_EQ(terminated.signal, SIGTERM);

  EXPECT_EQ(sandbox_status_name(SandboxStatus::kExited), "exited");
  EXPECT_EQ(sandbox_status_name(SandboxStatus::kSignaled), "signaled");
  EXPECT_EQ(sandbox_status_name(SandboxStatus::kCpuTime), "cpu_time");
  EXPECT_EQ(sandbox_status_name(SandboxStatus::kWallTimeout), "wall_timeout");
  EXPECT_EQ(sandbox_status_name(SandboxStatus::kOutputLimit), "output_limit");
  EXPECT_EQ(sandbox_status_name(SandboxStatus::kSandboxError), "sandbox_error");
}

TEST(Sandbox, RunsRequestFilesAndLargeStdin) {
  MarkedRequest run = marked({"./run.sh"});
  run.request.files = {
      {.name = "run.sh", .content = "#!/bin/sh\ncat data.txt\nexec python3 main.py\n", .executable = true},
      {.name = "data.txt", .content = "from a file\n", .executable = false},
      {.name = "main.py", .content = "import sys\nsys.stdout.write(sys.stdin.read())\n"}};
  run.request.stdin_data = std::string(2u << 20, 'z');  // more than any pipe buffer: fed while output is read
  run.request.limits.output_bytes = 4u << 20;
  const SandboxResult result = run_sandboxed(run.request);
  ASSERT_EQ(result.status, SandboxStatus::kExited) << result.error << result.stderr_data;
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.stdout_data, "from a file\n" + run.request.stdin_data);
}

TEST(Sandbox, StdinForAProgramThatNeverReadsItDoesNotHurtTheHost) {
  MarkedRequest run = shell("exit 0");
  run.request.stdin_data = std::string(8u << 20, 'q');  // the trainer must not get SIGPIPE
  const SandboxResult result = run_sandboxed(run.request);
  EXPECT_EQ(result.status, SandboxStatus::kExited);
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_LT(result.wall_seconds, 2.0);
}

TEST(Sandbox, RootRunsTheProgramAsAnUnprivilegedUser) {
  if (geteuid() != 0) GTEST_SKIP() << "dropping to a sandbox uid is the root path; not running as root";
  const MarkedRequest run = shell("id -u; id -g; id -G; touch /etc/grpo_sandbox_probe 2>/dev/null || echo denied");
  const SandboxResult result = run_sandboxed(run.request);
  ASSERT_EQ(result.status, SandboxStatus::kExited) << result.error;
  const long uid = sandbox_uid(result);
  EXPECT_GT(uid, 0) << result.isolation;
  const std::string id = std::to_string(uid);
  EXPECT_EQ(result.stdout_data, id + "\n" + id + "\n" + id + "\ndenied\n");  // no supplementary groups either
  EXPECT_NE(result.isolation.find("seccomp; rlimits"), std::string::npos) << result.isolation;
  EXPECT_FALSE(std::filesystem::exists("/etc/grpo_sandbox_probe"));
}

TEST(Sandbox, RootRunsHaveEveryNamespaceAndPrivateMount) {
  if (geteuid() != 0) GTEST_SKIP() << "the root path; not running as root";
  if (!namespaces_available()) GTEST_SKIP() << "root without the right to create namespaces: " << machine_isolation();
  const MarkedRequest run = shell("grep -c . /proc/net/dev; ls /proc | grep -c '^[0-9]'");
  const SandboxResult result = run_sandboxed(run.request);
  ASSERT_EQ(result.status, SandboxStatus::kExited) << result.error;
  EXPECT_TRUE(result.isolation.starts_with("namespaces: pid mount net ipc; uid ")) << result.isolation;
  for (const char* part : {"; tmpfs /tmp /var/tmp /run/lock /dev/shm;", "; workdir tmpfs ", "; read-only /;",
                           "; private /proc;", "; oom_score_adj 1000;", "; seccomp; rlimits"}) {
    EXPECT_NE(result.isolation.find(part), std::string::npos) << part << " missing in " << result.isolation;
  }
  // /proc/net/dev: two header lines and lo only. /proc: the shell and grep, and ls (init is hidden from the program).
  EXPECT_EQ(result.stdout_data, "3\n3\n");
}

// --------------------------------------------------------------------------------------------------------------------
// 2. Fork bombs

TEST(Sandbox, PythonForkBombEndsAndLeavesNothing) {
  MarkedRequest run = python("import os\nwhile True:\n    os.fork()\n");
  run.request.limits.wall_seconds = 3;
  const SandboxResult result = run_sandboxed(run.request);
  // Forks fail at RLIMIT_NPROC (BlockingIOError: exit 1), or the CPU or wall limit ends it.
  EXPECT_TRUE((result.status == SandboxStatus::kExited && result.exit_code != 0) ||
              result.status == SandboxStatus::kCpuTime || result.status == SandboxStatus::kWallTimeout)
      << sandbox_status_name(result.status) << " " << result.error;
  EXPECT_LT(result.wall_seconds, 4.0);
  expect_nothing_left(run);
  expect_host_can_fork();
}

TEST(Sandbox, ShellForkBombEndsAtTheWallLimitAndLeavesNothing) {
  // The bomb's processes are orphans at once; the shell spins (no forks needed) until the wall limit ends the run.
  MarkedRequest run = shell("b() { b | b & }; b; while :; do :; done");
  run.request.limits.wall_seconds = 1.5;
  const SandboxResult result = run_sandboxed(run.request);
  EXPECT_EQ(result.status, SandboxStatus::kWallTimeout) << sandbox_status_name(result.status) << " " << result.error;
  EXPECT_GE(result.wall_seconds, 1.5);
  EXPECT_LT(result.wall_seconds, 3.0);
  expect_nothing_left(run);
  expect_host_can_fork();
}

// --------------------------------------------------------------------------------------------------------------------
// 3. Memory bomb

TEST(Sandbox, MemoryBombFailsItsAllocationsInsteadOfHurtingTheHost) {
  SandboxLimits limits = quick_limits();
  limits.address_space_bytes = 256ull << 20;
  const MarkedRequest run = python(R"(
blocks = []
for _ in range(160):  # 10 GiB in 64 MiB blocks
    blocks.append(bytearray(64 << 20))
print('allocated 10 GiB')
)",
                                   {}, limits);
  const SandboxResult result = run_sandboxed(run.request);
  EXPECT_TRUE((result.status == SandboxStatus::kExited && result.exit_code != 0) ||
              result.status == SandboxStatus::kSignaled)
      << sandbox_status_name(result.status);
  EXPECT_NE(result.stderr_data.find("MemoryError"), std::string::npos) << result.stderr_data;
  EXPECT_EQ(result.stdout_data, "");
  EXPECT_LT(result.max_rss_bytes, std::size_t{256} << 20);
  expect_nothing_left(run);
  expect_host_can_fork();
}

TEST(Sandbox, RunsAreTheOomKillersFirstChoice) {
  // RLIMIT_AS is per process; should many processes exhaust memory together, the kernel kills the run, not the trainer.
  const MarkedRequest run = python(R"(
import os
print(open('/proc/self/oom_score_adj').read().strip())
try:
    fd = os.open('/proc/self/oom_score_adj', os.O_WRONLY)
    os.write(fd, b'0')
    print('lowered')
except OSError:
    print('refused')
)");
  const SandboxResult result = run_sandboxed(run.request);
  ASSERT_EQ(result.status, SandboxStatus::kExited) << result.error << result.stderr_data;
  EXPECT_TRUE(result.stdout_data.starts_with("1000\n")) << result.stdout_data;
  // Inside the namespaces /proc is read-only. Without them only a trainer with CAP_SYS_RESOURCE pins the value (the
  // kernel's oom_score_adj_min), so there it may come down again.
  if (namespaces_available()) {
    EXPECT_EQ(result.stdout_data, "1000\nrefused\n");
  }
}

// --------------------------------------------------------------------------------------------------------------------
// 4. Time limits

TEST(Sandbox, BusyLoopHitsTheCpuLimit) {
  SandboxLimits limits = quick_limits();
  limits.cpu_seconds = 1;
  limits.wall_seconds = 5;
  const MarkedRequest run = python("while True:\n    pass\n", {}, limits);
  const SandboxResult result = run_sandboxed(run.request);
  EXPECT_EQ(result.status, SandboxStatus::kCpuTime) << sandbox_status_name(result.status);
  EXPECT_EQ(result.signal, SIGXCPU);
  EXPECT_GE(result.cpu_seconds, 0.9);
  EXPECT_LT(result.wall_seconds, 4.5);  // about 1 s on an idle machine; well before the 5 s wall limit
  expect_nothing_left(run);
}

TEST(Sandbox, IgnoringSigxcpuStillEndsAtTheHardCpuLimit) {
  SandboxLimits limits = quick_limits();
  limits.cpu_seconds = 1;
  limits.wall_seconds = 15;  // 2 s of CPU can take a while when ctest -j shares the cores
  const MarkedRequest run =
      python("import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True:\n    pass\n", {}, limits);
  const SandboxResult result = run_sandboxed(run.request);
  EXPECT_EQ(result.status, SandboxStatus::kCpuTime) << sandbox_status_name(result.status);
  EXPECT_EQ(result.signal, SIGKILL);  // RLIMIT_CPU's hard limit, a second after the soft one
  EXPECT_GE(result.cpu_seconds, 1.9);
  expect_nothing_left(run);
}

TEST(Sandbox, SleeperHitsTheWallLimit) {
  SandboxLimits limits = quick_limits();
  limits.wall_seconds = 1;
  const MarkedRequest run = python("import time\ntime.sleep(100)\n", {}, limits);
  const SandboxResult result = run_sandboxed(run.request);
  EXPECT_EQ(result.status, SandboxStatus::kWallTimeout) << sandbox_status_name(result.status);
  EXPECT_EQ(result.signal, SIGKILL);
  EXPECT_GE(result.wall_seconds, 1.0);
  EXPECT_LT(result.wall_seconds, 1.8);
  expect_nothing_left(run);
}

// --------------------------------------------------------------------------------------------------------------------
// 5. Children left behind

TEST(Sandbox, ChildrenLeftBehindAreKilledWhenTheProgramExits) {
  const std::string seconds = "1000." + std::to_string(std::random_device{}() % 1000000);
  const MarkedRequest run = python(R"(
import os, subprocess, sys, time
seconds = sys.argv[1]
subprocess.Popen(['sleep', seconds])                          # a plain child
subprocess.Popen(['sleep', seconds], start_new_session=True)  # one that called setsid()
if os.fork() == 0:                                            # a double-forked daemon
    os.setsid()
    if os.fork() == 0:
        os.execvp('sleep', ['sleep', seconds])
    os._exit(0)
wanted = ('sleep\0' + seconds + '\0').encode()
for _ in range(200):  # exit only once all three sleep
    running = 0
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            running += open('/proc/%s/cmdline' % pid, 'rb').read() == wanted
        except OSError:
            pass
    if running == 3:
        break
    time.sleep(0.01)
print('sleeping', running)
)",
                                   {seconds});
  const SandboxResult result = run_sandboxed(run.request);
  EXPECT_EQ(result.status, SandboxStatus::kExited) << result.error << result.stderr_data;
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.stdout_data, "sleeping 3\n");
  EXPECT_EQ(processes_with_command_line({"sleep", seconds}), std::vector<pid_t>{}) << "a sleeper survived the run";
  expect_nothing_left(run);
}

// --------------------------------------------------------------------------------------------------------------------
// 6. Output and file size

TEST(Sandbox, FloodingStdoutHitsTheOutputLimit) {
  const MarkedRequest run = python("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n");
  const SandboxResult result = run_sandboxed(run.request);
  EXPECT_EQ(result.status, SandboxStatus::kOutputLimit) << sandbox_status_name(result.status);
  EXPECT_TRUE(result.output_truncated);
  EXPECT_EQ(result.stdout_data.size(), run.request.limits.output_bytes);
  EXPECT_EQ(result.stdout_data.find_first_not_of('x'), std::string::npos);
  EXPECT_LT(result.wall_seconds, 2.0);
  expect_nothing_left(run);
}

TEST(Sandbox, StdoutAndStderrShareTheOutputLimit) {
  const MarkedRequest run =
      python("import sys\nwhile True:\n    sys.stdout.write('o' * 4096)\n    sys.stderr.write('e' * 4096)\n");
  const SandboxResult result = run_sandboxed(run.request);
  EXPECT_EQ(result.status, SandboxStatus::kOutputLimit);
  EXPECT_TRUE(result.output_truncated);
  EXPECT_EQ(result.stdout_data.size() + result.stderr_data.size(), run.request.limits.output_bytes);
  EXPECT_GT(result.stderr_data.size(), 0u);
}

TEST(Sandbox, OutputUpToTheLimitIsKeptWhole) {
  MarkedRequest run = python("import sys\nsys.stdout.write('y' * 1000)\n");
  run.request.limits.output_bytes = 1000;
  const SandboxResult result = run_sandboxed(run.request);
  EXPECT_EQ(result.status, SandboxStatus::kExited);
  EXPECT_FALSE(result.output_truncated);
  EXPECT_EQ(result.stdout_data, std::string(1000, 'y'));
}

TEST(Sandbox, GigabyteFileFromPythonFailsAtTheFileSizeLimit) {
  // Python ignores SIGXFSZ, so the write fails with EFBIG and the program exits with an error.
  const MarkedRequest run = python(R"(
import os
print(os.getcwd(), flush=True)
with open('big', 'wb') as f:
    for _ in range(1024):
        f.write(b'\0' * (1 << 20))
)");
  const SandboxResult result = run_sandboxed(run.request);
  EXPECT_TRUE((result.status == SandboxStatus::kExited && result.exit_code != 0) ||
              result.status == SandboxStatus::kOutputLimit)
      << sandbox_status_name(result.status);
  EXPECT_NE(result.stderr_data.find("File too large"), std::string::npos) << result.stderr_data;
  EXPECT_LT(result.wall_seconds, 2.0);
  const std::filesystem::path workdir = first_line(result);
  EXPECT_TRUE(workdir.is_absolute()) << workdir;
  EXPECT_FALSE(std::filesystem::exists(workdir)) << "the working directory was not removed";
  expect_nothing_left(run);
}

TEST(Sandbox, GigabyteFileFromHeadIsKilledBySigxfsz) {
  const MarkedRequest run = shell("pwd; exec head -c 1073741824 /dev/zero > big");
  const SandboxResult result = run_sandboxed(run.request);
  EXPECT_EQ(result.status, SandboxStatus::kOutputLimit) << sandbox_status_name(result.status) << result.stderr_data;
  EXPECT_EQ(result.signal, SIGXFSZ);
  EXPECT_FALSE(result.output_truncated);
  const std::filesystem::path workdir = first_line(result);
  EXPECT_TRUE(workdir.is_absolute()) << workdir;
  EXPECT_FALSE(std::filesystem::exists(workdir)) << "the working directory was not removed";
}

// --------------------------------------------------------------------------------------------------------------------
// 7. Writing outside the working directory

TEST(Sandbox, WritesOutsideTheWorkingDirectoryNeverReachTheHost) {
  if (!namespaces_available()) {
    GTEST_SKIP() << "without a mount namespace the program shares the host's /tmp (" << machine_isolation() << ")";
  }
  const std::string token = random_token();
  const MarkedRequest run = python(R"(
import os, sys
print(os.getcwd())
name = 'grpo_escape_' + sys.argv[1]
for target in ['/tmp/', '/var/tmp/', '/run/lock/', '/dev/shm/', '/root/', '/etc/', '/', '../', '../../']:
    try:
        with open(target + name, 'w') as f:
            f.write('escaped')
        print('wrote', target)
    except OSError as error:
        print('refused', target, error.errno)
)",
                                   {token});
  const SandboxResult result = run_sandboxed(run.request);
  ASSERT_EQ(result.status, SandboxStatus::kExited) << result.error << result.stderr_data;
  const std::filesystem::path workdir = first_line(result);
  ASSERT_TRUE(workdir.is_absolute()) << result.stdout_data;
  const std::string name = "grpo_escape_" + token;
  for (const std::filesystem::path& dir :
       {std::filesystem::path("/tmp"), std::filesystem::path("/var/tmp"), std::filesystem::path("/run/lock"),
        std::filesystem::path("/dev/shm"), std::filesystem::path("/root"), std::filesystem::path("/etc"),
        std::filesystem::path("/"), workdir.parent_path(), workdir.parent_path().parent_path()}) {
    // A path the test cannot even stat (/root when not root) the program, never more privileged, cannot write.
    std::error_code unreadable;
    EXPECT_FALSE(std::filesystem::exists(dir / name, unreadable)) << "escaped to " << dir / name;
  }
  // Root-owned places are refused outright (the scratch directories are throwaway tmpfs mounts inside).
  EXPECT_NE(result.stdout_data.find("refused /etc/"), std::string::npos) << result.stdout_data;
  EXPECT_NE(result.stdout_data.find("refused /root/"), std::string::npos) << result.stdout_data;
  EXPECT_FALSE(std::filesystem::exists(workdir));
}

// --------------------------------------------------------------------------------------------------------------------
// 8. Network

class Listener {
 public:
  Listener(int domain, int type) : fd_(socket(domain, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) {}
  ~Listener() {
    if (fd_ >= 0) close(fd_);
  }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Binds to the loopback address on a free port; returns the port, 0 if this address family is unavailable.
  int bind_loopback() {
    if (fd_ < 0) return 0;
    sockaddr_storage address = {};
    socklen_t length = 0;
    if (domain() == AF_INET) {
      auto* v4 = reinterpret_cast<sockaddr_in*>(&address);
      v4->sin_family = AF_INET;
      v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      length = sizeof(sockaddr_in);
    } else {
      auto* v6 = reinterpret_cast<sockaddr_in6*>(&address);
      v6->sin6_family = AF_INET6;
      v6->sin6_addr = in6addr_loopback;
      length = sizeof(sockaddr_in6);
    }
    if (bind(fd_, reinterpret_cast<sockaddr*>(&address), length) != 0) return 0;
    if (type() == SOCK_STREAM && listen(fd_, 8) != 0) return 0;
    length = sizeof address;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    return ntohs(domain() == AF_INET ? reinterpret_cast<sockaddr_in*>(&address)->sin_port
                                     : reinterpret_cast<sockaddr_in6*>(&address)->sin6_port);
  }

  // Abstract Unix socket: `name` without the leading NUL.
  bool bind_abstract(const std::string& name) {
    sockaddr_un address = {};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path + 1, name.data(), name.size());
    const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    return bind(fd_, reinterpret_cast<sockaddr*>(&address), length) == 0 && listen(fd_, 8) == 0;
  }

  // Whether anything connected (stream) or arrived (datagram), without waiting.
  bool received_anything() const {
    if (fd_ < 0) return false;
    if (type() == SOCK_STREAM) {
      const int accepted = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (accepted >= 0) close(accepted);
      return accepted >= 0;
    }
    char byte = 0;
    return recv(fd_, &byte, 1, MSG_DONTWAIT) >= 0;
  }

 private:
  int option(int name) const {
    int value = 0;
    socklen_t length = sizeof value;
    getsockopt(fd_, SOL_SOCKET, name, &value, &length);
    return value;
  }
  int domain() const { return option(SO_DOMAIN); }
  int type() const { return option(SO_TYPE); }

  int fd_;
};

TEST(Sandbox, NetworkIsUnreachable) {
  Listener tcp4(AF_INET, SOCK_STREAM);
  Listener tcp6(AF_INET6, SOCK_STREAM);
  Listener udp4(AF_INET, SOCK_DGRAM);
  const int tcp4_port = tcp4.bind_loopback();
  const int tcp6_port = tcp6.bind_loopback();
  const int udp4_port = udp4.bind_loopback();
  ASSERT_GT(tcp4_port, 0);
  ASSERT_GT(udp4_port, 0);
  const MarkedRequest run = python(R"(
import socket, sys
tcp4, tcp6, udp4 = map(int, sys.argv[1:4])
def attempt(name, connect):
    try:
        connect()
        print(name, 'connected')
    except OSError as error:
        print(name, 'failed')
def connect_tcp4():
    socket.create_connection(('127.0.0.1', tcp4), timeout=1)
def connect_tcp6():
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.settimeout(1)
    s.connect(('::1', tcp6))
def send_udp4():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b'x', ('127.0.0.1', udp4))
attempt('tcp4', connect_tcp4)
attempt('tcp6', connect_tcp6)
attempt('udp4', send_udp4)
)",
                                   {std::to_string(tcp4_port), std::to_string(tcp6_port), std::to_string(udp4_port)});
  const SandboxResult result = run_sandboxed(run.request);
  ASSERT_EQ(result.status, SandboxStatus::kExited) << result.error << result.stderr_data;
  EXPECT_EQ(result.stdout_data, "tcp4 failed\ntcp6 failed\nudp4 failed\n");
  EXPECT_FALSE(tcp4.received_anything());
  EXPECT_FALSE(tcp6.received_anything());
  EXPECT_FALSE(udp4.received_anything());
}

TEST(Sandbox, HostAbstractUnixSocketsAreUnreachable) {
  if (!namespaces_available()) GTEST_SKIP() << "no network namespace here: " << machine_isolation();
  const std::string name = "grpo-sandbox-test-" + random_token();
  Listener host(AF_UNIX, SOCK_STREAM);
  ASSERT_TRUE(host.bind_abstract(name));
  const MarkedRequest run = python(R"(
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect('\0' + sys.argv[1])
    print('connected')
except OSError as error:
    print('failed', error.errno)
a, b = socket.socketpair()  # Unix sockets as such still work
a.sendall(b'ok')
print(b.recv(2).decode())
)",
                                   {name});
  const SandboxResult result = run_sandboxed(run.request);
  ASSERT_EQ(result.status, SandboxStatus::kExited) << result.error << result.stderr_data;
  EXPECT_EQ(result.stdout_data, "failed 111\nok\n");  // ECONNREFUSED: the name does not exist in its namespace
  EXPECT_FALSE(host.received_anything());
}

TEST(Sandbox, SeccompRefusesDangerousSystemCallsButNotForkOrThreads) {
  const MarkedRequest run = python(R"(
import ctypes, os, socket, threading
libc = ctypes.CDLL(None, use_errno=True)
def errno_of(result):
    return ctypes.get_errno() if result == -1 else 0
print('ptrace', errno_of(libc.ptrace(0, 0, None, None)))
print('unshare', errno_of(libc.unshare(0x10000000)))
print('mount', errno_of(libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)))
print('setns', errno_of(libc.setns(0, 0)))
print('io_uring_setup', errno_of(libc.syscall(425, 1, None)))
try:
    socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    print('netlink allowed')
except OSError as error:
    print('netlink', error.errno)
pid = os.fork()
if pid == 0:
    os._exit(5)
print('fork', os.waitpid(pid, 0)[1] >> 8)
t = threading.Thread(target=lambda: print('thread ran'))
t.start()
t.join()
)");
  const SandboxResult result = run_sandboxed(run.request);
  ASSERT_EQ(result.status, SandboxStatus::kExited) << result.error << result.stderr_data;
  EXPECT_EQ(result.stdout_data,
            "ptrace 1\nunshare 1\nmount 1\nsetns 1\nio_uring_setup 1\nnetlink 1\nfork 5\nthread ran\n");  // EPERM
}

// --------------------------------------------------------------------------------------------------------------------
// 9. Killing other processes

TEST(Sandbox, CannotKillTheTrainerOrOtherProcesses) {
  if (geteuid() != 0 && !namespaces_available()) {
    GTEST_SKIP() << "without root or user namespaces the program runs as the test's own uid (" << machine_isolation()
                 << ")";
  }
  const pid_t sleeper = spawn_host_sleeper();
  ASSERT_GT(sleeper, 0);
  // Another run in parallel: it must finish undisturbed.
  SandboxResult neighbour;
  const MarkedRequest neighbour_run = python("import time\ntime.sleep(1.0)\nprint('survived')\n");
  std::thread neighbour_thread([&] { neighbour = run_sandboxed(neighbour_run.request); });
  // Meanwhile the marker scan finds the neighbour's processes: the "nothing left" checks can see a run.
  bool neighbour_seen = false;
  for (int i = 0; i < 100 && !neighbour_seen; ++i) {
    neighbour_seen = !processes_with_environment_entry(neighbour_run.marker).empty();
    if (!neighbour_seen) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(neighbour_seen) << "the marker scan never saw the neighbour run";

  const MarkedRequest run = python(R"(
import os, signal, sys
targets = [int(sys.argv[1]), int(sys.argv[2]), 1, -1]
targets += [int(p) for p in os.listdir('/proc') if p.isdigit() and int(p) != os.getpid()]
for target in targets:
    try:
        os.kill(target, signal.SIGKILL)
    except OSError:
        pass
print('still here')
)",
                                   {std::to_string(getpid()), std::to_string(sleeper)});
  const SandboxResult result = run_sandboxed(run.request);
  neighbour_thread.join();

  EXPECT_EQ(result.status, SandboxStatus::kExited) << result.error << result.stderr_data;
  EXPECT_EQ(result.stdout_data, "still here\n");
  EXPECT_TRUE(still_running(sleeper)) << "the host's sleeper was killed";
  EXPECT_EQ(neighbour.status, SandboxStatus::kExited) << sandbox_status_name(neighbour.status);
  EXPECT_EQ(neighbour.stdout_data, "survived\n");
  kill(sleeper, SIGKILL);
  waitpid(sleeper, nullptr, 0);
  expect_nothing_left(run);
  expect_nothing_left(neighbour_run);
}

TEST(Sandbox, SignalsToInitDoNotEndTheRunWithoutAStatus) {
  // pid 1 is the sandbox's init: whatever the program sends it, the run ends with the program's own status.
  const MarkedRequest run =
      shell("for s in TERM INT HUP USR1 CHLD KILL; do kill -$s 1 2>/dev/null; done; echo done; exit 3");
  const SandboxResult result = run_sandboxed(run.request);
  EXPECT_EQ(result.status, SandboxStatus::kExited) << sandbox_status_name(result.status) << " " << result.error;
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_EQ(result.stdout_data, "done\n");
  expect_nothing_left(run);
}

// --------------------------------------------------------------------------------------------------------------------
// 10. The trainer's environment

TEST(Sandbox, TrainerEnvironmentIsInvisible) {
  if (geteuid() != 0 && !namespaces_available()) {
    GTEST_SKIP() << "without root or user namespaces the program runs as the test's own uid in its PID namespace ("
                 << machine_isolation() << ")";
  }
  // /proc/<pid>/environ shows the environment a process was started with (setenv does not change it). The secrets:
  // this process's own start-up environment (init, pid 1 of the sandbox, is a copy of it) and a host process started
  // with a secret in its environment.
  const std::string secret = "GRPO_SECRET_TEST=" + random_token();
  std::vector<std::string> secrets = {secret};
  for (const std::string& entry : split_nul(read_file("/proc/self/environ"))) {
    const std::string name = entry.substr(0, entry.find('='));
    if (name != "PATH" && name != "LANG" && name != "HOME" && name != "TMPDIR") secrets.push_back(entry);
  }
  ASSERT_GT(secrets.size(), 1u) << "this process's start-up environment is unreadable";
  pid_t holder = -1;
  char sleep_path[] = "/bin/sleep";
  char seconds[] = "30";
  char* const argv[] = {sleep_path, seconds, nullptr};
  char* const envp[] = {const_cast<char*>(secret.c_str()), nullptr};
  ASSERT_EQ(posix_spawn(&holder, sleep_path, nullptr, nullptr, argv, envp), 0);

  MarkedRequest run = python(R"(
import glob, os, sys
secrets = set(filter(None, sys.stdin.read().split('\0')))
paths = glob.glob('/proc/*/environ') + ['/proc/%s/environ' % pid for pid in sys.argv[1:]] + ['/proc/1/environ']
leaks = []
for path in paths:
    try:
        entries = open(path, 'rb').read().decode(errors='replace').split('\0')
    except OSError:
        continue
    leaks += [path + ': ' + entry for entry in entries if entry in secrets]
print('leaks', leaks)
print(sorted(os.environ))
)",
                             {std::to_string(getpid()), std::to_string(holder)});
  for (const std::string& entry : secrets) run.request.stdin_data += entry + '\0';
  const SandboxResult result = run_sandboxed(run.request);
  kill(holder, SIGKILL);
  waitpid(holder, nullptr, 0);
  ASSERT_EQ(result.status, SandboxStatus::kExited) << result.error << result.stderr_data;
  EXPECT_EQ(result.stdout_data, "leaks []\n['GRPO_SANDBOX_TEST_MARK', 'HOME', 'LANG', 'PATH', 'TMPDIR']\n");
}

// --------------------------------------------------------------------------------------------------------------------
// 11. Bad requests

TEST(Sandbox, RefusesBadRequestsWithAMessage) {
  const auto error_of = [](const SandboxRequest& request) {
    const SandboxResult result = run_sandboxed(request);
    EXPECT_EQ(result.status, SandboxStatus::kSandboxError);
    return result.error;
  };
  SandboxRequest request;
  EXPECT_NE(error_of(request).find("argv"), std::string::npos);

  request.argv = {"grpo-no-such-program"};
  EXPECT_NE(error_of(request).find("'grpo-no-such-program' not found"), std::string::npos);
  request.argv = {"/usr/bin/grpo-no-such-program"};
  EXPECT_EQ(error_of(request), "exec /usr/bin/grpo-no-such-program: No such file or directory");
  request.argv = {"./data.txt"};  // not executable
  request.files = {{.name = "data.txt", .content = "x"}};
  EXPECT_EQ(error_of(request), "exec ./data.txt: Permission denied");

  request.argv = {"/bin/true"};
  for (const std::string name : {"", ".", "..", "a/b", "/etc/passwd", "../up"}) {
    request.files = {{.name = name, .content = "x"}};
    EXPECT_NE(error_of(request).find("bad file name '" + name + "'"), std::string::npos) << name;
  }
  request.files = {{.name = "twice", .content = "1"}, {.name = "twice", .content = "2"}};
  EXPECT_NE(error_of(request).find("'twice' is given twice"), std::string::npos);
  request.files = {};
  request.collect = {"../secret"};
  EXPECT_NE(error_of(request).find("bad collect name '../secret'"), std::string::npos);
  request.collect = {};
  request.env = {"NO_EQUALS_SIGN"};
  EXPECT_NE(error_of(request).find("NO_EQUALS_SIGN"), std::string::npos);
}

// --------------------------------------------------------------------------------------------------------------------
// 12. Parallel runs

TEST(Sandbox, ParallelRunsAllSucceed) {
  constexpr int kRuns = 8;
  constexpr int kThreads = 4;
  std::vector<SandboxResult> results(kRuns);
  std::vector<MarkedRequest> runs;
  for (int i = 0; i < kRuns; ++i) {
    runs.push_back(python("import sys\nn = int(sys.stdin.read())\nprint(n * n)\nsys.exit(n)\n"));
    runs.back().request.stdin_data = std::to_string(i + 10);
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < kRuns; i += kThreads) results[static_cast<std::size_t>(i)] = run_sandboxed(runs[i].request);
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int i = 0; i < kRuns; ++i) {
    const SandboxResult& result = results[static_cast<std::size_t>(i)];
    EXPECT_EQ(result.status, SandboxStatus::kExited) << i << ": " << result.error << result.stderr_data;
    EXPECT_EQ(result.exit_code, i + 10);
    EXPECT_EQ(result.stdout_data, std::to_string((i + 10) * (i + 10)) + "\n");
    expect_nothing_left(runs[static_cast<std::size_t>(i)]);
  }
}

// --------------------------------------------------------------------------------------------------------------------
// 13. Collecting files; removing the working directory

TEST(Sandbox, CollectsRegularFilesAndRemovesTheWorkingDirectory) {
  MarkedRequest run = shell(
      "pwd; echo hi > out.txt; cp /bin/true tool; ln -s /etc/passwd link.txt; mkfifo fifo; mkdir dir;"
      // Make the tree hard to remove: a read-only directory and a mode-000 subtree.
      "mkdir -p locked/deeper; touch locked/deeper/file; chmod 000 locked/deeper locked; chmod 500 .");
  run.request.collect = {"out.txt", "tool", "missing.txt", "link.txt", "fifo", "dir"};
  const SandboxResult result = run_sandboxed(run.request);
  ASSERT_EQ(result.status, SandboxStatus::kExited) << result.error << result.stderr_data;
  EXPECT_EQ(result.exit_code, 0) << result.stderr_data;
  ASSERT_EQ(result.collected.size(), 2u);  // neither the missing file, the symlink, the FIFO nor the directory
  EXPECT_EQ(result.collected[0].name, "out.txt");
  EXPECT_EQ(result.collected[0].content, "hi\n");
  EXPECT_FALSE(result.collected[0].executable);
  EXPECT_EQ(result.collected[1].name, "tool");
  EXPECT_EQ(result.collected[1].content, read_file("/bin/true"));
  EXPECT_TRUE(result.collected[1].executable);
  const std::filesystem::path workdir = first_line(result);
  ASSERT_TRUE(workdir.filename().string().starts_with("grpo-sandbox-")) << workdir;
  EXPECT_FALSE(std::filesystem::exists(workdir)) << "the working directory was left behind";
}

TEST(Sandbox, CollectedFilesAreCappedAtTheFileSizeLimit) {
  MarkedRequest run = shell("head -c 5000 /dev/zero > out.bin");
  run.request.limits.file_size_bytes = 4096;  // the write itself is cut by RLIMIT_FSIZE (head gets SIGXFSZ)
  run.request.collect = {"out.bin"};
  const SandboxResult result = run_sandboxed(run.request);
  ASSERT_EQ(result.collected.size(), 1u);
  EXPECT_EQ(result.collected[0].content.size(), 4096u);
}

// --------------------------------------------------------------------------------------------------------------------
// Overhead

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

TEST(Sandbox, OverheadPerRunIsSmall) {
  constexpr int kRuns = 15;
  std::vector<double> plain;
  std::vector<double> sandboxed;
  char true_path[] = "/bin/true";
  char* const argv[] = {true_path, nullptr};
  SandboxRequest request;
  request.argv = {"/bin/true"};
  for (int i = 0; i < kRuns; ++i) {
    const auto start = std::chrono::steady_clock::now();
    pid_t pid = -1;
    ASSERT_EQ(posix_spawn(&pid, true_path, nullptr, nullptr, argv, environ), 0);
    waitpid(pid, nullptr, 0);
    const auto middle = std::chrono::steady_clock::now();
    const SandboxResult result = run_sandboxed(request);
    const auto end = std::chrono::steady_clock::now();
    ASSERT_EQ(result.status, SandboxStatus::kExited) << result.error;
    plain.push_back(std::chrono::duration<double>(middle - start).count());
    sandboxed.push_back(std::chrono::duration<double>(end - middle).count());
  }
  const double overhead = median(sandboxed) - median(plain);
  RecordProperty("overhead_ms", std::to_string(overhead * 1e3));
  EXPECT_LT(overhead, 0.020) << "median sandbox overhead " << overhead * 1e3 << " ms";
}

}  // namespace
}  // namespace grpo::reward
