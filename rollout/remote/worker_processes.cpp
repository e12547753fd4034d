// Starting, watching and stopping local rollout worker processes (see worker_processes.h).
#include "rollout/remote/worker_processes.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <thread>

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace grpo::rollout {
namespace {

constexpr std::string_view kListeningPrefix = "rollout worker listening on ";

std::string tail_of(const std::filesystem::path& file, std::size_t bytes = 2000) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return "";
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.size() > bytes ? "..." + text.substr(text.size() - bytes) : text;
}

// Forks and execs `argv` with standard output on `stdout_fd` and standard error appended to `log` (when given).
pid_t spawn(const std::vector<std::string>& argv, int stdout_fd, int read_end, const std::filesystem::path& log) {
  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(fmt::format("cannot start a rollout worker: fork failed: {}", std::strerror(errno)));
  if (pid == 0) {
    // The child: die with the trainer, talk through the pipe, log to the file.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect
    ::close(read_end);
    ::dup2(stdout_fd, STDOUT_FILENO);
    if (!log.empty()) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd >= 0) ::dup2(fd, STDERR_FILENO);
    }
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

// Reads standard output of a starting worker until its "listening on" line; nullopt when it exits or times out.
std::optional<std::string> read_address(int fd, pid_t pid, std::chrono::milliseconds timeout) {
  std::string buffer;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, 200);
    if (ready > 0) {
      char chunk[512];
      const auto n = ::read(fd, chunk, sizeof chunk);
      if (n <= 0) return std::nullopt;  // it closed standard output: it exited
      buffer.append(chunk, static_cast<std::size_t>(n));
      const auto at = buffer.find(kListeningPrefix);
      const auto end = at == std::string::npos ? std::string::npos : buffer.find('\n', at);
      if (end != std::string::npos) return buffer.substr(at + kListeningPrefix.size(), end - at - kListeningPrefix.size());
    }
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

std::string random_token() {
  std::ifstream random("/dev/urandom", std::ios::binary);
  unsigned char bytes[32];
  if (!random.read(reinterpret_cast<char*>(bytes), sizeof bytes)) throw std::runtime_error("cannot read /dev/urandom for a token");
  std::string token;
  for (const auto byte : bytes) token += fmt::format("{:02x}", byte);
  return token;
}

LocalWorkerProcesses::LocalWorkerProcesses(const LocalWorkerOptions& options) {
  if (options.count < 1) throw std::invalid_argument("local rollout workers: count must be at least 1");
  token_ = random_token();
  char pattern[] = "/tmp/grpo-rollout-XXXXXX";
  if (::mkdtemp(pattern) == nullptr) throw std::runtime_error(fmt::format("cannot make a folder for the worker token: {}", std::strerror(errno)));
  token_dir_ = pattern;  // mkdtemp makes it 0700: only this user reads the token
  token_file_ = token_dir_ / "token";
  {
    std::ofstream out(token_file_);
    out << token_ << '\n';
  }
  ::chmod(token_file_.c_str(), 0600);
  try {
    for (int i = 0; i < options.count; ++i) {
      int fds[2];
      if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(fmt::format("cannot start a rollout worker: pipe failed: {}", std::strerror(errno)));
      const auto log = options.log_dir.empty() ? std::filesystem::path() : options.log_dir / fmt::format("rollout-worker-{}.log", i);
      const std::vector<std::string> argv = {options.grpo_binary.string(), "rollout-worker", "--listen", "127.0.0.1:0", "--token-file", token_file_.string(),
                                             "--model", options.model.string(), "--dtype", options.dtype, "--device", options.device,
                                             "--threads", std::to_string(options.threads)};
      pid_t pid = -1;
      try {
        pid = spawn(argv, fds[1], fds[0], log);
      } catch (...) {
        ::close(fds[0]);
        ::close(fds[1]);
        throw;
      }
      ::close(fds[1]);
      pids_.push_back(pid);
      const auto address = read_address(fds[0], pid, options.start_timeout);
      ::close(fds[0]);
      if (!address) {
        throw std::runtime_error(fmt::format("rollout worker {} ({}) did not start listening within {} s{}", i, fmt::join(argv, " "),
                                             options.start_timeout.count() / 1000,
                                             log.empty() ? "" : fmt::format("; the end of its log ({}):\n{}", log.string(), tail_of(log))));
      }
      addresses_.push_back(*address);
    }
  } catch (...) {
    stop();
    throw;
  }
}

LocalWorkerProcesses::~LocalWorkerProcesses() { stop(); }

void LocalWorkerProcesses::kill_worker(std::size_t i) {
  if (i >= pids_.size() || pids_[i] <= 0) return;
  ::kill(pids_[i], SIGKILL);
  int status = 0;
  ::waitpid(pids_[i], &status, 0);
  pids_[i] = -1;
}

void LocalWorkerProcesses::stop() {
  for (const auto pid : pids_) {
    if (pid > 0) ::kill(pid, SIGTERM);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (auto& pid : pids_) {
    if (pid <= 0) continue;
    int status = 0;
    while (::waitpid(pid, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    pid = -1;
  }
  if (!token_dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(token_dir_, ignored);
    token_dir_.clear();
  }
}

}  // namespace grpo::rollout
