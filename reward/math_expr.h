// The expression tree that math answers parse into: a flat arena of nodes addressed by index, so that no tree is
// ever freed recursively and its size is bounded by one counter.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace grpo::reward {

enum class MathNodeKind {
  kNumber,  // literal: `digits` (no point, no separators), `frac_digits` after the point, `exponent10`
  kSymbol,  // a variable: `text` is its name ("x", "x_1", "alpha")
  kPi,
  kEuler,  // e
  kInfinity,
  kText,        // a text answer, `text` normalised (lower case, single spaces)
  kAdd,         // n-ary sum (a - b is a + (-b)), flat so that long chains never make the tree deep
  kMultiply,    // n-ary product (a / b is a * (1/b))
  kDivide,      // a, b: a fraction
  kReciprocal,  // a: 1/a, a factor of a product written with '/'
  kNegate,      // a
  kPlusMinus,   // a, b: a ± b (both signs are answers)
  kPower,       // base, exponent
  kRoot,        // radicand, index (index is a kNumber 2 for \sqrt without [n])
  kPercent,     // a% (the value a/100; see math_equivalence.h for the policy)
  kFactorial,   // a!
  kFunction,    // `text` is the name (sin, ln, log, ...); children: argument [, log base]
  kAbs,         // |a|
  kRelation,    // children: operands; `text` holds one op per gap: = < > l(<=) g(>=) n(!=)
  kTuple,       // (a, b, ...) ordered; a 2-tuple may also be an open interval
  kSet,         // \{a, b\}: order-free
  kList,        // a, b written bare (or adjacent boxes): order-free, comparable to a tuple in order
  kInterval,    // children: lower, upper; `left_closed`, `right_closed`
  kUnion,       // children: the pieces (intervals or sets)
  kMatrix,      // children row-major; `rows`, `cols`
};

struct MathNode {
  MathNodeKind kind = MathNodeKind::kNumber;
  std::string text = {};
  std::vector<std::int32_t> children = {};
  // kNumber
  std::string digits = {};
  std::int32_t frac_digits = 0;
  std::int32_t exponent10 = 0;
  bool is_decimal = false;  // written with a decimal point or an exponent: a possibly rounded value
  // kInterval
  bool left_closed = false;
  bool right_closed = false;
  // kMatrix
  std::int32_t rows = 0;
  std::int32_t cols = 0;
  // kPlusMinus: which bit of an evaluation's sign mask chooses this node's sign
  std::int32_t ordinal = 0;
};

struct MathExpr {
  std::vector<MathNode> nodes;
  std::int32_t root = -1;
  std::int32_t plus_minus_count = 0;

  const MathNode& at(std::int32_t index) const { return nodes[static_cast<std::size_t>(index)]; }
  MathNode& at(std::int32_t index) { return nodes[static_cast<std::size_t>(index)]; }
};

// A compact, unambiguous rendering for reasons and tests, e.g. "(1 + (2 / 3))", "{1, 2}", "[1, oo)".
std::string to_string(const MathExpr& expr, std::int32_t node);
inline std::string to_string(const MathExpr& expr) { return expr.root < 0 ? "" : to_string(expr, expr.root); }

}  // namespace grpo::reward
