// Command-line parsing for the `grpo` subcommands. One CommandSpec table per subcommand both parses the
// arguments and generates its --help text, so the help can never drift from what the parser accepts.
#pragma once

#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace grpo::rl::cli {

// The specs are written as designated initializers ({.name = "model", .metavar = "DIR", ...}); every member has a
// default member initializer so that the fields a table leaves out do not trip -Wmissing-field-initializers.

// One `--name` option. A flag is an option with an empty metavar: it takes no value.
struct OptionSpec {
  std::string name{};     // "model" for --model
  std::string metavar{};  // "DIR" in "--model DIR"; empty for a flag
  std::string help{};     // one sentence or a few; wrapped when printed
  // Shown in --help and returned by get_or_default() when the option is absent; empty means no default. Options
  // that override a config field keep this empty: the config schema owns that default.
  std::string default_value{};
  bool repeated = false;  // may be given several times, e.g. --set KEY=VALUE
  bool required = false;
};

struct PositionalSpec {
  std::string name{};  // shown as <name>
  std::string help{};
  bool required = true;  // optional positionals must follow every required one
};

struct CommandSpec {
  std::string name{};         // "train"
  std::string summary{};      // one line, for the top-level command list
  std::string description{};  // paragraph(s) for --help, separated by blank lines; indented lines print verbatim
  std::vector<PositionalSpec> positionals{};
  std::vector<OptionSpec> options{};
  // Command lines after the program name ("train --config examples/arithmetic.textproto"); --help prefixes the
  // program name so that the examples stay right whatever the binary is called.
  std::vector<std::string> examples{};
};

// The command line is wrong (unknown option, missing or malformed value): the `grpo` boundary prints the message
// with a pointer to --help and exits with status 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The result of parse_args(). Asking for a name that the CommandSpec does not declare is a bug in the caller,
// not in the command line, and throws std::logic_error.
class ParsedArgs {
 public:
  // The value given on the command line for an option or positional (the last one for a repeated option; "true"
  // for a flag that was given); std::nullopt when absent, even if the spec has a default.
  std::optional<std::string> get(std::string_view name) const;
  // The value given, else the spec's default_value, else "".
  std::string get_or_default(std::string_view name) const;
  // Every value given for the option, in command-line order; when none was given, the default (if any) alone.
  std::vector<std::string> get_all(std::string_view name) const;
  // Whether a flag was given; throws std::logic_error for an option that takes a value.
  bool flag(std::string_view name) const;
  // get_or_default() converted; UsageError ("--num-problems expects an integer, got 'x'") when malformed or when
  // there is neither a value nor a default.
  long long get_int(std::string_view name) const;
  double get_double(std::string_view name) const;  // finite numbers only; same errors as get_int()
  // -h or --help was given: the caller prints format_help() and exits 0. No other argument was checked.
  bool help_requested() const { return help_requested_; }

 private:
  friend ParsedArgs parse_args(const CommandSpec& spec, std::span<const std::string> args);

  // "--model" for an option, "<config>" for a positional: how messages name the argument.
  std::string display_name(std::string_view name) const;
  std::string checked_value(std::string_view name, std::string_view expected) const;
  void check_declared(std::string_view name) const;

  std::string command_;
  std::map<std::string, std::vector<std::string>, std::less<>> values_;
  std::map<std::string, std::string, std::less<>> defaults_;  // every declared name, "" when none
  std::map<std::string, bool, std::less<>> option_is_flag_;   // options only
  bool help_requested_ = false;
};

// Parses `args`, the words after the subcommand name. Throws UsageError for a wrong command line and
// std::logic_error for a malformed spec (duplicate names, a flag with a default, ...).
ParsedArgs parse_args(const CommandSpec& spec, std::span<const std::string> args);

// The --help text of one subcommand: usage line, description, arguments, options (metavar, default, whether
// required or repeatable) and examples, wrapped at kHelpWidth columns.
std::string format_help(const CommandSpec& spec, std::string_view program);

// The top-level `grpo --help`: every subcommand with its one-line summary.
std::string format_command_list(std::span<const CommandSpec> commands, std::string_view program);

// Wrap column of the help text: wide enough for option descriptions on one line, narrow enough for a split
// terminal.
inline constexpr std::size_t kHelpWidth = 100;

}  // namespace grpo::rl::cli
