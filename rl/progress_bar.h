// Console progress for long loops (training steps, evaluation problems): done/total, a bar, elapsed<ETA, rate and
// a short status such as the latest reward. Redraws one line on a terminal, prints periodic lines into logs.
#pragma once

#include <cstddef>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>

namespace grpo::rl {

enum class ProgressStyle {
  kBar,    // one line redrawn in place with '\r': for an interactive terminal
  kLines,  // a full line now and then: for log files and CI, where '\r' leaves garbage
  kQuiet,  // nothing
};

// "AUTO" (kBar on a terminal, kLines otherwise), "BAR", "LINES" or "QUIET", in any case; anything else throws
// std::invalid_argument listing the valid names.
ProgressStyle resolve_progress_style(std::string_view mode, bool stream_is_tty);

// Seconds on the monotonic clock: the default time source of ProgressBar (wall time would jump with NTP).
double steady_clock_seconds();

// One progress display; not thread-safe. The line looks like
//   train  37/200 [###.................]  18% 00:42<03:05  0.88 it/s | reward 0.63 acc 0.55
// with elapsed<ETA as MM:SS (H:MM:SS from an hour), the ETA from the average rate since construction, and "?" for
// ETA and rate until the first unit is done.
class ProgressBar {
 public:
  // `total` units of work (0 is allowed and shows as complete; negative throws std::invalid_argument). kLines
  // prints on the first update, whenever `done` reaches a new multiple of `lines_every`, and at done == total.
  ProgressBar(std::string label, long long total, ProgressStyle style, std::ostream& out, int lines_every = 10,
              std::function<double()> clock_seconds = steady_clock_seconds);
  // Ends an open kBar line, so that an exception's message does not land on top of the bar.
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // `done` units are complete (not an increment); `status` follows a " | " when non-empty.
  void update(long long done, std::string_view status);
  // Shows the final state with `status` (the last status when empty) and ends the line; later calls do nothing.
  // kLines prints only what the last line did not already show.
  void finish(std::string_view status);

 private:
  std::string render(double now) const;
  void draw_in_place(const std::string& line);

  std::string label_;
  long long total_;
  ProgressStyle style_;
  std::ostream& out_;
  long long lines_every_;
  std::function<double()> clock_seconds_;
  double start_seconds_;

  long long done_ = 0;
  std::string status_;
  bool updated_ = false;
  bool finished_ = false;
  bool line_open_ = false;           // kBar: a line was drawn and not yet ended with '\n'
  std::size_t drawn_width_ = 0;      // kBar: length of the line on screen, to blank out a longer previous one
  bool last_update_printed_ = true;  // kLines: the current done/status is already in the log
  long long printed_done_ = -1;      // kLines: `done` of the last printed line
};

// Elapsed or remaining time as MM:SS below an hour and H:MM:SS from an hour on, rounded to the second.
std::string format_duration(double seconds);

}  // namespace grpo::rl
