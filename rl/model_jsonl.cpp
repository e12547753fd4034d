// JSON Lines tokenize and score (see model_jsonl.h).
#include "rl/model_jsonl.h"

#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace grpo::rl {
namespace {

using Json = nlohmann::ordered_json;

struct Line {
  std::int64_t number = 0;  // 1-based line number in the input
  Json json;
  std::optional<std::string> error;
};

// Reads the next non-blank line; false at the end of the input.
bool next_line(std::istream& in, std::int64_t& number, Line& line) {
  std::string text;
  while (std::getline(in, text)) {
    ++number;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    line = {number, Json(), std::nullopt};
    try {
      line.json = Json::parse(text);
      if (!line.json.is_object()) line.error = "expected a JSON object";
    } catch (const Json::exception& error) {
      line.error = fmt::format("invalid JSON: {}", error.what());
    }
    return true;
  }
  return false;
}

void write_error(std::ostream& out, const Line& line, JsonlSummary& summary) {
  out << Json{{"line", line.number}, {"error", *line.error}}.dump(-1, ' ', false, Json::error_handler_t::replace) << '\n';
  ++summary.errors;
}

void write(std::ostream& out, const Json& json) { out << json.dump(-1, ' ', false, Json::error_handler_t::replace) << '\n'; }

// The ids of a score line, from "ids" or by encoding "text"; sets line.error when neither is usable.
std::vector<std::int64_t> line_ids(Line& line, const policy::Policy& policy) {
  const auto& config = policy.model->config();
  std::vector<std::int64_t> ids;
  if (line.json.contains("ids")) {
    const auto& value = line.json["ids"];
    if (!value.is_array()) {
      line.error = "\"ids\" must be an array of token ids";
      return {};
    }
    for (std::size_t i = 0; i < value.size(); ++i) {
      if (!value[i].is_number_integer()) {
        line.error = fmt::format("\"ids\"[{}] is {}, not an integer", i, value[i].dump());
        return {};
      }
      ids.push_back(value[i].get<std::int64_t>());
    }
  } else if (line.json.contains("text") && line.json["text"].is_string()) {
    ids = policy.tokenizer->encode(line.json["text"].get<std::string>());
    line.json["ids"] = ids;
  } else {
    line.error = "expected \"ids\" (an array of token ids) or \"text\" (a string)";
    return {};
  }
  if (ids.empty()) line.error = "no tokens to score";
  for (std::size_t i = 0; i < ids.size() && !line.error; ++i) {
    if (ids[i] < 0 || ids[i] >= config.vocab_size) {
      line.error = fmt::format("token id {} at position {} is outside the vocabulary of {}", ids[i], i, config.vocab_size);
    }
  }
  if (!line.error && static_cast<std::int64_t>(ids.size()) > config.max_position_embeddings) {
    line.error = fmt::format("{} tokens is more than the model's max_position_embeddings = {}", ids.size(), config.max_position_embeddings);
  }
  return line.error ? std::vector<std::int64_t>() : ids;
}

}  // namespace

JsonlSummary tokenize_jsonl(std::istream& in, std::ostream& out, const policy::Tokenizer& tokenizer) {
  JsonlSummary summary;
  std::int64_t number = 0;
  Line line;
  while (next_line(in, number, line)) {
    ++summary.lines;
    if (!line.error && !(line.json.contains("text") && line.json["text"].is_string())) line.error = "expected a \"text\" string";
    if (line.error) {
      write_error(out, line, summary);
      continue;
    }
    const auto ids = tokenizer.encode(line.json["text"].get<std::string>());
    summary.tokens += static_cast<std::int64_t>(ids.size());
    line.json["ids"] = ids;
    write(out, line.json);
  }
  return summary;
}

JsonlSummary score_jsonl(std::istream& in, std::ostream& out, policy::Policy& policy, const policy::TokenLogprobOptions& options,
                         std::int64_t lines_per_batch) {
  JsonlSummary summary;
  std::int64_t number = 0;
  bool more = true;
  while (more) {
    std::vector<Line> batch;
    std::vector<std::vector<std::int64_t>> sequences;
    std::vector<std::size_t> scored;  // indices into batch of the lines that are scored
    Line line;
    while (static_cast<std::int64_t>(scored.size()) < lines_per_batch && (more = next_line(in, number, line))) {
      ++summary.lines;
      if (!line.error) {
        auto ids = line_ids(line, policy);
        if (!line.error) {
          scored.push_back(batch.size());
          sequences.push_back(std::move(ids));
        }
      }
      batch.push_back(std::move(line));
    }
    const auto logprobs = policy::token_logprobs(policy.model, sequences, options);
    for (std::size_t i = 0; i < scored.size(); ++i) {
      // Rounded to float32 precision on output: the values are float32.
      batch[scored[i]].json["logprobs"] = logprobs[i];
      summary.tokens += static_cast<std::int64_t>(logprobs[i].size());
    }
    for (const auto& entry : batch) {
      if (entry.error) {
        write_error(out, entry, summary);
      } else {
        write(out, entry.json);
      }
    }
    out.flush();
  }
  return summary;
}

}  // namespace grpo::rl
