// Parsing and --help generation from one CommandSpec table (see arg_parser.h), with typo suggestions so that a
// wrong command line says what was meant.
#include "rl/cli/arg_parser.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <set>
#include <sstream>
#include <system_error>

namespace grpo::rl::cli {
namespace {

// A term ("--model DIR") longer than this starts its own line and its help goes on the next, so that one long
// option does not push every description to the right.
constexpr std::size_t kMaxTermColumn = 32;
constexpr std::string_view kHelpText = "Show this help and exit.";

bool is_reserved(std::string_view name) { return name == "help" || name == "h"; }

// Words that start with '-' are options, except "-" alone (stdin, by convention) and negative numbers, which are
// positionals or values.
bool looks_like_option(std::string_view arg) {
  if (arg.size() < 2 || arg[0] != '-') return false;
  const char second = arg[1];
  return !(std::isdigit(static_cast<unsigned char>(second)) || second == '.');
}

// A word that cannot be the value of the option before it: "--model --config x" is a missing value, not a model
// folder named "--config". A value that really starts with "--" is written --model=--odd.
bool cannot_be_value(std::string_view arg) { return arg.starts_with("--") || arg == "-h"; }

// Optimal string alignment distance: Levenshtein plus adjacent transpositions, so that "modle" is one edit from
// "model" (the commonest typo is a swapped pair).
std::size_t edit_distance(std::string_view a, std::string_view b) {
  const std::size_t n = a.size();
  const std::size_t m = b.size();
  std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
  for (std::size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= n; ++i) {
    for (std::size_t j = 1; j <= m; ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

// The option the user most likely meant, or "" when nothing is close. The threshold (a third of the typed length,
// at least one edit) keeps suggestions for real typos without proposing unrelated names for short words.
std::string closest_option(const CommandSpec& spec, std::string_view typed) {
  std::vector<std::string_view> candidates;
  for (const OptionSpec& option : spec.options) candidates.push_back(option.name);
  candidates.push_back("help");

  const std::size_t threshold = std::max<std::size_t>(1, typed.size() / 3);
  std::string_view best;
  std::size_t best_distance = threshold + 1;
  for (std::string_view candidate : candidates) {
    const std::size_t distance = edit_distance(typed, candidate);
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  if (!best.empty()) return std::string(best);
  // An abbreviation ("--num" for "--num-problems") is far in edits but unambiguous when only one name extends it.
  std::string_view extended;
  for (std::string_view candidate : candidates) {
    if (!typed.empty() && candidate.starts_with(typed)) {
      if (!extended.empty()) return "";
      extended = candidate;
    }
  }
  return std::string(extended);
}

std::string option_term(const OptionSpec& option) {
  return option.metavar.empty() ? fmt::format("--{}", option.name)
                                : fmt::format("--{} {}", option.name, option.metavar);
}

std::string positional_term(const PositionalSpec& positional) { return fmt::format("<{}>", positional.name); }

[[noreturn]] void throw_unknown_option(const CommandSpec& spec, std::string_view arg, std::string_view typed) {
  const std::string suggestion = closest_option(spec, typed);
  if (!suggestion.empty()) {
    throw UsageError(fmt::format("unknown option '{}'; did you mean '--{}'?", arg, suggestion));
  }
  std::vector<std::string> names;
  for (const OptionSpec& option : spec.options) names.push_back("--" + option.name);
  names.push_back("--help");
  throw UsageError(
      fmt::format("unknown option '{}' for '{}'; valid options: {}", arg, spec.name, fmt::join(names, ", ")));
}

// A malformed table is a programming error, caught by the test that parses every command's spec.
void validate_spec(const CommandSpec& spec) {
  auto fail = [&](const std::string& what) {
    throw std::logic_error(fmt::format("CommandSpec '{}': {}", spec.name, what));
  };
  if (spec.name.empty()) fail("the command has no name");
  std::set<std::string, std::less<>> names;
  for (const OptionSpec& option : spec.options) {
    if (option.name.empty() || option.name.starts_with('-') || option.name.find_first_of("= \t") != std::string::npos) {
      fail(fmt::format("option name '{}' must be non-empty, without leading dashes, '=' or spaces", option.name));
    }
    if (is_reserved(option.name)) fail(fmt::format("option name '{}' is reserved for help", option.name));
    if (!names.insert(option.name).second) fail(fmt::format("option '--{}' is declared twice", option.name));
    if (option.metavar.empty() && (!option.default_value.empty() || option.required)) {
      fail(fmt::format("flag '--{}' cannot have a default or be required", option.name));
    }
  }
  bool seen_optional = false;
  for (const PositionalSpec& positional : spec.positionals) {
    if (positional.name.empty()) fail("a positional has no name");
    if (!names.insert(positional.name).second) fail(fmt::format("name '{}' is declared twice", positional.name));
    if (positional.required && seen_optional) {
      fail(fmt::format("required positional <{}> follows an optional one", positional.name));
    }
    seen_optional = seen_optional || !positional.required;
  }
}

std::vector<std::string> split_words(std::string_view text) {
  std::vector<std::string> words;
  std::istringstream stream{std::string(text)};
  for (std::string word; stream >> word;) words.push_back(word);
  return words;
}

// Greedy wrap of `words` (kept whole, so "--model DIR" never splits) into lines of at most `width` columns; a word
// longer than that gets a line of its own.
std::vector<std::string> wrap_words(const std::vector<std::string>& words, std::size_t width) {
  std::vector<std::string> lines;
  std::string line;
  for (const std::string& word : words) {
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      lines.push_back(line);
      line.clear();
    }
    if (!line.empty()) line += ' ';
    line += word;
  }
  if (!line.empty()) lines.push_back(line);
  return lines;
}

// "  term      help text that wraps
//             under itself"
void append_entry(std::string& out, std::string_view term, std::string_view help, std::size_t column) {
  const std::string left = fmt::format("  {}", term);
  const std::vector<std::string> lines = wrap_words(split_words(help), kHelpWidth - column);
  const bool term_fits = left.size() + 2 <= column && !lines.empty();
  if (term_fits) {
    out += fmt::format("{:<{}}{}\n", left, column, lines[0]);
  } else {
    out += left + '\n';
  }
  for (std::size_t i = term_fits ? 1 : 0; i < lines.size(); ++i) out += fmt::format("{:{}}{}\n", "", column, lines[i]);
}

// Paragraphs separated by blank lines are re-wrapped; a paragraph whose first line is indented (a list, a
// command) is kept as written.
void append_description(std::string& out, std::string_view description) {
  std::size_t start = 0;
  bool first = true;
  while (start < description.size()) {
    std::size_t end = description.find("\n\n", start);
    if (end == std::string_view::npos) end = description.size();
    const std::string_view paragraph = description.substr(start, end - start);
    start = end + 2;
    if (paragraph.find_first_not_of(" \n\t") == std::string_view::npos) continue;
    if (!first) out += '\n';
    first = false;
    if (paragraph.starts_with(' ')) {
      out += paragraph;
      out += '\n';
    } else {
      for (const std::string& line : wrap_words(split_words(paragraph), kHelpWidth)) out += line + '\n';
    }
  }
}

}  // namespace

std::optional<std::string> ParsedArgs::get(std::string_view name) const {
  check_declared(name);
  const auto found = values_.find(name);
  if (found == values_.end() || found->second.empty()) return std::nullopt;
  return found->second.back();
}

std::string ParsedArgs::get_or_default(std::string_view name) const {
  if (std::optional<std::string> value = get(name)) return *value;
  return defaults_.find(name)->second;
}

std::vector<std::string> ParsedArgs::get_all(std::string_view name) const {
  check_declared(name);
  const auto found = values_.find(name);
  if (found != values_.end() && !found->second.empty()) return found->second;
  const std::string& fallback = defaults_.find(name)->second;
  if (fallback.empty()) return {};
  return {fallback};
}

bool ParsedArgs::flag(std::string_view name) const {
  check_declared(name);
  const auto kind = option_is_flag_.find(name);
  if (kind == option_is_flag_.end() || !kind->second) {
    throw std::logic_error(fmt::format("ParsedArgs::flag: '{}' of '{}' takes a value; use get()", name, command_));
  }
  return values_.contains(name);
}

long long ParsedArgs::get_int(std::string_view name) const {
  const std::string text = checked_value(name, "an integer");
  long long value = 0;
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  if (error == std::errc::result_out_of_range) {
    throw UsageError(fmt::format("{} expects an integer, got '{}' (out of range)", display_name(name), text));
  }
  if (error != std::errc{} || stop != end) {
    throw UsageError(fmt::format("{} expects an integer, got '{}'", display_name(name), text));
  }
  return value;
}

double ParsedArgs::get_double(std::string_view name) const {
  const std::string text = checked_value(name, "a number");
  double value = 0.0;
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  // from_chars also reads "nan" and "inf"; no setting of ours means anything with them.
  if (error != std::errc{} || stop != end || !std::isfinite(value)) {
    throw UsageError(fmt::format("{} expects a finite number, got '{}'", display_name(name), text));
  }
  return value;
}

std::string ParsedArgs::display_name(std::string_view name) const {
  return option_is_flag_.contains(name) ? fmt::format("--{}", name) : fmt::format("<{}>", name);
}

std::string ParsedArgs::checked_value(std::string_view name, std::string_view expected) const {
  std::string value = get_or_default(name);
  if (value.empty() && !get(name)) {
    throw UsageError(fmt::format("missing {}: expects {}", display_name(name), expected));
  }
  return value;
}

void ParsedArgs::check_declared(std::string_view name) const {
  if (!defaults_.contains(name)) {
    throw std::logic_error(fmt::format("ParsedArgs: '{}' is not an option or positional of '{}'", name, command_));
  }
}

ParsedArgs parse_args(const CommandSpec& spec, std::span<const std::string> args) {
  validate_spec(spec);
  ParsedArgs parsed;
  parsed.command_ = spec.name;
  for (const OptionSpec& option : spec.options) {
    parsed.defaults_[option.name] = option.default_value;
    parsed.option_is_flag_[option.name] = option.metavar.empty();
  }
  for (const PositionalSpec& positional : spec.positionals) parsed.defaults_[positional.name] = "";

  // Help wins over every other check, so that `grpo train --modle x --help` shows what the options are.
  for (const std::string& arg : args) {
    if (arg == "--") break;
    if (arg == "-h" || arg == "--help") {
      parsed.help_requested_ = true;
      return parsed;
    }
  }

  std::vector<std::string> positional_values;
  bool options_ended = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (options_ended || !looks_like_option(arg)) {
      positional_values.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_ended = true;
      continue;
    }
    const std::string_view body = std::string_view(arg).substr(arg.starts_with("--") ? 2 : 1);
    const std::size_t equals = body.find('=');
    const std::string_view name = body.substr(0, equals);
    const auto option = std::find_if(spec.options.begin(), spec.options.end(),
                                     [&](const OptionSpec& candidate) { return candidate.name == name; });
    if (option == spec.options.end() || !arg.starts_with("--")) throw_unknown_option(spec, arg, name);

    std::string value;
    if (option->metavar.empty()) {
      if (equals != std::string_view::npos) {
        throw UsageError(fmt::format("option '--{}' is a flag and takes no value, got '{}'", name, arg));
      }
      value = "true";
    } else if (equals != std::string_view::npos) {
      value = std::string(body.substr(equals + 1));
    } else if (i + 1 < args.size() && !cannot_be_value(args[i + 1])) {
      value = args[++i];
    } else {
      throw UsageError(fmt::format("option '--{}' expects a value ({})", name, option->metavar));
    }

    std::vector<std::string>& slot = parsed.values_[option->name];
    if (!slot.empty() && !option->repeated) {
      if (option->metavar.empty()) throw UsageError(fmt::format("flag '--{}' given twice", name));
      throw UsageError(
          fmt::format("option '--{}' given twice ('{}', then '{}'); it takes one value", name, slot.back(), value));
    }
    slot.push_back(std::move(value));
  }

  if (positional_values.size() > spec.positionals.size()) {
    const std::string& extra = positional_values[spec.positionals.size()];
    if (spec.positionals.empty()) {
      throw UsageError(fmt::format("unexpected argument '{}': '{}' takes no positional arguments", extra, spec.name));
    }
    std::vector<std::string> terms;
    for (const PositionalSpec& positional : spec.positionals) terms.push_back(positional_term(positional));
    throw UsageError(fmt::format("unexpected argument '{}': '{}' takes at most {} positional argument{} ({})", extra,
                                 spec.name, spec.positionals.size(), spec.positionals.size() == 1 ? "" : "s",
                                 fmt::join(terms, " ")));
  }
  for (std::size_t i = 0; i < positional_values.size(); ++i) {
    parsed.values_[spec.positionals[i].name].push_back(positional_values[i]);
  }

  std::vector<std::string> missing;
  for (const OptionSpec& option : spec.options) {
    if (option.required && !parsed.values_.contains(option.name)) missing.push_back(option_term(option));
  }
  for (std::size_t i = positional_values.size(); i < spec.positionals.size(); ++i) {
    if (spec.positionals[i].required) missing.push_back(positional_term(spec.positionals[i]));
  }
  if (missing.size() == 1) throw UsageError(fmt::format("missing required argument {}", missing[0]));
  if (missing.size() > 1) throw UsageError(fmt::format("missing required arguments {}", fmt::join(missing, ", ")));
  return parsed;
}

std::string format_help(const CommandSpec& spec, std::string_view program) {
  std::string out;

  const std::string usage_prefix = fmt::format("Usage: {} {}", program, spec.name);
  std::vector<std::string> usage_words{"[options]"};
  for (const OptionSpec& option : spec.options) {
    if (option.required) usage_words.push_back(option_term(option));
  }
  for (const PositionalSpec& positional : spec.positionals) {
    usage_words.push_back(positional.required ? positional_term(positional)
                                              : fmt::format("[{}]", positional_term(positional)));
  }
  const std::size_t usage_indent = usage_prefix.size() + 1;
  const std::vector<std::string> usage_lines = wrap_words(usage_words, kHelpWidth - usage_indent);
  for (std::size_t i = 0; i < usage_lines.size(); ++i) {
    out += i == 0 ? fmt::format("{} {}\n", usage_prefix, usage_lines[i])
                  : fmt::format("{:{}}{}\n", "", usage_indent, usage_lines[i]);
  }

  const std::string_view about = spec.description.empty() ? spec.summary : spec.description;
  if (!about.empty()) {
    out += '\n';
    append_description(out, about);
  }

  std::size_t column = std::string_view("  -h, --help").size() + 2;
  for (const OptionSpec& option : spec.options) {
    const std::size_t width = option_term(option).size() + 4;
    if (width <= kMaxTermColumn) column = std::max(column, width);
  }
  for (const PositionalSpec& positional : spec.positionals) {
    const std::size_t width = positional_term(positional).size() + 4;
    if (width <= kMaxTermColumn) column = std::max(column, width);
  }

  if (!spec.positionals.empty()) {
    out += "\nArguments:\n";
    for (const PositionalSpec& positional : spec.positionals) {
      const std::string help = positional.required ? positional.help : positional.help + " (optional)";
      append_entry(out, positional_term(positional), help, column);
    }
  }

  out += "\nOptions:\n";
  for (const OptionSpec& option : spec.options) {
    std::string help = option.help;
    if (option.required) help += " (required)";
    if (option.repeated) help += " (repeatable)";
    if (!option.default_value.empty()) help += fmt::format(" [default: {}]", option.default_value);
    append_entry(out, option_term(option), help, column);
  }
  append_entry(out, "-h, --help", kHelpText, column);

  if (!spec.examples.empty()) {
    out += "\nExamples:\n";
    for (const std::string& example : spec.examples) out += fmt::format("  {} {}\n", program, example);
  }
  return out;
}

std::string format_command_list(std::span<const CommandSpec> commands, std::string_view program) {
  std::string out = fmt::format("Usage: {} <command> [options]\n\nCommands:\n", program);
  std::size_t column = 0;
  for (const CommandSpec& command : commands) column = std::max(column, command.name.size() + 4);
  column = std::min(column, kMaxTermColumn);
  for (const CommandSpec& command : commands) append_entry(out, command.name, command.summary, column);
  out += fmt::format("\nRun '{} <command> --help' for the options of one command.\n", program);
  return out;
}

}  // namespace grpo::rl::cli
