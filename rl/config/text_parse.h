// Text-format parsing of a RunConfig with errors a user can act on: protobuf's first error, rewritten with the
// message and field it was in, the valid names and the expected type, at "<file>:<line>:<column>" (1-based
// characters), and the location of every value the file set. Internal to the config loader.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/io/tokenizer.h>

#include "rl/config/config_loader.h"

namespace grpo::config::internal {

// One error as protobuf's parsers report it.
struct ParseProblem {
  int line;    // 0-based, as protobuf reports
  int column;  // 0-based, tab-expanded, as protobuf reports
  std::string message;
};

class CollectProblems : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column, const std::string& message) override {
    problems_.push_back({line, column, message});
  }
  const std::vector<ParseProblem>& problems() const { return problems_; }

 private:
  std::vector<ParseProblem> problems_;
};

// Converts protobuf's 0-based, tab-expanded positions to "<name>:<line>:<column>", 1-based characters.
class SourceText {
 public:
  SourceText(std::string_view text, std::string name);
  std::string location(int line, int tokenizer_column) const;

 private:
  int character_column(int line, int tokenizer_column) const;

  std::string name_;
  std::vector<std::string_view> lines_;  // views into the constructor's text, which must outlive this object
};

// Parses `text` into `config` and records where each value was written; throws ConfigError with a line per problem.
void parse_text(std::string_view text, const SourceText& source, RunConfig& config, FieldLocations& locations);

}  // namespace grpo::config::internal
