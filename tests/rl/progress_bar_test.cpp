// Tests for the console progress display: exact lines under an injected clock (ETA and rate arithmetic, hours,
// redraw padding), the kLines cadence, kQuiet, and the AUTO/BAR/LINES/QUIET names.
#include "rl/progress_bar.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace grpo::rl {
namespace {

long count_lines(const std::string& text) { return std::count(text.begin(), text.end(), '\n'); }

// A clock the test moves by hand; starts at 1000 s so that "elapsed" cannot be confused with "now".
struct FakeClock {
  double now = 1000.0;
  std::function<double()> source() {
    return [this] { return now; };
  }
};

TEST(ProgressBar, DurationIsMinutesSecondsThenHours) {
  EXPECT_EQ(format_duration(0.0), "00:00");
  EXPECT_EQ(format_duration(-3.0), "00:00");
  EXPECT_EQ(format_duration(59.4), "00:59");
  EXPECT_EQ(format_duration(59.6), "01:00");
  EXPECT_EQ(format_duration(3599.0), "59:59");
  EXPECT_EQ(format_duration(3600.0), "1:00:00");
  EXPECT_EQ(format_duration(10 * 3600 + 61), "10:01:01");
}

TEST(ProgressBar, BarLineShowsCountPercentElapsedEtaRateAndStatus) {
  FakeClock clock;
  std::ostringstream out;
  ProgressBar bar("train", 200, ProgressStyle::kBar, out, /*lines_every=*/10, clock.source());
  clock.now += 42.0;
  bar.update(37, "reward 0.63 acc 0.55");
  // 37/200 = 18.5%: 3 of 20 cells; rate 37/42 = 0.88 it/s; ETA 163 / (37/42) = 185 s.
  EXPECT_EQ(out.str(), "\rtrain  37/200 [###.................]  18% 00:42<03:05  0.88 it/s | reward 0.63 acc 0.55");
}

TEST(ProgressBar, RateAndEtaAreUnknownBeforeTheFirstUnit) {
  FakeClock clock;
  std::ostringstream out;
  ProgressBar bar("train", 200, ProgressStyle::kBar, out, /*lines_every=*/10, clock.source());
  clock.now += 5.0;
  bar.update(0, "");
  EXPECT_EQ(out.str(), "\rtrain   0/200 [....................]   0% 00:05<?  ? it/s");
}

TEST(ProgressBar, LongEtaUsesHoursAndSlowRatesSecondsPerIteration) {
  FakeClock clock;
  std::ostringstream out;
  ProgressBar bar("eval", 1000, ProgressStyle::kBar, out, /*lines_every=*/10, clock.source());
  clock.now += 60.0;
  bar.update(10, "");
  // 1/6 it/s; 990 left at 6 s each = 5940 s.
  EXPECT_EQ(out.str(), "\reval   10/1000 [....................]   1% 01:00<1:39:00  0.17 it/s");

  std::ostringstream slow_out;
  ProgressBar slow("step", 3, ProgressStyle::kBar, slow_out, /*lines_every=*/10, clock.source());
  clock.now += 50.0;
  slow.update(1, "");
  EXPECT_EQ(slow_out.str(), "\rstep 1/3 [######..............]  33% 00:50<01:40  50.0 s/it");
}

TEST(ProgressBar, RedrawBlanksALongerPreviousLineAndFinishEndsIt) {
  FakeClock clock;
  std::ostringstream out;
  ProgressBar bar("t", 4, ProgressStyle::kBar, out, /*lines_every=*/10, clock.source());
  clock.now += 1.0;
  bar.update(1, "long status");
  clock.now += 1.0;
  bar.update(2, "s");
  clock.now += 2.0;
  bar.finish("");
  const std::string first = "t 1/4 [#####...............]  25% 00:01<00:03  1.00 it/s | long status";
  const std::string second = "t 2/4 [##########..........]  50% 00:02<00:02  1.00 it/s | s";
  const std::string last = "t 2/4 [##########..........]  50% 00:04<00:04  0.50 it/s | s";
  EXPECT_EQ(out.str(),
            "\r" + first + "\r" + second + std::string(first.size() - second.size(), ' ') + "\r" + last + "\n");
  bar.update(3, "ignored after finish");
  bar.finish("ignored");
  EXPECT_EQ(out.str().back(), '\n');
  EXPECT_EQ(out.str().find("ignored"), std::string::npos);
}

TEST(ProgressBar, DestructorEndsAnOpenBarLine) {
  std::ostringstream out;
  {
    FakeClock clock;
    ProgressBar bar("t", 2, ProgressStyle::kBar, out, /*lines_every=*/10, clock.source());
    bar.update(1, "");
  }
  EXPECT_EQ(out.str().back(), '\n');
  EXPECT_EQ(count_lines(out.str()), 1);
}

TEST(ProgressBar, LinesPrintFirstEveryNthAndLast) {
  FakeClock clock;
  std::ostringstream out;
  ProgressBar bar("train", 25, ProgressStyle::kLines, out, /*lines_every=*/10, clock.source());
  for (int done = 1; done <= 25; ++done) {
    clock.now += 2.0;
    bar.update(done, "");
  }
  bar.finish("");  // the last line already shows done == total
  EXPECT_EQ(out.str(),
            "train  1/25 [....................]   4% 00:02<00:48  0.50 it/s\n"
            "train 10/25 [########............]  40% 00:20<00:30  0.50 it/s\n"
            "train 20/25 [################....]  80% 00:40<00:10  0.50 it/s\n"
            "train 25/25 [####################] 100% 00:50<00:00  0.50 it/s\n");
}

TEST(ProgressBar, LinesCountMultiplesCrossedWhenUpdatesSkipValues) {
  FakeClock clock;
  std::ostringstream out;
  ProgressBar bar("x", 100, ProgressStyle::kLines, out, /*lines_every=*/10, clock.source());
  for (long long done : {3, 7, 12, 13, 19, 31, 32}) bar.update(done, "");
  std::istringstream lines(out.str());
  std::vector<std::string> starts;
  for (std::string line; std::getline(lines, line);) starts.push_back(line.substr(0, 6));
  EXPECT_EQ(starts, (std::vector<std::string>{"x   3/", "x  12/", "x  31/"}));
  EXPECT_EQ(out.str().find('\r'), std::string::npos);
}

TEST(ProgressBar, LinesFinishPrintsOnlyWhatWasNotShown) {
  FakeClock clock;
  std::ostringstream unseen;
  ProgressBar stopped("x", 100, ProgressStyle::kLines, unseen, /*lines_every=*/10, clock.source());
  stopped.update(1, "");
  stopped.update(5, "a");
  stopped.finish("");  // done 5 was never printed
  EXPECT_EQ(count_lines(unseen.str()), 2);
  EXPECT_NE(unseen.str().find("x   5/100"), std::string::npos);

  std::ostringstream with_status;
  ProgressBar done_bar("x", 1, ProgressStyle::kLines, with_status, /*lines_every=*/10, clock.source());
  done_bar.update(1, "");
  done_bar.finish("saved runs/a");  // new information: printed even though done == total was shown
  EXPECT_EQ(count_lines(with_status.str()), 2);
  EXPECT_NE(with_status.str().find("| saved runs/a\n"), std::string::npos);
}

TEST(ProgressBar, QuietPrintsNothing) {
  FakeClock clock;
  std::ostringstream out;
  {
    ProgressBar bar("x", 10, ProgressStyle::kQuiet, out, /*lines_every=*/1, clock.source());
    bar.update(1, "a");
    bar.update(10, "b");
    bar.finish("c");
  }
  EXPECT_EQ(out.str(), "");
}

TEST(ProgressBar, ZeroTotalIsCompleteAndNegativeTotalIsRejected) {
  FakeClock clock;
  std::ostringstream out;
  ProgressBar bar("x", 0, ProgressStyle::kLines, out, /*lines_every=*/10, clock.source());
  bar.finish("");
  EXPECT_EQ(out.str(), "x 0/0 [####################] 100% 00:00<00:00  ? it/s\n");
  EXPECT_THROW(ProgressBar("x", -1, ProgressStyle::kBar, out), std::invalid_argument);
  EXPECT_THROW(ProgressBar("x", 1, ProgressStyle::kBar, out, /*lines_every=*/0), std::invalid_argument);
}

TEST(ProgressBar, StyleNamesResolveInAnyCase) {
  EXPECT_EQ(resolve_progress_style("AUTO", /*stream_is_tty=*/true), ProgressStyle::kBar);
  EXPECT_EQ(resolve_progress_style("auto", /*stream_is_tty=*/false), ProgressStyle::kLines);
  EXPECT_EQ(resolve_progress_style("Bar", /*stream_is_tty=*/false), ProgressStyle::kBar);
  EXPECT_EQ(resolve_progress_style("LINES", /*stream_is_tty=*/true), ProgressStyle::kLines);
  EXPECT_EQ(resolve_progress_style("quiet", /*stream_is_tty=*/true), ProgressStyle::kQuiet);
  try {
    resolve_progress_style("fancy", /*stream_is_tty=*/true);
    ADD_FAILURE() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& error) {
    EXPECT_STREQ(error.what(), "unknown progress style 'fancy'; valid styles: AUTO, BAR, LINES, QUIET");
  }
}

}  // namespace
}  // namespace grpo::rl
