// Grader plug-ins through the C ABI: the example keyword grader's scores; each kind of broken plug-in's load error;
// every way a grade() call can return garbage, in both isolation modes; and, in a worker process, crashes, exits and
// hangs costing only their own sample, a fresh worker for the next ones, and no worker processes left behind.
//
// The plug-ins are built by CMake: the test ones (tests/reward/plugins/*.c) as libgrpo_test_<name>_plugin.so in
// GRPO_TEST_PLUGIN_DIR, the example as GRPO_KEYWORD_GRADER_PLUGIN.
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "reward/plugin_grader.h"

#ifndef GRPO_TEST_PLUGIN_DIR
#error "GRPO_TEST_PLUGIN_DIR must name the directory holding the built test plug-ins"
#endif
#ifndef GRPO_KEYWORD_GRADER_PLUGIN
#error "GRPO_KEYWORD_GRADER_PLUGIN must name the built example plug-in (libgrpo_keyword_grader.so)"
#endif

namespace grpo::reward {

// Names the parameter in test output instead of its bytes (found by GoogleTest through argument-dependent lookup).
void PrintTo(PluginIsolation isolation, std::ostream* out) {
  *out << (isolation == PluginIsolation::kInProcess ? "kInProcess" : "kSubprocess");
}

namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;
using Clock = std::chrono::steady_clock;

std::filesystem::path test_plugin(std::string_view name) {
  return std::filesystem::path(GRPO_TEST_PLUGIN_DIR) / fmt::format("libgrpo_test_{}_plugin.so", name);
}

const std::filesystem::path kKeywordPlugin = GRPO_KEYWORD_GRADER_PLUGIN;

std::unique_ptr<Grader> load(const std::filesystem::path& library, PluginIsolation isolation,
                             std::string config_json = "", std::chrono::milliseconds call_timeout = 10s) {
  return load_plugin_grader({.library = library,
                             .config_json = std::move(config_json),
                             .isolation = isolation,
                             .call_timeout = call_timeout});
}

GradeResult grade(const Grader& grader, std::string_view completion, std::string_view reference = "") {
  return grader.grade({.completion = completion, .reference = reference});
}

// The tests link GoogleTest without GoogleMock, so this stands in for its HasSubstr matcher.
::testing::AssertionResult contains(const std::string& text, std::string_view part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text.substr(0, 2000) << "\"\ndoes not contain\n\"" << part << "\"";
}

std::string load_error(const std::filesystem::path& library, PluginIsolation isolation, std::string config_json = "",
                       std::chrono::milliseconds call_timeout = 10s) {
  try {
    load(library, isolation, std::move(config_json), call_timeout);
  } catch (const std::runtime_error& error) {
    return error.what();
  }
  ADD_FAILURE() << "loading " << library << " did not throw";
  return "";
}

// This process's plug-in workers, zombies included, from /proc: children named "grpo-grader" (the name a worker gives
// itself), so that processes other tests in the same binary start do not count.
std::vector<pid_t> worker_processes() {
  std::vector<pid_t> workers;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return workers;
  while (const dirent* entry = ::readdir(proc)) {
    const std::string name = entry->d_name;
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat_file("/proc/" + name + "/stat");
    std::string stat;
    std::getline(stat_file, stat);
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split at the first '(' and last ')'.
    const std::size_t open = stat.find('(');
    const std::size_t close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close < open || close + 4 >= stat.size()) continue;
    const std::string comm = stat.substr(open + 1, close - open - 1);
    const long parent = std::atol(stat.c_str() + close + 4);  // after ") S "
    if (parent == ::getpid() && comm == "grpo-grader") workers.push_back(static_cast<pid_t>(std::stol(name)));
  }
  ::closedir(proc);
  return workers;
}

pid_t worker_pid(const Grader& grader) {
  const GradeResult result = grade(grader, "PID");
  EXPECT_TRUE(result.scorable) << result.reason;
  return static_cast<pid_t>(std::atol(result.extracted.c_str()));
}

std::string isolation_name(const ::testing::TestParamInfo<PluginIsolation>& info) {
  return info.param == PluginIsolation::kInProcess ? "InProcess" : "Subprocess";
}

constexpr PluginIsolation kBothIsolations[] = {PluginIsolation::kInProcess, PluginIsolation::kSubprocess};

// Every test checks that, its graders gone, no worker process is left (a failed load included).
class PluginTest : public ::testing::TestWithParam<PluginIsolation> {
 protected:
  void TearDown() override { EXPECT_TRUE(worker_processes().empty()); }
};

// --- The example keyword grader ---------------------------------------------------------------------------------

class KeywordGraderTest : public PluginTest {};

struct KeywordCase {
  std::string config;
  std::string completion;
  std::string reference;
  bool scorable;
  double score;
  std::string extracted;
  std::string reason;
};

TEST_P(KeywordGraderTest, ScoresHandWrittenCases) {
  const std::vector<KeywordCase> cases = {
      {"", "The capital of France is Paris.", "paris, france", true, 1.0, "paris, france", ""},
      {"", "The capital of France is Paris.", "  Paris ,FRANCE,, ", true, 1.0, "Paris, FRANCE", ""},
      {"", "The capital of France is Paris.", "paris, berlin, rome", true, 0.0, "paris",
       "missing 2 of 3 keywords: berlin, rome"},
      {"{\"partial_credit\": true}", "Paris and Rome", "paris, berlin, rome, madrid", true, 0.5, "paris, rome",
       "missing 2 of 4 keywords: berlin, madrid"},
      {"{\"case_sensitive\": true}", "The capital of France is Paris.", "paris, France", true, 0.0, "France",
       "missing 1 of 2 keywords: paris"},
      {"{ \"case_sensitive\" : true , \"partial_credit\" : false }", "Paris", "Paris", true, 1.0, "Paris", ""},
      // Completions are bytes: a NUL in the middle does not end them.
      {"", "abc\0def \xff paris"s, "def, paris", true, 1.0, "def, paris", ""},
      {"", "anything", "", false, 0.0, "", "cannot score: the reference lists no keywords"},
      {"", "anything", " , ,", false, 0.0, "", "cannot score: the reference lists no keywords"},
      {"", "", "paris", true, 0.0, "", "missing 1 of 1 keywords: paris"},
  };
  for (const KeywordCase& test : cases) {
    SCOPED_TRACE(fmt::format("config {} completion '{}' reference '{}'", test.config, test.completion, test.reference));
    const auto grader = load(kKeywordPlugin, GetParam(), test.config);
    EXPECT_EQ(grader->name(), "keyword");
    const GradeResult result = grade(*grader, test.completion, test.reference);
    EXPECT_EQ(result.scorable, test.scorable) << result.reason;
    if (test.scorable) {
      EXPECT_DOUBLE_EQ(result.score, test.score);
      EXPECT_EQ(result.extracted, test.extracted);
      EXPECT_EQ(result.reason, test.reason);
      ASSERT_EQ(result.components.size(), 1u);
      EXPECT_EQ(result.components[0].name, "keywords_found");
    } else {
      EXPECT_TRUE(contains(result.reason, "plug-in 'keyword'"));
      EXPECT_TRUE(contains(result.reason, test.reason));
    }
  }
}

TEST_P(KeywordGraderTest, RejectsABadConfigWithItsOwnMessage) {
  std::string error = load_error(kKeywordPlugin, GetParam(), R"({"case": true})");
  EXPECT_TRUE(contains(error, kKeywordPlugin.string()));
  EXPECT_TRUE(contains(error, "rejected its config"));
  EXPECT_TRUE(contains(error, "unknown option \"case\"; the options are case_sensitive and partial_credit"));
  error = load_error(kKeywordPlugin, GetParam(), R"({"case_sensitive": "yes"})");
  EXPECT_TRUE(contains(error, "option \"case_sensitive\" must be true or false"));
  error = load_error(kKeywordPlugin, GetParam(), "[]");
  EXPECT_TRUE(contains(error, "expected a JSON object"));
}

TEST_P(KeywordGraderTest, GradesConcurrentlyFromManyThreads) {
  const auto grader = load(kKeywordPlugin, GetParam());
  std::atomic<int> wrong = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        const bool hit = (i + t) % 2 == 0;
        const GradeResult result = grade(*grader, hit ? "alpha beta" : "alpha", "alpha, beta");
        if (!result.scorable || result.score != (hit ? 1.0 : 0.0)) ++wrong;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Isolation, KeywordGraderTest, ::testing::ValuesIn(kBothIsolations), isolation_name);

// --- Load errors ------------------------------------------------------------------------------------------------

class PluginLoadTest : public PluginTest {};

TEST_P(PluginLoadTest, MissingFileSaysWhereItLooked) {
  const std::string error = load_error("no/such/libplugin.so", GetParam());
  EXPECT_TRUE(contains(error, "grader plug-in library 'no/such/libplugin.so' does not exist (looked for '/"));
  EXPECT_TRUE(contains(error, "build the plug-in or fix the path in the config"));
}

TEST_P(PluginLoadTest, DirectoryIsNotAPlugin) {
  EXPECT_TRUE(contains(load_error(GRPO_TEST_PLUGIN_DIR, GetParam()), "is not a file"));
}

TEST_P(PluginLoadTest, NotALibraryGivesTheLoadersMessage) {
  const std::filesystem::path text_file =
      std::filesystem::temp_directory_path() / fmt::format("grpo_not_a_plugin_{}.so", ::getpid());
  std::ofstream(text_file) << "this is not an ELF file, just text that is long enough to have a header\n";
  const std::string error = load_error(text_file, GetParam());
  std::filesystem::remove(text_file);
  EXPECT_TRUE(contains(error, fmt::format("cannot load grader plug-in '{}'", text_file.string())));
  EXPECT_TRUE(contains(error, "invalid ELF header"));  // dlerror's own words
}

TEST_P(PluginLoadTest, MissingEntryPointAsksWhetherItIsAPlugin) {
  const std::string error = load_error(test_plugin("missing_symbol"), GetParam());
  EXPECT_TRUE(contains(error, test_plugin("missing_symbol").string()));
  EXPECT_TRUE(contains(error, "does not export grpo_grader_plugin; is it a grpo grader plug-in?"));
}

TEST_P(PluginLoadTest, WrongAbiVersionNamesBothVersions) {
  const std::string error = load_error(test_plugin("wrong_abi"), GetParam());
  EXPECT_TRUE(contains(error, "was built for grader ABI version 2, but this trainer speaks version 1"));
  EXPECT_TRUE(contains(error, "rebuild the plug-in against this trainer's reward/grpo_grader_plugin.h"));
}

TEST_P(PluginLoadTest, BadDescriptorsAreRefusedWithWhatIsWrong) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"null", "has no descriptor for grader ABI version 1 (grpo_grader_plugin(1) returned NULL)"},
      {"small", "returned a garbage descriptor: its struct_size is 8 bytes where GrpoGraderPluginV1 has"},
      {"no_name", "returned a descriptor without a name (name is NULL)"},
      {"bad_name", "declares the name 'bad name', which is not 1 to 64 characters of [A-Za-z0-9_.-]"},
      {"no_grade", "('bad_descriptor') returned a descriptor whose grade function is NULL"},
  };
  for (const auto& [variant, message] : cases) {
    SCOPED_TRACE(variant);
    ::setenv("GRPO_TEST_BAD_DESCRIPTOR", variant.c_str(), 1);
    EXPECT_TRUE(contains(load_error(test_plugin("bad_descriptor"), GetParam()), message));
  }
  // The same library with a good descriptor loads: the failures above were the descriptor's.
  ::setenv("GRPO_TEST_BAD_DESCRIPTOR", "", 1);
  EXPECT_EQ(load(test_plugin("bad_descriptor"), GetParam())->name(), "bad_descriptor");
  ::unsetenv("GRPO_TEST_BAD_DESCRIPTOR");
}

TEST_P(PluginLoadTest, CreateFailureCarriesThePluginsMessage) {
  const std::string error = load_error(test_plugin("create_fails"), GetParam(), R"({"temperature": 0})");
  EXPECT_TRUE(contains(error,
                       "('create_fails') rejected its config '{\"temperature\": 0}': missing required option "
                       "\"model\" in {\"temperature\": 0}"));
}

TEST_P(PluginLoadTest, EmptyConfigIsAnEmptyObject) {
  const auto grader = load(test_plugin("behaviors"), GetParam());
  EXPECT_EQ(grade(*grader, "CONFIG").extracted, "{}");
  const auto configured = load(test_plugin("behaviors"), GetParam(), R"({"level": 3})");
  EXPECT_EQ(grade(*configured, "CONFIG").extracted, R"({"level": 3})");
}

TEST_P(PluginLoadTest, NonPositiveTimeoutIsRefused) {
  EXPECT_THROW(load(kKeywordPlugin, GetParam(), "", 0ms), std::invalid_argument);
}

INSTANTIATE_TEST_SUITE_P(Isolation, PluginLoadTest, ::testing::ValuesIn(kBothIsolations), isolation_name);

// --- What grade() returns ---------------------------------------------------------------------------------------

class PluginResultTest : public PluginTest {};

TEST_P(PluginResultTest, GoodResultsPassThroughBinarySafe) {
  const auto grader = load(test_plugin("behaviors"), GetParam());
  EXPECT_EQ(grader->name(), "behaviors");

  GradeResult result = grade(*grader, "42", "42");
  EXPECT_TRUE(result.scorable);
  EXPECT_EQ(result.score, 1.0);
  EXPECT_EQ(result.extracted, "42");
  EXPECT_EQ(result.reason, "");
  ASSERT_EQ(result.components.size(), 2u);
  EXPECT_EQ(result.components[0].name, "exact");
  EXPECT_EQ(result.components[0].score, 1.0);
  EXPECT_EQ(result.components[1].name, "half");
  EXPECT_EQ(result.components[1].score, 0.5);

  result = grade(*grader, "41", "42");
  EXPECT_TRUE(result.scorable);
  EXPECT_EQ(result.score, 0.0);
  EXPECT_EQ(result.reason, "completion differs from the reference");

  const std::string binary = "a\0b\xff\n"s;
  result = grade(*grader, binary, binary);
  EXPECT_EQ(result.score, 1.0);
  EXPECT_EQ(result.extracted, binary);

  result = grader->grade({.prompt = "p\0q"s, .completion = "ECHO_ALL", .reference = "r", .metadata = "{\"k\": 1}"});
  EXPECT_EQ(result.score, 0.25);
  EXPECT_EQ(result.extracted, "p\0q|r|{\"k\": 1}"s);
  EXPECT_EQ(result.reason, "ECHO_ALL");

  // Four megabytes each way.
  const std::string large(4 << 20, 'z');
  result = grade(*grader, large, large);
  EXPECT_TRUE(result.scorable) << result.reason;
  EXPECT_EQ(result.score, 1.0);
}

struct BadResultCase {
  std::string completion;
  std::string reason;
};

TEST_P(PluginResultTest, FailuresAndGarbageAreCannotScoreWithTheReason) {
  const std::vector<BadResultCase> cases = {
      {"CANNOT", "plug-in 'behaviors' cannot score: the reference is not a number"},
      {"ERROR", "plug-in 'behaviors' failed: the answer database is unavailable"},
      {"ERROR_SILENT", "plug-in 'behaviors' failed: (no reason given)"},
      {"NAN", "plug-in 'behaviors' returned the score nan; scores must be finite and within [-1e+06, 1e+06]"},
      {"NO_SCORE", "(NaN is also what a GRPO_GRADE_OK without setting output->score leaves)"},
      {"INF", "plug-in 'behaviors' returned the score inf"},
      {"HUGE", "plug-in 'behaviors' returned the score 2000000"},
      {"STATUS_7", "plug-in 'behaviors' returned the unknown status 7"},
      {"NULL_REASON", "plug-in 'behaviors' broke the grader ABI: set_reason got a NULL pointer with size 5"},
      {"LONG_REASON", "broke the grader ABI: set_reason got 1048577 bytes; the limit is 1048576"},
      {"NAN_COMPONENT", "broke the grader ABI: add_component got the score nan for 'accuracy'"},
      {"EMPTY_COMPONENT_NAME", "broke the grader ABI: add_component got a name of 0 bytes"},
      {"DUPLICATE_COMPONENT", "broke the grader ABI: add_component got the name 'accuracy' twice"},
      {"TOO_MANY_COMPONENTS", "broke the grader ABI: add_component was called more than 64 times"},
  };
  const auto grader = load(test_plugin("behaviors"), GetParam());
  for (const BadResultCase& bad : cases) {
    SCOPED_TRACE(bad.completion);
    const GradeResult result = grade(*grader, bad.completion, "42");
    EXPECT_FALSE(result.scorable);
    EXPECT_TRUE(contains(result.reason, bad.reason));
  }
  // The plug-in is still fine afterwards.
  EXPECT_EQ(grade(*grader, "42", "42").score, 1.0);
}

TEST_P(PluginResultTest, ExceptionThroughTheAbiIsCannotScore) {
  const auto grader = load(test_plugin("throwing"), GetParam());
  const GradeResult result = grade(*grader, "THROW");
  EXPECT_FALSE(result.scorable);
  EXPECT_TRUE(contains(result.reason, "plug-in 'throwing' let an exception escape grade(): checker exploded"));
  EXPECT_EQ(grade(*grader, "fine").score, 1.0);
}

TEST_P(PluginResultTest, BatchResultsArePerSample) {
  const auto grader = load(test_plugin("behaviors"), GetParam());
  const std::vector<GradeInput> inputs = {
      {.completion = "1", .reference = "1"}, {.completion = "NAN"},
      {.completion = "2", .reference = "3"}, {.completion = "ERROR"},
      {.completion = "4", .reference = "4"},
  };
  const std::vector<GradeResult> results = grader->grade_batch(inputs);
  ASSERT_EQ(results.size(), inputs.size());
  EXPECT_EQ(results[0].score, 1.0);
  EXPECT_FALSE(results[1].scorable);
  EXPECT_TRUE(results[2].scorable);
  EXPECT_EQ(results[2].score, 0.0);
  EXPECT_FALSE(results[3].scorable);
  EXPECT_TRUE(results[4].scorable);
  EXPECT_EQ(results[4].score, 1.0);
}

TEST_P(PluginResultTest, DeadlinesBoundTheCallAndAPassedOneSkipsIt) {
  const auto grader = load(test_plugin("behaviors"), GetParam(), "", 5000ms);
  // The plug-in is told the time it has: call_timeout, or less when the sample's deadline is sooner.
  long limit = std::atol(grade(*grader, "TIME_LIMIT").extracted.c_str());
  EXPECT_GT(limit, 4000);
  EXPECT_LE(limit, 5000);
  limit = std::atol(grader->grade({.completion = "TIME_LIMIT", .deadline = Clock::now() + 1s}).extracted.c_str());
  EXPECT_GT(limit, 0);
  EXPECT_LE(limit, 1000);

  EXPECT_EQ(grade(*grader, "COUNT").extracted, "3");
  const GradeResult late = grader->grade({.completion = "COUNT", .deadline = Clock::now() - 1s});
  EXPECT_FALSE(late.scorable);
  EXPECT_EQ(late.reason, "the sample's deadline passed before plug-in 'behaviors' was called");
  EXPECT_EQ(grade(*grader, "COUNT").extracted, "4");  // the late sample never reached the plug-in
}

INSTANTIATE_TEST_SUITE_P(Isolation, PluginResultTest, ::testing::ValuesIn(kBothIsolations), isolation_name);

TEST(InProcessPlugin, RunsInTheTrainersProcess) {
  const auto grader = load(test_plugin("behaviors"), PluginIsolation::kInProcess);
  EXPECT_EQ(worker_pid(*grader), ::getpid());
  EXPECT_TRUE(worker_processes().empty());
}

// --- Worker processes: crashes, exits, hangs --------------------------------------------------------------------

class SubprocessPluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(worker_processes().empty()) << "an earlier test left a worker process behind";
    ASSERT_EQ(::sigaction(SIGPIPE, nullptr, &sigpipe_before_), 0);
  }
  void TearDown() override {
    // No test leaves a worker behind once its graders are gone, and none changes the host's signal handling.
    EXPECT_TRUE(worker_processes().empty());
    struct sigaction sigpipe_after {};
    ASSERT_EQ(::sigaction(SIGPIPE, nullptr, &sigpipe_after), 0);
    EXPECT_EQ(sigpipe_after.sa_handler, sigpipe_before_.sa_handler);
  }

  struct sigaction sigpipe_before_ {};
};

TEST_F(SubprocessPluginTest, RunsInOneWorkerProcess) {
  const auto grader = load(test_plugin("behaviors"), PluginIsolation::kSubprocess);
  const pid_t pid = worker_pid(*grader);
  EXPECT_NE(pid, ::getpid());
  EXPECT_EQ(worker_processes(), std::vector<pid_t>{pid});
  EXPECT_EQ(worker_pid(*grader), pid);  // the same worker serves every call
}

TEST_F(SubprocessPluginTest, CrashCostsOnlyItsSampleAndAFreshWorkerGradesTheRest) {
  const auto grader = load(test_plugin("behaviors"), PluginIsolation::kSubprocess);
  const pid_t first_worker = worker_pid(*grader);
  const std::vector<GradeInput> inputs = {
      {.completion = "a", .reference = "a"}, {.completion = "COUNT"}, {.completion = "CRASH"},
      {.completion = "b", .reference = "b"}, {.completion = "COUNT"}, {.completion = "c", .reference = "x"},
  };
  const std::vector<GradeResult> results = grader->grade_batch(inputs);
  ASSERT_EQ(results.size(), inputs.size());
  EXPECT_EQ(results[0].score, 1.0);
  EXPECT_EQ(results[1].extracted, "3");  // PID, a, COUNT: the first worker's third call
  EXPECT_FALSE(results[2].scorable);
  EXPECT_EQ(results[2].reason, "plug-in 'behaviors' crashed with SIGSEGV while grading");
  EXPECT_TRUE(results[3].scorable);
  EXPECT_EQ(results[3].score, 1.0);
  EXPECT_EQ(results[4].extracted, "2");  // a fresh state: b, COUNT
  EXPECT_TRUE(results[5].scorable);
  EXPECT_EQ(results[5].score, 0.0);

  const pid_t second_worker = worker_pid(*grader);
  EXPECT_NE(second_worker, first_worker);
  EXPECT_EQ(worker_processes(), std::vector<pid_t>{second_worker});  // the crashed one was reaped
}

TEST_F(SubprocessPluginTest, AbortExitAndWildPointersAreReportedAsSuch) {
  const auto grader = load(test_plugin("behaviors"), PluginIsolation::kSubprocess);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"ABORT", "plug-in 'behaviors' crashed with SIGABRT while grading"},
      {"EXIT", "plug-in 'behaviors' exited with status 7 while grading"},
      {"WILD_POINTER", "plug-in 'behaviors' crashed with SIGSEGV while grading"},
      {"CLOSE_AND_HANG",
       "plug-in 'behaviors' closed its connection without exiting (its worker was killed) while "
       "grading"},
  };
  for (const auto& [completion, reason] : cases) {
    SCOPED_TRACE(completion);
    const GradeResult result = grade(*grader, completion);
    EXPECT_FALSE(result.scorable);
    EXPECT_EQ(result.reason, reason);
    EXPECT_EQ(grade(*grader, "ok", "ok").score, 1.0);
  }
}

TEST_F(SubprocessPluginTest, HangIsKilledAtTheTimeoutAndTheBatchGoesOn) {
  const auto grader = load(test_plugin("behaviors"), PluginIsolation::kSubprocess, "", 300ms);
  const std::vector<GradeInput> inputs = {
      {.completion = "a", .reference = "a"},
      {.completion = "HANG"},
      {.completion = "b", .reference = "b"},
      {.completion = "HANG"},
      {.completion = "COUNT"},
  };
  const Clock::time_point start = Clock::now();
  const std::vector<GradeResult> results = grader->grade_batch(inputs);
  const auto elapsed = Clock::now() - start;
  ASSERT_EQ(results.size(), inputs.size());
  EXPECT_EQ(results[0].score, 1.0);
  EXPECT_FALSE(results[1].scorable);
  EXPECT_EQ(results[1].reason, "plug-in 'behaviors' did not answer within 300 ms; its worker was killed");
  EXPECT_EQ(results[2].score, 1.0);
  EXPECT_FALSE(results[3].scorable);
  EXPECT_EQ(results[4].extracted, "1");
  EXPECT_GE(elapsed, 600ms);
  EXPECT_LT(elapsed, 3s);
  EXPECT_EQ(worker_processes().size(), 1u);
}

TEST_F(SubprocessPluginTest, SampleDeadlineSoonerThanTheTimeoutWins) {
  const auto grader = load(test_plugin("behaviors"), PluginIsolation::kSubprocess, "", 10s);
  const Clock::time_point start = Clock::now();
  const GradeResult result = grader->grade({.completion = "HANG", .deadline = start + 200ms});
  EXPECT_LT(Clock::now() - start, 2s);
  EXPECT_FALSE(result.scorable);
  EXPECT_TRUE(contains(result.reason, "plug-in 'behaviors' did not answer within "));
  EXPECT_TRUE(contains(result.reason, " ms (the sample's deadline); its worker was killed"));
}

TEST_F(SubprocessPluginTest, WorkerKilledWhileIdleIsReplacedWithoutCostingASample) {
  const auto grader = load(test_plugin("behaviors"), PluginIsolation::kSubprocess);
  const pid_t first_worker = worker_pid(*grader);
  ASSERT_EQ(::kill(first_worker, SIGKILL), 0);
  std::this_thread::sleep_for(50ms);  // let it die
  const GradeResult result = grade(*grader, "x", "x");
  EXPECT_TRUE(result.scorable) << result.reason;
  EXPECT_EQ(result.score, 1.0);
  EXPECT_NE(worker_pid(*grader), first_worker);
}

TEST_F(SubprocessPluginTest, WorkerOutlivesTheThreadThatLoadedIt) {
  // PR_SET_PDEATHSIG fires when the forking *thread* exits; the grader forks from a thread of its own, so a grader
  // loaded on a short-lived thread keeps its worker.
  std::unique_ptr<Grader> grader;
  pid_t pid = 0;
  std::thread([&] {
    grader = load(test_plugin("behaviors"), PluginIsolation::kSubprocess);
    pid = worker_pid(*grader);
  }).join();
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(worker_pid(*grader), pid);
}

TEST_F(SubprocessPluginTest, CrashOrHangWhileLoadingIsALoadError) {
  std::string error =
      load_error(test_plugin("behaviors"), PluginIsolation::kSubprocess, R"({"crash_in_create": true})");
  EXPECT_TRUE(contains(error, fmt::format("grader plug-in '{}' crashed with SIGSEGV while loading (in a library "
                                          "constructor or create())",
                                          test_plugin("behaviors").string())));
  const Clock::time_point start = Clock::now();
  error = load_error(test_plugin("behaviors"), PluginIsolation::kSubprocess, R"({"hang_in_create": true})", 300ms);
  EXPECT_LT(Clock::now() - start, 2s);
  EXPECT_TRUE(contains(error,
                       "did not finish loading within 300 ms (in a library constructor or create()); it was "
                       "killed"));
}

TEST_F(SubprocessPluginTest, ConcurrentCallersShareTheWorker) {
  const auto grader = load(test_plugin("behaviors"), PluginIsolation::kSubprocess);
  std::atomic<int> wrong = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        const std::string text = fmt::format("{}-{}", t, i);
        const GradeResult result = grade(*grader, text, i % 3 == 0 ? "other" : text);
        if (!result.scorable || result.score != (i % 3 == 0 ? 0.0 : 1.0) || result.extracted != text) ++wrong;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(SubprocessPluginTest, DestroyingGradersLeavesNoWorkers) {
  {
    const auto healthy = load(test_plugin("behaviors"), PluginIsolation::kSubprocess);
    const auto crashed = load(test_plugin("behaviors"), PluginIsolation::kSubprocess);
    const auto hung = load(test_plugin("behaviors"), PluginIsolation::kSubprocess, "", 200ms);
    const auto keyword = load(kKeywordPlugin, PluginIsolation::kSubprocess);
    EXPECT_FALSE(grade(*crashed, "CRASH").scorable);
    EXPECT_FALSE(grade(*hung, "HANG").scorable);
    EXPECT_EQ(grade(*healthy, "y", "y").score, 1.0);
    EXPECT_EQ(grade(*keyword, "y", "y").score, 1.0);
    EXPECT_EQ(worker_processes().size(), 2u);  // healthy's and keyword's; the crashed and hung ones are reaped and
                                               // their replacements start only when next needed
  }
  EXPECT_TRUE(worker_processes().empty());
}

}  // namespace
}  // namespace grpo::reward
