// Parsing coding-dataset test specifications and comparing program output against them (see code_tests.h).
#include "reward/code_tests.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "reward/grader.h"

namespace grpo::reward {
namespace {

using Json = nlohmann::json;

Json parse_json(std::string_view text, std::string_view what) {
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& error) {
    throw std::invalid_argument(fmt::format("{} is not JSON: {}", what, error.what()));
  }
}

// Dataset tests hold strings, or lists of lines for multi-line inputs.
std::string text_of(const Json& value, std::string_view where) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_array()) {
    std::string joined;
    for (const Json& line : value) {
      if (!line.is_string()) throw std::invalid_argument(fmt::format("{} is a list with a non-string element", where));
      joined += line.get<std::string>();
      joined += '\n';
    }
    return joined;
  }
  if (value.is_number()) return value.dump();
  throw std::invalid_argument(fmt::format("{} must be a string or a list of lines, got {}", where, value.type_name()));
}

// A function call's arguments: a JSON array, or LiveCodeBench's string with one JSON value per line.
std::string call_arguments(const Json& value, std::string_view where) {
  if (value.is_array()) return value.dump();
  if (value.is_string()) {
    Json arguments = Json::array();
    const std::string text = value.get<std::string>();
    std::size_t begin = 0;
    while (begin <= text.size()) {
      std::size_t end = text.find('\n', begin);
      if (end == std::string::npos) end = text.size();
      const std::string_view line = trim_ascii_space(std::string_view(text).substr(begin, end - begin));
      if (!line.empty()) arguments.push_back(parse_json(line, where));
      begin = end + 1;
    }
    return arguments.dump();
  }
  throw std::invalid_argument(
      fmt::format("{} must be a JSON array of arguments or a string of JSON lines, got {}", where, value.type_name()));
}

bool numbers_close(double a, double b) {
  if (a == b) return true;
  if (!std::isfinite(a) || !std::isfinite(b)) return false;
  return std::fabs(a - b) <= 1e-9 * std::max(std::fabs(a), std::fabs(b));
}

bool json_equal(const Json& a, const Json& b) {
  if (a.is_number() && b.is_number()) return numbers_close(a.get<double>(), b.get<double>());
  if (a.is_array() && b.is_array()) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!json_equal(a[i], b[i])) return false;
    }
    return true;
  }
  if (a.is_object() && b.is_object()) {
    if (a.size() != b.size()) return false;
    for (auto it = a.begin(); it != a.end(); ++it) {
      const auto other = b.find(it.key());
      if (other == b.end() || !json_equal(*it, *other)) return false;
    }
    return true;
  }
  return a == b;
}

std::vector<std::string_view> lines_without_trailing_space(std::string_view text) {
  std::vector<std::string_view> lines;
  std::size_t begin = 0;
  while (begin <= text.size()) {
    std::size_t end = text.find('\n', begin);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(begin, end - begin);
    while (!line.empty() && is_ascii_space(line.back())) line.remove_suffix(1);
    lines.push_back(line);
    begin = end + 1;
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

}  // namespace

CodeTestSuite parse_code_tests(std::string_view reference, std::size_t max_cases) {
  Json spec = parse_json(reference, "the reference");
  if (spec.is_string()) spec = parse_json(spec.get<std::string>(), "the reference (a JSON string)");
  if (!spec.is_object()) {
    throw std::invalid_argument(fmt::format(
        "the reference must be a JSON object with \"inputs\" and \"outputs\", got {}", spec.type_name()));
  }
  const auto inputs = spec.find("inputs");
  const auto outputs = spec.find("outputs");
  if (inputs == spec.end() || outputs == spec.end()) {
    throw std::invalid_argument("the reference needs both \"inputs\" and \"outputs\"");
  }
  if (!inputs->is_array() || !outputs->is_array()) {
    throw std::invalid_argument("\"inputs\" and \"outputs\" must be lists, one element per test case");
  }
  if (inputs->size() != outputs->size()) {
    throw std::invalid_argument(fmt::format("\"inputs\" has {} cases but \"outputs\" has {}", inputs->size(),
                                            outputs->size()));
  }
  if (inputs->empty()) throw std::invalid_argument("the reference has no test cases");
  if (inputs->size() > max_cases) {
    throw std::invalid_argument(fmt::format("the reference has {} test cases; the limit is {}", inputs->size(),
                                            max_cases));
  }

  CodeTestSuite suite;
  if (const auto fn_name = spec.find("fn_name"); fn_name != spec.end() && !fn_name->is_null()) {
    if (!fn_name->is_string() || fn_name->get<std::string>().empty()) {
      throw std::invalid_argument("\"fn_name\" must be a non-empty string");
    }
    suite.kind = CodeTestKind::kFunctionCall;
    suite.fn_name = fn_name->get<std::string>();
  }
  suite.cases.reserve(inputs->size());
  for (std::size_t i = 0; i < inputs->size(); ++i) {
    const std::string where_in = fmt::format("inputs[{}]", i);
    const Json& expected = (*outputs)[i];
    if (suite.kind == CodeTestKind::kFunctionCall) {
      suite.cases.push_back({call_arguments((*inputs)[i], where_in), expected.dump()});
    } else {
      suite.cases.push_back({text_of((*inputs)[i], where_in), text_of(expected, fmt::format("outputs[{}]", i))});
    }
  }
  return suite;
}

std::optional<std::string> stdout_difference(std::string_view actual, std::string_view expected) {
  const auto got = lines_without_trailing_space(actual);
  const auto want = lines_without_trailing_space(expected);
  const std::size_t common = std::min(got.size(), want.size());
  for (std::size_t i = 0; i < common; ++i) {
    if (got[i] != want[i]) {
      return fmt::format("line {}: expected {}, got {}", i + 1, quote_excerpt(want[i], 40), quote_excerpt(got[i], 40));
    }
  }
  if (got.size() != want.size()) return fmt::format("expected {} lines, got {}", want.size(), got.size());
  return std::nullopt;
}

std::optional<std::string> call_result_difference(std::string_view actual_json, std::string_view expected_json) {
  Json actual;
  try {
    actual = Json::parse(actual_json);
  } catch (const Json::parse_error&) {
    return fmt::format("the function returned a value that is not JSON: {}", quote_excerpt(actual_json, 40));
  }
  const Json expected = Json::parse(expected_json);  // parse_code_tests produced it with dump()
  if (json_equal(actual, expected)) return std::nullopt;
  if (expected.is_array() && expected.size() == 1 && json_equal(actual, expected[0])) return std::nullopt;
  return fmt::format("expected {}, got {}", quote_excerpt(expected.dump(), 40), quote_excerpt(actual.dump(), 40));
}

}  // namespace grpo::reward
