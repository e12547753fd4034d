// Console progress with ETA (see progress_bar.h): the line layout, its time formats and the kLines cadence.
#include "rl/progress_bar.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <utility>

namespace grpo::rl {
namespace {

constexpr int kBarWidth = 20;  // characters between the brackets: 5% per character
// Below this rate "0.02 it/s" reads worse than "50.0 s/it" (RL steps on CPU take tens of seconds).
constexpr double kSecondsPerItBelowRate = 0.1;

std::string upper(std::string_view text) {
  std::string result(text);
  for (char& c : result) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return result;
}

int digit_count(long long value) {
  int digits = 1;
  for (; value >= 10; value /= 10) ++digits;
  return digits;
}

}  // namespace

ProgressStyle resolve_progress_style(std::string_view mode, bool stream_is_tty) {
  const std::string name = upper(mode);
  if (name == "AUTO") return stream_is_tty ? ProgressStyle::kBar : ProgressStyle::kLines;
  if (name == "BAR") return ProgressStyle::kBar;
  if (name == "LINES") return ProgressStyle::kLines;
  if (name == "QUIET") return ProgressStyle::kQuiet;
  throw std::invalid_argument(fmt::format("unknown progress style '{}'; valid styles: AUTO, BAR, LINES, QUIET", mode));
}

double steady_clock_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string format_duration(double seconds) {
  const long long total = std::llround(std::max(0.0, seconds));
  const long long hours = total / 3600;
  const long long minutes = total / 60 % 60;
  const long long secs = total % 60;
  if (hours > 0) return fmt::format("{}:{:02}:{:02}", hours, minutes, secs);
  return fmt::format("{:02}:{:02}", minutes, secs);
}

ProgressBar::ProgressBar(std::string label, long long total, ProgressStyle style, std::ostream& out, int lines_every,
                         std::function<double()> clock_seconds)
    : label_(std::move(label)),
      total_(total),
      style_(style),
      out_(out),
      lines_every_(lines_every),
      clock_seconds_(std::move(clock_seconds)),
      start_seconds_(0.0) {
  if (total_ < 0) throw std::invalid_argument(fmt::format("ProgressBar '{}': total {} is negative", label_, total_));
  if (lines_every_ <= 0) {
    throw std::invalid_argument(fmt::format("ProgressBar '{}': lines_every {} must be positive", label_, lines_every));
  }
  if (!clock_seconds_) throw std::invalid_argument(fmt::format("ProgressBar '{}': no clock", label_));
  start_seconds_ = clock_seconds_();
}

ProgressBar::~ProgressBar() {
  if (!line_open_) return;
  try {
    out_ << '\n' << std::flush;
  } catch (...) {
    // A stream set to throw must not turn stack unwinding into std::terminate.
  }
}

void ProgressBar::update(long long done, std::string_view status) {
  if (finished_ || style_ == ProgressStyle::kQuiet) return;
  done_ = std::max(done, 0LL);
  status_ = status;
  const bool first = !updated_;
  updated_ = true;
  if (style_ == ProgressStyle::kBar) {
    draw_in_place(render(clock_seconds_()));
    return;
  }
  // A multiple of lines_every crossed since the last printed line: skipping values (done += 4) still prints.
  const bool crossed = done_ / lines_every_ > printed_done_ / lines_every_;
  const bool completed = done_ >= total_ && printed_done_ != done_;
  last_update_printed_ = first || crossed || completed;
  if (last_update_printed_) {
    out_ << render(clock_seconds_()) << '\n' << std::flush;
    printed_done_ = done_;
  }
}

void ProgressBar::finish(std::string_view status) {
  if (finished_) return;
  finished_ = true;
  if (style_ == ProgressStyle::kQuiet) return;
  const bool new_status = !status.empty() && status != status_;
  if (!status.empty()) status_ = status;
  if (style_ == ProgressStyle::kBar) {
    draw_in_place(render(clock_seconds_()));
    out_ << '\n' << std::flush;
    line_open_ = false;
    return;
  }
  if (!updated_ || !last_update_printed_ || new_status) out_ << render(clock_seconds_()) << '\n' << std::flush;
}

std::string ProgressBar::render(double now) const {
  const double elapsed = std::max(0.0, now - start_seconds_);
  const double fraction =
      total_ > 0 ? std::clamp(static_cast<double>(done_) / static_cast<double>(total_), 0.0, 1.0) : 1.0;
  const int filled = static_cast<int>(std::floor(fraction * kBarWidth));
  const int percent = static_cast<int>(std::floor(fraction * 100.0));

  std::string rate = "? it/s";
  std::string eta = "?";
  if (done_ > 0 && elapsed > 0.0) {
    const double per_second = static_cast<double>(done_) / elapsed;
    rate = per_second >= kSecondsPerItBelowRate ? fmt::format("{:.2f} it/s", per_second)
                                                : fmt::format("{:.1f} s/it", 1.0 / per_second);
    eta = format_duration(static_cast<double>(std::max(0LL, total_ - done_)) / per_second);
  }
  if (done_ >= total_) eta = format_duration(0.0);

  std::string line = fmt::format("{} {:>{}}/{} [{}{}] {:>3}% {}<{}  {}", label_, done_, digit_count(total_), total_,
                                 std::string(static_cast<std::size_t>(filled), '#'),
                                 std::string(static_cast<std::size_t>(kBarWidth - filled), '.'), percent,
                                 format_duration(elapsed), eta, rate);
  if (!status_.empty()) line += fmt::format(" | {}", status_);
  return line;
}

void ProgressBar::draw_in_place(const std::string& line) {
  out_ << '\r' << line;
  // Spaces over the tail of a longer previous line (a status that got shorter); '\r' alone would leave it.
  if (drawn_width_ > line.size()) out_ << std::string(drawn_width_ - line.size(), ' ');
  drawn_width_ = line.size();
  line_open_ = true;
  out_ << std::flush;
}

}  // namespace grpo::rl
