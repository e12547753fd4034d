// Batch grading of JSON Lines (see grade_jsonl.h). Each line is handled on its own: a malformed line becomes an error
// line and the next line is graded, so one bad row in a 100k-row file costs one row, not the run.
#include "reward/grade_jsonl.h"

#include <functional>
#include <initializer_list>
#include <istream>
#include <map>
#include <memory>
#include <optional>
#include <vector>
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

// A {"completion", "reference", "grader"} line waiting for its chunk to be graded. Owns the texts the GradeInput views.
struct GraderLine {
  std::string grader;
  std::string prompt, completion, reference, metadata;
  GradeResult result;
};

// One input line on its way out: its JSON (with verdict fields once graded) or its error.
struct PendingLine {
  std::size_t number = 0;
  Json object;
  std::optional<std::string> error;
  std::optional<GraderLine> graded;  // set for the grader form, until the chunk is graded
};

// Lines are graded in chunks so that a grader sees a batch (the code grader runs a batch on parallel sandbox slots,
// a remote grader sends it in one request) while output stays in input order and memory stays bounded.
constexpr std::size_t kChunkLines = 64;

class LineGrader {
 public:
  explicit LineGrader(const GradeJsonlOptions& options) : options_(options) {}

  // Reads the line's form: compares a pair at once, or queues a grader line for grade_chunk. Throws LineError when
  // the line is malformed.
  void read(PendingLine& line, GradeJsonlSummary& summary) {
    Json& object = line.object;
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
      line.graded = read_grader_line(object);
    } else {
      throw LineError(R"(expected {"gold", "pred"} or {"completion", "reference", "grader"})");
    }
  }

  // Grades every queued grader line of the chunk, one grade_batch per grader, and adds the verdict fields.
  void grade_chunk(std::vector<PendingLine>& chunk, GradeJsonlSummary& summary) {
    std::map<std::string, std::vector<PendingLine*>, std::less<>> by_grader;
    for (PendingLine& line : chunk) {
      if (line.graded && !line.error) by_grader[line.graded->grader].push_back(&line);
    }
    for (auto& [name, lines] : by_grader) {
      const Grader* grader = nullptr;
      try {
        grader = &grader_named(name);
      } catch (const LineError& e) {
        for (PendingLine* line : lines) line->error = e.what();
        continue;
      }
      std::vector<GradeInput> inputs;
      inputs.reserve(lines.size());
      for (const PendingLine* line : lines) {
        const GraderLine& g = *line->graded;
        inputs.push_back({.prompt = g.prompt, .completion = g.completion, .reference = g.reference,
                          .metadata = g.metadata});
      }
      // grade_batch carries the contract that a grader's own exception becomes scorable=false.
      std::vector<GradeResult> results = grader->grade_batch(inputs);
      for (std::size_t i = 0; i < lines.size(); ++i) {
        add_verdict(lines[i]->object, name, std::move(results.at(i)));
        ++summary.graded;
        if (!lines[i]->object["scorable"].get<bool>()) ++summary.unscorable;
      }
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

  static GraderLine read_grader_line(const Json& object) {
    constexpr std::string_view kForm = R"({"completion", "reference", "grader"})";
    GraderLine line;
    line.completion = required_string(object, "completion", kForm);
    line.reference = required_string(object, "reference", kForm);
    line.grader = required_string(object, "grader", kForm);
    if (object.contains("prompt")) line.prompt = required_string(object, "prompt", kForm);
    // Metadata is the row's other facts for the grader (e.g. {"language": "cpp"}): an object, or its JSON text.
    if (const auto it = object.find("metadata"); it != object.end() && !it->is_null()) {
      if (it->is_object()) {
        line.metadata = it->dump();
      } else if (it->is_string()) {
        line.metadata = it->get<std::string>();
      } else {
        throw LineError(fmt::format("field \"metadata\" must be an object or a string, got {}", it->type_name()));
      }
    }
    return line;
  }

  static void add_verdict(Json& object, const std::string& name, GradeResult result) {
    object["score"] = result.score;
    Json components = Json::object();
    if (result.components.empty()) components[name] = result.score;
    for (const GradeComponent& component : result.components) components[component.name] = component.score;
    object["components"] = std::move(components);
    object["extracted"] = std::move(result.extracted);
    object["reason"] = std::move(result.reason);
    object["scorable"] = result.scorable;
    if (!result.tests.empty()) {
      Json tests = Json::array();
      for (TestOutcome& test : result.tests) {
        tests.push_back(Json{{"verdict", std::move(test.verdict)}, {"detail", std::move(test.detail)},
                             {"seconds", test.seconds}});
      }
      object["tests"] = std::move(tests);
    }
  }

  // One grader per name for the whole file: some graders are costly to build (a sandbox pool, a connection).
  const Grader& grader_named(const std::string& name) {
    if (options_.find_grader) {
      if (const Grader* grader = options_.find_grader(name)) return *grader;
    }
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
  std::vector<PendingLine> chunk;
  const auto flush = [&] {
    line_grader.grade_chunk(chunk, summary);
    for (const PendingLine& line : chunk) {
      if (line.error) {
        ++summary.errors;
        out << dump_line(Json{{"line", line.number}, {"error", *line.error}}) << '\n';
      } else {
        out << dump_line(line.object) << '\n';
      }
    }
    out.flush();
    chunk.clear();
  };
  std::string text;
  for (std::size_t line_number = 1; std::getline(in, text); ++line_number) {
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (trim_ascii_space(text).empty()) continue;
    ++summary.lines;
    PendingLine& line = chunk.emplace_back();
    line.number = line_number;
    try {
      line.object = Json::parse(text);
      if (!line.object.is_object()) {
        throw LineError(fmt::format("expected a JSON object, got {}", line.object.type_name()));
      }
      line_grader.read(line, summary);
    } catch (const Json::parse_error& e) {
      line.error = fmt::format("bad JSON: {}", e.what());
    } catch (const LineError& e) {
      line.error = e.what();
    } catch (const Json::exception& e) {  // e.g. a number literal out of range (1e999)
      line.error = fmt::format("bad JSON: {}", e.what());
    }
    if (chunk.size() == kChunkLines) flush();
  }
  flush();
  return summary;
}

}  // namespace grpo::reward
