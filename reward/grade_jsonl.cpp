// Batch grading of JSON Lines (see grade_jsonl.h). Each line is handled on its own: a malformed line becomes an error
// line and the next line is graded, so one bad row in a 100k-row file costs one row, not the run.
#include "reward/grade_jsonl.h"

#include <functional>
#include <initializer_list>
#include <istream>
#include <map>
#include <memory>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "reward/grader.h"
#include "reward/grader_registry.h"

namespace grpo::reward {
namespace {

// ordered_json keeps the input's field order, so an output line reads like its input line with fields appended.
using Json = nlohmann::ordered_json;

// Thrown for a malformed line; caught once per line in grade_jsonl and turned into {"line": N, "error": ...}.
class LineError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Compact, and never throws on invalid UTF-8 (an extracted answer may cut a multi-byte character): such bytes become
// U+FFFD rather than losing the line.
std::string dump_line(const Json& value) {
  return value.dump(/*indent=*/-1, /*indent_char=*/' ', /*ensure_ascii=*/false, Json::error_handler_t::replace);
}

std::string required_string(const Json& object, const char* key, std::string_view form) {
  const auto it = object.find(key);
  if (it == object.end()) throw LineError(fmt::format("missing field \"{}\" ({} line)", key, form));
  if (!it->is_string()) throw LineError(fmt::format("field \"{}\" must be a string, got {}", key, it->type_name()));
  return it->get<std::string>();
}

// Answers in datasets are often bare JSON numbers (42, 0.5). They are compared as the JSON library prints them back,
// which is exact for integers up to 64 bits and the shortest round-trip form for decimals.
std::string answer_text(const Json& object, const char* key) {
  const auto it = object.find(key);
  if (it == object.end()) throw LineError(fmt::format("missing field \"{}\" ({{\"gold\", \"pred\"}} line)", key));
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number()) return it->dump();
  throw LineError(fmt::format("field \"{}\" must be a string or a number, got {}", key, it->type_name()));
}

bool has_any(const Json& object, std::initializer_list<const char*> keys) {
  for (const char* key : keys) {
    if (object.contains(key)) return true;
  }
  return false;
}

class LineGrader {
 public:
  explicit LineGrader(const GradeJsonlOptions& options) : options_(options) {}

  // Adds the verdict fields to `object`; throws LineError when the line is malformed.
  void grade(Json& object, GradeJsonlSummary& summary) {
    const bool pair_form = has_any(object, {"gold", "pred"});
    const bool grader_form = has_any(object, {"completion", "reference", "grader"});
    if (pair_form && grader_form) {
      throw LineError(R"(line mixes {"gold", "pred"} with {"completion", "reference", "grader"}; use one form)");
    }
    if (pair_form) {
      compare_pair(object);
      ++summary.pairs;
      if (object["equal"].get<bool>()) ++summary.pairs_equal;
    } else if (grader_form) {
      if (!run_grader(object)) ++summary.unscorable;
      ++summary.graded;
    } else {
      throw LineError(R"(expected {"gold", "pred"} or {"completion", "reference", "grader"})");
    }
  }

 private:
  void compare_pair(Json& object) const {
    const std::string gold = answer_text(object, "gold");
    const std::string pred = answer_text(object, "pred");
    const MathVerdict verdict = math_equivalent(gold, pred, options_.compare);
    object["equal"] = verdict.equal;
    object["reason"] = verdict.reason;
  }

  // Returns whether the result was scorable.
  bool run_grader(Json& object) {
    constexpr std::string_view kForm = R"({"completion", "reference", "grader"})";
    const std::string completion = required_string(object, "completion", kForm);
    const std::string reference = required_string(object, "reference", kForm);
    const std::string name = required_string(object, "grader", kForm);
    std::string prompt;
    if (object.contains("prompt")) prompt = required_string(object, "prompt", kForm);

    const Grader& grader = grader_named(name);
    const GradeInput input{.prompt = prompt, .completion = completion, .reference = reference};
    // grade_batch, not grade: it carries the contract that a grader's own exception becomes scorable=false.
    GradeResult result = std::move(grader.grade_batch({&input, 1}).at(0));
    object["score"] = result.score;
    object["components"] = Json::object({{name, result.score}});
    object["extracted"] = std::move(result.extracted);
    object["reason"] = std::move(result.reason);
    object["scorable"] = result.scorable;
    return result.scorable;
  }

  // One grader per name for the whole file: some graders are costly to build (a sandbox pool, a connection).
  const Grader& grader_named(const std::string& name) {
    auto it = graders_.find(name);
    if (it == graders_.end()) {
      std::unique_ptr<Grader> grader;
      try {
        grader = make_grader(name);
      } catch (const std::invalid_argument& e) {
        throw LineError(e.what());
      } catch (const std::runtime_error& e) {
        throw LineError(fmt::format("cannot create grader \"{}\": {}", name, e.what()));
      }
      it = graders_.emplace(name, std::move(grader)).first;
    }
    return *it->second;
  }

  const GradeJsonlOptions& options_;
  std::map<std::string, std::unique_ptr<Grader>, std::less<>> graders_;
};

}  // namespace

GradeJsonlSummary grade_jsonl(std::istream& in, std::ostream& out, const GradeJsonlOptions& options) {
  GradeJsonlSummary summary;
  LineGrader line_grader(options);
  std::string line;
  for (std::size_t line_number = 1; std::getline(in, line); ++line_number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (trim_ascii_space(line).empty()) continue;
    ++summary.lines;
    std::string output;
    try {
      Json object = Json::parse(line);
      if (!object.is_object()) throw LineError(fmt::format("expected a JSON object, got {}", object.type_name()));
      line_grader.grade(object, summary);
      output = dump_line(object);
    } catch (const Json::parse_error& e) {
      ++summary.errors;
      output = dump_line(Json{{"line", line_number}, {"error", fmt::format("bad JSON: {}", e.what())}});
    } catch (const LineError& e) {
      ++summary.errors;
      output = dump_line(Json{{"line", line_number}, {"error", e.what()}});
    } catch (const Json::exception& e) {  // e.g. a number literal out of range (1e999)
      ++summary.errors;
      output = dump_line(Json{{"line", line_number}, {"error", fmt::format("bad JSON: {}", e.what())}});
    }
    out << output << '\n';
  }
  return summary;
}

}  // namespace grpo::reward
