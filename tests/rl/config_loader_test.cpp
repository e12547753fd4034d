// Tests for rl/config/config_loader: parse errors with exact positions, --set overrides, default resolution,
// range and cross-field validation, value locations and the text round trip.
#include "rl/config/config_loader.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace grpo::config {
namespace {

using Overrides = std::vector<std::string>;

constexpr const char* kSource = "x.textproto";

LoadedConfig load(std::string_view text, const Overrides& overrides = {}) {
  return load_config_text(text, kSource, overrides);
}

// The ConfigError message `action` throws; a test failure when it throws none.
template <typename Action>
std::string error_of(Action&& action) {
  try {
    action();
  } catch (const ConfigError& error) {
    return error.what();
  }
  ADD_FAILURE() << "expected a ConfigError";
  return "";
}

std::string load_error(std::string_view text, const Overrides& overrides = {}) {
  return error_of([&] { load(text, overrides); });
}

// The tests link GoogleTest without GoogleMock, so these stand in for its StartsWith/HasSubstr matchers.
::testing::AssertionResult starts_with(const std::string& text, std::string_view prefix) {
  if (text.starts_with(prefix)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\"\ndoes not start with\n\"" << prefix << "\"";
}

::testing::AssertionResult contains(const std::string& text, std::string_view part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\"\ndoes not contain\n\"" << part << "\"";
}

// --- Parse errors ------------------------------------------------------------------------------------------------

TEST(ConfigParse, UnknownFieldListsValidFieldsAtTheName) {
  EXPECT_EQ(load_error("rollout {\n  group_sizee: 8\n}\n"),
            "x.textproto:2:3: unknown field 'group_sizee' in RolloutConfig; valid fields: prompts_per_step, "
            "group_size, max_new_tokens, temperature, top_p, top_k, min_p, stop_strings, workers, worker_token_file, local_workers, "
            "local_worker_threads, worker_stall_timeout_ms, worker_connect_timeout_ms, overlap, weight_transport, weight_sync_dtype, weight_broadcast_host; did you mean 'group_size'?");
}

TEST(ConfigParse, UnknownTopLevelFieldListsRunConfigFields) {
  const std::string error = load_error("steps: 10\nrolout { group_size: 8 }\n");
  EXPECT_TRUE(starts_with(error,
                          "x.textproto:2:1: unknown field 'rolout' in RunConfig; valid fields: name, "
                          "output_dir, seed, steps, model, task, rollout,"));
  EXPECT_TRUE(contains(error, "did you mean 'rollout'?"));
}

TEST(ConfigParse, WrongTypeSaysWhatTypeWasExpected) {
  EXPECT_EQ(load_error("rollout {\n  group_size: \"eight\"\n}\n"),
            "x.textproto:2:15: rollout.group_size: expected an integer (int32) in [2, 1024], got \"eight\"");
  EXPECT_EQ(load_error("name: 5\n"), "x.textproto:1:7: name: expected a string in double quotes, got 5");
  EXPECT_EQ(load_error("rollout { temperature: hot }"),
            "x.textproto:1:24: rollout.temperature: expected a number (double) in [0, 100], got hot");
  EXPECT_EQ(load_error("seed: -3"), "x.textproto:1:7: seed: expected a non-negative integer (uint64), got -3");
}

TEST(ConfigParse, IntegerThatDoesNotFitItsType) {
  EXPECT_EQ(load_error("rollout { group_size: -99999999999 }"),
            "x.textproto:1:23: rollout.group_size: -99999999999 does not fit in int32; expected an integer (int32) "
            "in [2, 1024]");
}

TEST(ConfigParse, BadEnumValueListsValidNamesAtTheValue) {
  EXPECT_EQ(load_error("grpo {\n  loss_aggregation: TOKEN_MEANN\n}\n"),
            "x.textproto:2:21: grpo.loss_aggregation: unknown value 'TOKEN_MEANN' for LossAggregation; valid "
            "values: SEQ_MEAN_TOKEN_MEAN, TOKEN_MEAN, TOKEN_MEAN_LOCAL, SEQ_MEAN_TOKEN_SUM_NORM, SEQ_MEAN_TOKEN_SUM; did you mean "
            "'TOKEN_MEAN'?");
  EXPECT_EQ(load_error("logging { progress: \"BAR\" }"),
            "x.textproto:1:21: logging.progress: expected one of AUTO, BAR, LINES, QUIET (unquoted), got \"BAR\"");
}

TEST(ConfigParse, ErrorInsideRepeatedMessageNamesTheElement) {
  EXPECT_EQ(load_error("reward {\n  graders { name: \"accuracy\" }\n  graders { name: \"format\" weight: \"x\" }\n}"),
            "x.textproto:3:36: reward.graders[1].weight: expected a number (double) in [-1000, 1000], got \"x\"");
  EXPECT_TRUE(starts_with(load_error("reward { graders { nme: \"accuracy\" } }"),
                          "x.textproto:1:20: unknown field 'nme' in GraderWeight; valid fields: name, weight"));
}

TEST(ConfigParse, StructuralMistakes) {
  EXPECT_EQ(load_error("rollout { group_size: 4 group_size: 8 }"),
            "x.textproto:1:25: rollout.group_size: set more than once; it is not repeated and takes one value (keep "
            "one of them)");
  EXPECT_TRUE(starts_with(load_error("steps { value: 3 }"),
                          "x.textproto:1:7: steps: is a single value, not a message; write 'steps: <value>'"));
  EXPECT_TRUE(starts_with(load_error("rollout: 8"),
                          "x.textproto:1:10: rollout: is a message (RolloutConfig), not a single value"));
  EXPECT_EQ(load_error("rollout {\n  group_size: 8\n"),
            "x.textproto:3:1: the text ends inside 'rollout { ... }'; close the block with '}'");
  EXPECT_TRUE(starts_with(load_error("rollout { group_size: 8 }\n}"),
                          "x.textproto:2:1: expected a field name of RunConfig at top level, got '}' (one '}' too "
                          "many?)"));
}

TEST(ConfigParse, ColumnsCountCharactersNotTabStops) {
  // protobuf's tokenizer advances to the next multiple of 8 at a tab; editors count the tab as one character.
  EXPECT_TRUE(starts_with(load_error("rollout {\n\tgroup_size: 0\n}"), "x.textproto:2:2: rollout.group_size = 0"));
}

TEST(ConfigFile, MissingFileNamesThePathAndTheReason) {
  const std::filesystem::path missing = std::filesystem::path(::testing::TempDir()) / "no_such_config.textproto";
  const std::string error = error_of([&] { load_config_file(missing, {}); });
  EXPECT_EQ(error, "cannot open config file '" + missing.string() + "': No such file or directory");
}

TEST(ConfigFile, DirectoryIsRejected) {
  const std::string error = error_of([] { load_config_file(::testing::TempDir(), {}); });
  EXPECT_TRUE(contains(error, "it is a directory"));
}

TEST(ConfigFile, LocationsNameTheFile) {
  const std::filesystem::path file = std::filesystem::path(::testing::TempDir()) / "config_loader_test.textproto";
  std::ofstream(file) << "# a run\nsteps: 20\nrollout {\n  group_size: 0\n}\n";
  EXPECT_EQ(error_of([&] { load_config_file(file, {}); }),
            file.string() + ":4:3: rollout.group_size = 0 is out of range; valid range [2, 1024]");
  const Overrides fix = {"rollout.group_size=4"};
  const LoadedConfig loaded = load_config_file(file, fix);
  EXPECT_EQ(loaded.config.steps(), 20);
  EXPECT_EQ(loaded.location("steps"), file.string() + ":2:1");
  std::filesystem::remove(file);
}

// --- Validation --------------------------------------------------------------------------------------------------

TEST(ConfigValidate, OutOfRangePointsAtTheOffendingLine) {
  EXPECT_EQ(load_error("steps: 10\nrollout {\n  prompts_per_step: 4\n  group_size: 1\n}\n"),
            "x.textproto:4:3: rollout.group_size = 1 is out of range; valid range [2, 1024]");
}

TEST(ConfigValidate, NestedValuesAndDoubleRanges) {
  EXPECT_EQ(load_error("task {\n  arithmetic {\n    max_factor: 1\n  }\n}\n"),
            "x.textproto:3:5: task.arithmetic.max_factor = 1 is out of range; valid range [2, 1000000]");
  EXPECT_EQ(load_error("optimizer { beta1: 1.5 }"),
            "x.textproto:1:13: optimizer.beta1 = 1.5 is out of range; valid range [0, 1]");
  EXPECT_EQ(load_error("pretrain { model { hidden_size: 4 } }"),
            "x.textproto:1:20: pretrain.model.hidden_size = 4 is out of range; valid range [8, 65536]");
}

TEST(ConfigValidate, RangesAreInclusive) {
  const LoadedConfig loaded = load("rollout { group_size: 2 top_p: 1.0 temperature: 0 }");
  EXPECT_EQ(loaded.config.rollout().group_size(), 2);
}

TEST(ConfigValidate, EveryProblemIsReportedOnItsOwnLine) {
  EXPECT_EQ(load_error("steps: 0\nrollout { group_size: 0 }\n"),
            "x.textproto:1:1: steps = 0 is out of range; valid range [1, 10000000]\n"
            "x.textproto:2:11: rollout.group_size = 0 is out of range; valid range [2, 1024]");
}

TEST(ConfigValidate, NonFiniteDoublesAreRejected) {
  EXPECT_EQ(load_error("rollout { temperature: nan }"),
            "x.textproto:1:11: rollout.temperature = nan is not a finite number; valid range [0, 100]");
  EXPECT_EQ(load_error("", {"optimizer.max_grad_norm=inf"}),
            "--set optimizer.max_grad_norm=inf: optimizer.max_grad_norm = inf is not a finite number; valid range "
            "[0, 1000000]");
}

TEST(ConfigValidate, MinOpsMustNotExceedMaxOps) {
  EXPECT_EQ(load_error("task { arithmetic {\n  min_ops: 5\n  max_ops: 4\n} }"),
            "x.textproto:2:3: task.arithmetic.min_ops: 5 is greater than task.arithmetic.max_ops = 4 (from "
            "x.textproto:3:3); min_ops must be <= max_ops");
  // Only max_ops written: the error points at it, not at the default.
  EXPECT_EQ(load_error("", {"task.arithmetic.max_ops=1"}),
            "--set task.arithmetic.max_ops=1: task.arithmetic.max_ops: 1 is less than task.arithmetic.min_ops = 3 "
            "(from default); min_ops must be <= max_ops");
  EXPECT_NO_THROW(load("task { arithmetic { min_ops: 3 max_ops: 3 } }"));
}

TEST(ConfigValidate, DeviceMustBeAKnownChoice) {
  EXPECT_EQ(load_error("runtime {\n  device: \"gpu\"\n}"),
            "x.textproto:2:3: runtime.device: 'gpu' is not a valid choice; valid choices: auto, cpu, cuda");
  for (const char* device : {"auto", "cpu", "cuda"}) {
    EXPECT_EQ(load("", {std::string("runtime.device=") + device}).config.runtime().device(), device);
  }
}

TEST(ConfigValidate, EachGraderHasExactlyOneCompleteSource) {
  EXPECT_EQ(load_error("reward {\n  graders { name: \"accuracy\" }\n  graders { weight: 2 }\n}"),
            "x.textproto:3:3: reward.graders[1]: a grader needs a source: a registered name (name: \"math\"), a plug-in "
            "(plugin { path: ... }) or a remote server (remote { address: \"host:port\" grader: ... })");
  EXPECT_TRUE(
      starts_with(load_error("reward { graders { name: \"\" } }"), "x.textproto:1:20: reward.graders[0].name: "));
  EXPECT_EQ(load_error("reward { graders { name: \"math\" plugin { path: \"x.so\" } } }"),
            "x.textproto:1:10: reward.graders[0]: a grader has one source: give only one of name, plugin { ... } and "
            "remote { ... }");
  EXPECT_EQ(load_error("reward { graders { plugin { config_json: \"{}\" } } }"),
            "x.textproto:1:10: reward.graders[0]: plugin.path must name the plug-in's shared library (.so)");
  EXPECT_EQ(load_error("reward { graders { remote { address: \"localhost\" grader: \"math\" } } }"),
            "x.textproto:1:29: reward.graders[0].remote.address: remote.address \"localhost\" must be host:port, e.g. "
            "\"127.0.0.1:9000\"");
  EXPECT_EQ(load_error("reward { graders { remote { address: \"h:1\" } } }"),
            "x.textproto:1:10: reward.graders[0]: remote.grader must name the grader on the server");
  EXPECT_EQ(load_error("reward { graders { name: \"math\" code { slots: 2 } } }"),
            "x.textproto:1:33: reward.graders[0].code: code { ... } settings apply only to the grader named \"code\"");
  EXPECT_TRUE(starts_with(load_error("reward { graders { name: \"code\" code { default_language: \"java\" } } }"),
                          "x.textproto:1:40: reward.graders[0].code.default_language: "));
}

TEST(ConfigValidate, FormatTagsAreNonEmptyDistinctAndForTheFormatGrader) {
  EXPECT_TRUE(starts_with(load_error("reward { graders { name: \"math\" format { think_open: \"<t>\" } } }"),
                          "x.textproto:1:33: reward.graders[0].format: format { ... } settings apply only"));
  EXPECT_TRUE(contains(load_error("reward { graders { name: \"format\" format { answer_open: \"<think>\" } } }"),
                        "format tag \"<think>\" is used twice"));
  EXPECT_TRUE(contains(load_error("reward { graders { name: \"format\" format { think_close: \"\" } } }"),
                        "format tags must be non-empty"));
  const LoadedConfig loaded = load("reward { graders { name: \"format\" format { think_open: \"<reasoning>\" } } }");
  EXPECT_EQ(loaded.config.reward().graders(0).format().think_open(), "<reasoning>");
  EXPECT_EQ(loaded.config.reward().graders(0).format().think_close(), "</think>");
}

TEST(ConfigValidate, GraderSourcesThatAreAbsentStayAbsent) {
  // plugin/remote/code are kept unset when absent (their presence picks the source), unlike ordinary sections.
  const LoadedConfig loaded = load("reward { graders { name: \"code\" code { slots: 3 } } graders { name: \"math\" } }");
  ASSERT_EQ(loaded.config.reward().graders_size(), 2);
  EXPECT_TRUE(loaded.config.reward().graders(0).has_code());
  EXPECT_EQ(loaded.config.reward().graders(0).code().slots(), 3);
  EXPECT_EQ(loaded.config.reward().graders(0).code().cpu_seconds(), 2.0);  // defaults filled inside a present block
  EXPECT_TRUE(loaded.config.reward().graders(0).code().has_cpu_seconds());
  EXPECT_FALSE(loaded.config.reward().graders(1).has_code());
  EXPECT_FALSE(loaded.config.reward().graders(1).has_plugin());
  EXPECT_FALSE(loaded.config.reward().graders(1).has_remote());
  EXPECT_TRUE(loaded.config.has_rollout());  // ordinary sections are still filled in
}

// --- Overrides ---------------------------------------------------------------------------------------------------

TEST(ConfigOverride, SetsEachScalarKind) {
  const LoadedConfig loaded = load(
      "", {"rollout.group_size=16", "rollout.temperature=0.7", "seed=18446744073709551615", "logging.progress=lines",
           "grpo.loss_aggregation=TOKEN_MEAN", "name=my run: 1", "output_dir=\"with \\\"quotes\\\"\""});
  EXPECT_EQ(loaded.config.rollout().group_size(), 16);
  EXPECT_DOUBLE_EQ(loaded.config.rollout().temperature(), 0.7);
  EXPECT_EQ(loaded.config.seed(), 18446744073709551615ULL);
  EXPECT_EQ(loaded.config.logging().progress(), LINES);
  EXPECT_EQ(loaded.config.grpo().loss_aggregation(), TOKEN_MEAN);
  EXPECT_EQ(loaded.config.name(), "my run: 1");
  EXPECT_EQ(loaded.config.output_dir(), "with \"quotes\"");
}

TEST(ConfigOverride, WinsOverTheFileAndLaterOverridesWin) {
  const LoadedConfig loaded =
      load("rollout {\n  group_size: 4\n  top_k: 5\n}\n", {"rollout.group_size=16", "rollout.group_size=32"});
  EXPECT_EQ(loaded.config.rollout().group_size(), 32);
  EXPECT_EQ(loaded.config.rollout().top_k(), 5);
  EXPECT_EQ(loaded.location("rollout.group_size"), "--set rollout.group_size=32");
  EXPECT_EQ(loaded.location("rollout.top_k"), "x.textproto:3:3");
}

TEST(ConfigOverride, UnknownPathListsValidFieldsAtThatLevel) {
  EXPECT_EQ(load_error("", {"rollout.group_sizee=8"}),
            "--set rollout.group_sizee=8: unknown field 'group_sizee' in RolloutConfig; valid fields: "
            "prompts_per_step, group_size, max_new_tokens, temperature, top_p, top_k, min_p, stop_strings, workers, worker_token_file, "
            "local_workers, local_worker_threads, worker_stall_timeout_ms, worker_connect_timeout_ms, overlap, weight_transport, weight_sync_dtype, weight_broadcast_host; did you mean 'group_size'?");
  EXPECT_TRUE(starts_with(load_error("", {"rolout.group_size=8"}),
                          "--set rolout.group_size=8: unknown field 'rolout' in RunConfig; valid fields: name,"));
  EXPECT_EQ(load_error("", {"steps.value=8"}),
            "--set steps.value=8: steps is a single value (int32), not a message; nothing lies below it");
}

TEST(ConfigOverride, RepeatedMessageAndMessageFieldsCannotBeSet) {
  EXPECT_EQ(load_error("", {"reward.graders=accuracy"}),
            "--set reward.graders=accuracy: reward.graders is a repeated field; --set sets single values and adds to lists "
            "of strings, so write this list in the config file");
  EXPECT_TRUE(starts_with(load_error("", {"rollout=8"}),
                          "--set rollout=8: rollout is a message (RolloutConfig), not a single value; set one of its "
                          "fields, e.g. rollout.prompts_per_step=..."));
}

TEST(ConfigOverride, ListsOfStringsAreGivenElementByElementAndReplaceTheFilesList) {
  const std::string file = "rollout {\n  stop_strings: \"</answer>\"\n  stop_strings: \"\\n\\n\"\n}\n";
  const auto kept = load(file);
  ASSERT_EQ(kept.config.rollout().stop_strings_size(), 2);
  EXPECT_EQ(kept.config.rollout().stop_strings(1), "\n\n");
  const auto replaced = load(file, {"rollout.stop_strings=</think>", "rollout.workers=10.0.0.1:7000", "rollout.stop_strings=END",
                                                "rollout.workers=10.0.0.2:7000", "rollout.worker_token_file=/t"});
  ASSERT_EQ(replaced.config.rollout().stop_strings_size(), 2);
  EXPECT_EQ(replaced.config.rollout().stop_strings(0), "</think>");
  EXPECT_EQ(replaced.config.rollout().stop_strings(1), "END");
  ASSERT_EQ(replaced.config.rollout().workers_size(), 2);
  EXPECT_EQ(replaced.config.rollout().workers(1), "10.0.0.2:7000");
  // An element set on the command line is blamed on that --set.
  EXPECT_EQ(load_error("", {"rollout.workers=10.0.0.1:7000", "rollout.workers=nohost", "rollout.worker_token_file=/t"}),
            "--set rollout.workers=nohost: rollout.workers[1]: \"nohost\" must be host:port with a port in [1, 65535], e.g. "
            "\"127.0.0.1:7000\"");
}

TEST(ConfigOverride, BadValuesSayWhatWasExpected) {
  EXPECT_EQ(load_error("", {"rollout.group_size=eight"}),
            "--set rollout.group_size=eight: expected an integer (int32) in [2, 1024] for rollout.group_size, got "
            "'eight'");
  EXPECT_EQ(load_error("", {"rollout.group_size=8.5"}),
            "--set rollout.group_size=8.5: expected an integer (int32) in [2, 1024] for rollout.group_size, got "
            "'8.5'");
  EXPECT_EQ(load_error("", {"rollout.group_size=3000000000"}),
            "--set rollout.group_size=3000000000: 3000000000 does not fit in int32 for rollout.group_size; expected "
            "an integer (int32) in [2, 1024]");
  EXPECT_EQ(load_error("", {"seed=-1"}), "--set seed=-1: expected a non-negative integer (uint64) for seed, got '-1'");
  EXPECT_EQ(load_error("", {"rollout.top_p=high"}),
            "--set rollout.top_p=high: expected a number (double) in [0, 1] for rollout.top_p, got 'high'");
  EXPECT_EQ(load_error("", {"logging.progress=bars"}),
            "--set logging.progress=bars: logging.progress: unknown value 'bars' for ProgressMode; valid values: "
            "AUTO, BAR, LINES, QUIET; did you mean 'BAR'?");
  EXPECT_TRUE(starts_with(load_error("", {"name=\"a\\q\""}),
                          "--set name=\"a\\q\": malformed quoted string for name: Invalid escape sequence"));
}

TEST(ConfigOverride, OutOfRangeValueIsLocatedAtTheOverride) {
  EXPECT_EQ(load_error("rollout { group_size: 4 }", {"rollout.group_size=0"}),
            "--set rollout.group_size=0: rollout.group_size = 0 is out of range; valid range [2, 1024]");
}

TEST(ConfigOverride, MalformedAssignmentIsQuoted) {
  EXPECT_EQ(load_error("", {"rollout.group_size"}),
            "--set rollout.group_size: no '=' in the override; write path=value, e.g. rollout.group_size=8");
  EXPECT_EQ(load_error("", {"=8"}),
            "--set =8: the field path before '=' is empty; write path=value, e.g. rollout.group_size=8");
  EXPECT_TRUE(starts_with(load_error("", {"rollout..group_size=8"}),
                          "--set rollout..group_size=8: empty component in field path 'rollout..group_size'"));
}

// --- Defaults, locations, printing -------------------------------------------------------------------------------

TEST(ConfigDefaults, EveryFieldIsResolvedFromTheSchema) {
  const LoadedConfig loaded = load("");
  const RunConfig& config = loaded.config;
  EXPECT_TRUE(config.rollout().has_group_size());
  EXPECT_EQ(config.rollout().group_size(), 8);
  EXPECT_TRUE(config.has_seed());
  EXPECT_TRUE(config.task().arithmetic().has_min_ops());
  EXPECT_EQ(config.task().arithmetic().max_value(), 99);
  EXPECT_TRUE(config.grpo().has_loss_aggregation());
  EXPECT_DOUBLE_EQ(config.grpo().advantage_eps(), 1e-4);
  EXPECT_EQ(config.runtime().device(), "auto");
  EXPECT_TRUE(config.pretrain().model().has_rope_theta());
  ASSERT_EQ(config.reward().graders_size(), 2);
  EXPECT_EQ(config.reward().graders(0).name(), "accuracy");
  EXPECT_DOUBLE_EQ(config.reward().graders(0).weight(), 1.0);
  EXPECT_EQ(config.reward().graders(1).name(), "format");
  EXPECT_DOUBLE_EQ(config.reward().graders(1).weight(), 0.5);
}

TEST(ConfigDefaults, WrittenGradersReplaceTheDefaultPairAndGetDefaultWeights) {
  const LoadedConfig loaded = load("reward { graders { name: \"accuracy\" } }");
  ASSERT_EQ(loaded.config.reward().graders_size(), 1);
  EXPECT_TRUE(loaded.config.reward().graders(0).has_weight());
  EXPECT_DOUBLE_EQ(loaded.config.reward().graders(0).weight(), 1.0);
}

TEST(ConfigDefaults, DefaultConfigIsTheEmbeddedRunPlusOverrides) {
  const Overrides overrides = {"steps=3"};
  const LoadedConfig loaded = default_config(overrides);
  EXPECT_EQ(loaded.config.steps(), 3);
  EXPECT_EQ(loaded.config.name(), "r1zero-arithmetic");
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(default_config({}).config, load("").config));
}

TEST(ConfigLocation, FileOverrideAndDefault) {
  const LoadedConfig loaded = load(
      "steps: 10\nreward {\n  graders { name: \"accuracy\" }\n  graders {\n    name: "
      "\"format\"\n    weight: 0.25\n  }\n}\n",
      {"rollout.temperature=0.5"});
  EXPECT_EQ(loaded.location("steps"), "x.textproto:1:1");
  EXPECT_EQ(loaded.location("reward"), "x.textproto:2:1");
  EXPECT_EQ(loaded.location("reward.graders[1]"), "x.textproto:4:3");
  EXPECT_EQ(loaded.location("reward.graders[1].weight"), "x.textproto:6:5");
  EXPECT_EQ(loaded.location("reward.graders[0].weight"), "default");
  EXPECT_EQ(loaded.location("rollout.temperature"), "--set rollout.temperature=0.5");
  EXPECT_EQ(loaded.location("rollout.group_size"), "default");
  EXPECT_THROW(loaded.location("rollout.group_sise"), std::invalid_argument);
  EXPECT_THROW(loaded.location("reward.graders.name"), std::invalid_argument);
}

TEST(ConfigPrint, ResolvedConfigRoundTrips) {
  const LoadedConfig loaded = load(
      "name: \"trip\"\nrollout { temperature: 0.1 top_p: 0.95 }\n"
      "optimizer { lr: 3e-7 schedule: COSINE }\n",
      {"grpo.kl_beta=0.001", "seed=42"});
  const std::string text = to_textproto(loaded.config);
  EXPECT_EQ(to_textproto(loaded.config), text);
  EXPECT_TRUE(contains(text, "group_size: 8\n"));
  const LoadedConfig reloaded = load_config_text(text, "config.textproto", {});
  std::string difference;
  google::protobuf::util::MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&difference);
  EXPECT_TRUE(differencer.Compare(loaded.config, reloaded.config)) << difference;
  EXPECT_EQ(reloaded.location("rollout.group_size").substr(0, 17), "config.textproto:");
}

TEST(ConfigChecks, CheckChoiceListsTheValidChoicesAtTheLocation) {
  const LoadedConfig loaded = load("task {\n  prompt_template: \"r1\"\n}\n");
  const std::vector<std::string> templates = {"r1_zero", "r1_zero_compact"};
  EXPECT_EQ(error_of([&] {
              check_choice(loaded, "task.prompt_template", loaded.config.task().prompt_template(), templates);
            }),
            "x.textproto:2:3: task.prompt_template: 'r1' is not a valid choice; valid choices: r1_zero, "
            "r1_zero_compact");
  EXPECT_NO_THROW(check_choice(loaded, "task.prompt_template", "r1_zero", templates));
}

TEST(ConfigChecks, FailAtPrefixesLocationAndPath) {
  const LoadedConfig loaded = load("", {"model.path=/nowhere"});
  EXPECT_EQ(error_of([&] { fail_at(loaded, "model.path", "no config.json in /nowhere"); }),
            "--set model.path=/nowhere: model.path: no config.json in /nowhere");
  EXPECT_EQ(error_of([&] { fail_at(loaded, "eval.seed", "bad"); }), "default: eval.seed: bad");
}

}  // namespace
}  // namespace grpo::config
