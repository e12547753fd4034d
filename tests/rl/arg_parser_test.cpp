// Tests for the table-driven argument parser: both spellings of values, flags, defaults, every usage error with its
// message, and --help generated from the same table (exact text for a small spec, layout rules for a larger one).
#include "rl/cli/arg_parser.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

namespace grpo::rl::cli {
namespace {

CommandSpec train_spec() {
  return CommandSpec{
      .name = "train",
      .summary = "Train a policy with GRPO.",
      .description =
          "Trains the policy in --model on the tasks of the run config.\n\n"
          "  grpo train --model DIR [config]\n"
          "  prints one line per step.",
      .positionals = {{.name = "config", .help = "Run config in protobuf text format.", .required = false}},
      .options =
          {
              {.name = "model", .metavar = "DIR", .help = "Checkpoint folder to start from.", .required = true},
              {.name = "num-problems", .metavar = "N", .help = "Problems per evaluation.", .default_value = "100"},
              {.name = "lr", .metavar = "RATE", .help = "Learning rate.", .default_value = "1e-5"},
              {.name = "set", .metavar = "KEY=VALUE", .help = "Override one config field.", .repeated = true},
              {.name = "dry-run", .help = "Print the resolved config and exit."},
              {.name = "progress", .metavar = "MODE", .help = "AUTO, BAR, LINES or QUIET.", .default_value = "AUTO"},
          },
      .examples = {"train --model runs/base --set rollout.group_size=8"},
  };
}

ParsedArgs parse(const CommandSpec& spec, std::vector<std::string> args) { return parse_args(spec, args); }

// The UsageError message of parsing `args`, or "" when parsing succeeds.
std::string usage_error(const CommandSpec& spec, std::vector<std::string> args) {
  try {
    parse_args(spec, args);
  } catch (const UsageError& error) {
    return error.what();
  }
  return "";
}

TEST(ArgParser, AcceptsSpaceAndEqualsForms) {
  const ParsedArgs args = parse(train_spec(), {"--model", "runs/a", "--num-problems=7", "cfg.textproto"});
  EXPECT_EQ(args.get("model"), "runs/a");
  EXPECT_EQ(args.get_int("num-problems"), 7);
  EXPECT_EQ(args.get("config"), "cfg.textproto");
  EXPECT_FALSE(args.help_requested());
}

TEST(ArgParser, EqualsFormKeepsLaterEqualsAndEmptyValues) {
  const ParsedArgs args = parse(train_spec(), {"--model=", "--set=a.b=c=d"});
  EXPECT_EQ(args.get("model"), "");
  EXPECT_EQ(args.get_all("set"), std::vector<std::string>{"a.b=c=d"});
}

TEST(ArgParser, GetIsNulloptWhenAbsentAndGetOrDefaultFallsBack) {
  const ParsedArgs args = parse(train_spec(), {"--model", "m"});
  EXPECT_EQ(args.get("num-problems"), std::nullopt);
  EXPECT_EQ(args.get_or_default("num-problems"), "100");
  EXPECT_EQ(args.get_int("num-problems"), 100);
  EXPECT_DOUBLE_EQ(args.get_double("lr"), 1e-5);
  EXPECT_EQ(args.get("config"), std::nullopt);
  EXPECT_EQ(args.get_or_default("config"), "");
  EXPECT_TRUE(args.get_all("set").empty());
  EXPECT_EQ(args.get_all("progress"), std::vector<std::string>{"AUTO"});
}

TEST(ArgParser, FlagsAreAbsentOrPresent) {
  EXPECT_FALSE(parse(train_spec(), {"--model", "m"}).flag("dry-run"));
  const ParsedArgs args = parse(train_spec(), {"--dry-run", "--model", "m"});
  EXPECT_TRUE(args.flag("dry-run"));
  EXPECT_EQ(args.get("dry-run"), "true");
  EXPECT_EQ(usage_error(train_spec(), {"--model", "m", "--dry-run=yes"}),
            "option '--dry-run' is a flag and takes no value, got '--dry-run=yes'");
  EXPECT_EQ(usage_error(train_spec(), {"--model", "m", "--dry-run", "--dry-run"}), "flag '--dry-run' given twice");
}

TEST(ArgParser, RepeatedOptionKeepsEveryValueInOrder) {
  const ParsedArgs args = parse(train_spec(), {"--set", "a=1", "--model", "m", "--set=b=2", "--set", "a=3"});
  EXPECT_EQ(args.get_all("set"), (std::vector<std::string>{"a=1", "b=2", "a=3"}));
  EXPECT_EQ(args.get("set"), "a=3");
}

TEST(ArgParser, NonRepeatedOptionGivenTwiceIsAnError) {
  EXPECT_EQ(usage_error(train_spec(), {"--model", "a", "--model=b"}),
            "option '--model' given twice ('a', then 'b'); it takes one value");
}

TEST(ArgParser, UnknownOptionSuggestsTheClosestName) {
  EXPECT_EQ(usage_error(train_spec(), {"--modle", "m"}), "unknown option '--modle'; did you mean '--model'?");
  EXPECT_EQ(usage_error(train_spec(), {"--model", "m", "--num_problems=3"}),
            "unknown option '--num_problems=3'; did you mean '--num-problems'?");
  EXPECT_EQ(usage_error(train_spec(), {"--model", "m", "--dryrun"}),
            "unknown option '--dryrun'; did you mean '--dry-run'?");
  EXPECT_EQ(usage_error(train_spec(), {"--hepl"}), "unknown option '--hepl'; did you mean '--help'?");
  // An unambiguous abbreviation is far in edits but still the likely intent.
  EXPECT_EQ(usage_error(train_spec(), {"--model", "m", "--num", "3"}),
            "unknown option '--num'; did you mean '--num-problems'?");
  // Options are long only; a single dash is a typo for two.
  EXPECT_EQ(usage_error(train_spec(), {"-model", "m"}), "unknown option '-model'; did you mean '--model'?");
}

TEST(ArgParser, UnknownOptionFarFromEveryNameListsTheValidOnes) {
  EXPECT_EQ(usage_error(train_spec(), {"--model", "m", "--temperature", "1"}),
            "unknown option '--temperature' for 'train'; valid options: --model, --num-problems, --lr, --set, "
            "--dry-run, --progress, --help");
}

TEST(ArgParser, MissingValueIsReported) {
  EXPECT_EQ(usage_error(train_spec(), {"--model"}), "option '--model' expects a value (DIR)");
  EXPECT_EQ(usage_error(train_spec(), {"--model", "--lr", "1"}), "option '--model' expects a value (DIR)");
  EXPECT_EQ(usage_error(train_spec(), {"--model", "m", "--lr", "--"}), "option '--lr' expects a value (RATE)");
}

TEST(ArgParser, NegativeNumbersAreValuesAndPositionals) {
  const CommandSpec spec{.name = "shift",
                         .positionals = {{.name = "offset", .help = "Offset."}},
                         .options = {{.name = "lr", .metavar = "RATE", .help = "Rate."}}};
  const ParsedArgs args = parse(spec, {"--lr", "-0.5", "-3"});
  EXPECT_DOUBLE_EQ(args.get_double("lr"), -0.5);
  EXPECT_EQ(args.get_int("offset"), -3);
}

TEST(ArgParser, MissingRequiredArgumentsAreNamed) {
  EXPECT_EQ(usage_error(train_spec(), {}), "missing required argument --model DIR");
  const CommandSpec spec{.name = "eval",
                         .positionals = {{.name = "checkpoint", .help = "Folder."}},
                         .options = {{.name = "data", .metavar = "FILE", .help = "Data.", .required = true}}};
  EXPECT_EQ(usage_error(spec, {"--data", "d.jsonl"}), "missing required argument <checkpoint>");
  EXPECT_EQ(usage_error(spec, {}), "missing required arguments --data FILE, <checkpoint>");
}

TEST(ArgParser, TooManyPositionalsIsAnError) {
  EXPECT_EQ(usage_error(train_spec(), {"--model", "m", "a.textproto", "b.textproto"}),
            "unexpected argument 'b.textproto': 'train' takes at most 1 positional argument (<config>)");
  const CommandSpec none{.name = "version"};
  EXPECT_EQ(usage_error(none, {"x"}), "unexpected argument 'x': 'version' takes no positional arguments");
}

TEST(ArgParser, DoubleDashEndsOptions) {
  const ParsedArgs args = parse(train_spec(), {"--model", "m", "--", "--odd-name.textproto"});
  EXPECT_EQ(args.get("config"), "--odd-name.textproto");
  // After `--`, even --help is a positional.
  EXPECT_EQ(parse(train_spec(), {"--model", "m", "--", "--help"}).get("config"), "--help");
  EXPECT_FALSE(parse(train_spec(), {"--model", "m", "--", "--help"}).help_requested());
}

TEST(ArgParser, HelpStopsEveryOtherCheck) {
  EXPECT_TRUE(parse(train_spec(), {"--help"}).help_requested());
  EXPECT_TRUE(parse(train_spec(), {"-h"}).help_requested());
  EXPECT_TRUE(parse(train_spec(), {"--modle", "x", "a", "b", "--help"}).help_requested());
}

TEST(ArgParser, MalformedNumbersAreUsageErrors) {
  auto int_error = [](std::vector<std::string> args) {
    try {
      parse(train_spec(), std::move(args)).get_int("num-problems");
    } catch (const UsageError& error) {
      return std::string(error.what());
    }
    return std::string();
  };
  EXPECT_EQ(int_error({"--model", "m", "--num-problems", "x"}), "--num-problems expects an integer, got 'x'");
  EXPECT_EQ(int_error({"--model", "m", "--num-problems", "12abc"}), "--num-problems expects an integer, got '12abc'");
  EXPECT_EQ(int_error({"--model", "m", "--num-problems", "1.5"}), "--num-problems expects an integer, got '1.5'");
  EXPECT_EQ(int_error({"--model", "m", "--num-problems", "99999999999999999999"}),
            "--num-problems expects an integer, got '99999999999999999999' (out of range)");

  const ParsedArgs args = parse(train_spec(), {"--model", "m", "--lr", "nan"});
  EXPECT_THROW(args.get_double("lr"), UsageError);
  EXPECT_THROW(parse(train_spec(), {"--model", "m", "--lr", "fast"}).get_double("lr"), UsageError);
  EXPECT_THROW(parse(train_spec(), {"--model", "m"}).get_int("config"), UsageError);
}

TEST(ArgParser, AskingForAnUndeclaredNameIsACallerBug) {
  const ParsedArgs args = parse(train_spec(), {"--model", "m"});
  EXPECT_THROW(args.get("modle"), std::logic_error);
  EXPECT_THROW(args.flag("model"), std::logic_error);
}

TEST(ArgParser, MalformedSpecsAreRejected) {
  const std::vector<std::string> none;
  CommandSpec duplicate{.name = "x", .options = {{.name = "a", .metavar = "A"}, {.name = "a", .metavar = "B"}}};
  EXPECT_THROW(parse_args(duplicate, none), std::logic_error);
  CommandSpec flag_default{.name = "x", .options = {{.name = "quiet", .default_value = "1"}}};
  EXPECT_THROW(parse_args(flag_default, none), std::logic_error);
  CommandSpec reserved{.name = "x", .options = {{.name = "help"}}};
  EXPECT_THROW(parse_args(reserved, none), std::logic_error);
  CommandSpec dashes{.name = "x", .options = {{.name = "--model", .metavar = "DIR"}}};
  EXPECT_THROW(parse_args(dashes, none), std::logic_error);
  CommandSpec order{.name = "x", .positionals = {{.name = "a", .required = false}, {.name = "b"}}};
  EXPECT_THROW(parse_args(order, none), std::logic_error);
  CommandSpec clash{.name = "x", .positionals = {{.name = "a"}}, .options = {{.name = "a", .metavar = "A"}}};
  EXPECT_THROW(parse_args(clash, none), std::logic_error);
}

TEST(ArgParser, HelpTextOfASmallSpecIsExact) {
  const CommandSpec spec{
      .name = "eval",
      .summary = "Evaluate a checkpoint.",
      .description = "Scores a checkpoint on held-out problems.",
      .positionals = {{.name = "checkpoint", .help = "Checkpoint folder."}},
      .options = {{.name = "samples", .metavar = "K", .help = "Samples per problem.", .default_value = "1"},
                  {.name = "set", .metavar = "KEY=VALUE", .help = "Override a field.", .repeated = true},
                  {.name = "data", .metavar = "FILE", .help = "Problems.", .required = true},
                  {.name = "greedy", .help = "Sample with temperature 0."}},
      .examples = {"eval runs/a/step_100 --data test.jsonl"},
  };
  EXPECT_EQ(format_help(spec, "grpo"),
            "Usage: grpo eval [options] --data FILE <checkpoint>\n"
            "\n"
            "Scores a checkpoint on held-out problems.\n"
            "\n"
            "Arguments:\n"
            "  <checkpoint>     Checkpoint folder.\n"
            "\n"
            "Options:\n"
            "  --samples K      Samples per problem. [default: 1]\n"
            "  --set KEY=VALUE  Override a field. (repeatable)\n"
            "  --data FILE      Problems. (required)\n"
            "  --greedy         Sample with temperature 0.\n"
            "  -h, --help       Show this help and exit.\n"
            "\n"
            "Examples:\n"
            "  grpo eval runs/a/step_100 --data test.jsonl\n");
}

TEST(ArgParser, HelpWrapsLongTextUnderItsColumn) {
  CommandSpec spec = train_spec();
  spec.description.clear();
  for (int i = 0; i < 60; ++i) spec.description += "lorem ipsum ";
  spec.description += "\n\n  verbatim   line";
  spec.options.push_back({.name = "a-very-long-option-name-indeed", .metavar = "VALUE", .help = "Short."});
  spec.options[0].help = std::string(60, 'a') + " " + std::string(60, 'b') + " " + std::string(60, 'c');
  const std::string help = format_help(spec, "grpo");

  std::istringstream lines(help);
  std::vector<std::string> all;
  for (std::string line; std::getline(lines, line);) {
    EXPECT_LE(line.size(), kHelpWidth) << line;
    all.push_back(line);
  }
  EXPECT_NE(help.find("\n  verbatim   line\n"), std::string::npos);
  // The long help continues under its own column; the over-long option term gets a line of its own.
  EXPECT_NE(help.find("\n  --model DIR       " + std::string(60, 'a') + "\n"), std::string::npos) << help;
  EXPECT_NE(help.find("\n" + std::string(20, ' ') + std::string(60, 'b') + "\n"), std::string::npos) << help;
  EXPECT_NE(help.find("\n  --a-very-long-option-name-indeed VALUE\n                    Short.\n"), std::string::npos)
      << help;
}

// The help of a spec names every option the parser accepts, and the parser accepts every option the help names.
TEST(ArgParser, HelpAndParserAgreeOnEveryOption) {
  const CommandSpec spec = train_spec();
  const std::string help = format_help(spec, "grpo");
  EXPECT_NE(help.find("Usage: grpo train [options] --model DIR [<config>]\n"), std::string::npos) << help;
  EXPECT_NE(help.find("  grpo train --model runs/base --set rollout.group_size=8\n"), std::string::npos);
  for (const OptionSpec& option : spec.options) {
    const std::string term = option.metavar.empty() ? "--" + option.name : "--" + option.name + " " + option.metavar;
    EXPECT_NE(help.find("  " + term + " "), std::string::npos) << term;
    std::vector<std::string> args{"--model", "m"};
    if (option.name != "model") {
      args.push_back("--" + option.name);
      if (!option.metavar.empty()) args.push_back("1");
    }
    EXPECT_EQ(usage_error(spec, args), "") << option.name;
  }
}

TEST(ArgParser, CommandListShowsEverySummary) {
  const std::vector<CommandSpec> commands{
      {.name = "train", .summary = "Train a policy with GRPO."},
      {.name = "evaluate", .summary = "Score a checkpoint on held-out problems."},
  };
  EXPECT_EQ(format_command_list(commands, "grpo"),
            "Usage: grpo <command> [options]\n"
            "\n"
            "Commands:\n"
            "  train     Train a policy with GRPO.\n"
            "  evaluate  Score a checkpoint on held-out problems.\n"
            "\n"
            "Run 'grpo <command> --help' for the options of one command.\n");
}

}  // namespace
}  // namespace grpo::rl::cli
