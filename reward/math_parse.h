// Recursive-descent parser from LaTeX-ish answers to MathExpr trees: numbers, fractions and mixed numbers, roots,
// powers, functions, relations, tuples, sets, intervals, unions, matrices and text. It never evaluates anything.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "reward/math_expr.h"

namespace grpo::reward {

struct MathParseLimits {
  std::size_t max_bytes = 8192;  // longer answers are refused outright; real final answers are far shorter
  int max_depth = 100;           // nesting of groups, fractions, powers and signs
  std::size_t max_nodes = 4096;
};

struct MathParseResult {
  MathExpr expr;
  std::string error;  // non-empty when the text is not a parsable answer: says what and where
  bool ok() const { return error.empty(); }
};

// Linear in the input and bounded by `limits`; never throws except std::bad_alloc.
MathParseResult parse_math(std::string_view text, const MathParseLimits& limits = {});

}  // namespace grpo::reward
