// Values of parsed answers: exact rationals where every step is exact, doubles otherwise (roots, pi, e, functions,
// variables at sample points). Evaluation is linear in the tree and bounded by an ExactBudget; it never throws.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "reward/math_expr.h"
#include "reward/math_rational.h"

namespace grpo::reward {

struct MathEvalContext {
  ExactBudget budget = {};
  std::uint32_t sign_mask = 0;  // bit k set: the kPlusMinus node of ordinal k subtracts
  // Values of free variables for numeric evaluation; a variable not listed evaluates to NaN.
  std::vector<std::pair<std::string, double>> variables = {};
};

// The exact value, or nullopt when some step is not exact (a variable, pi, an irrational root, a function), is
// undefined (division by zero), or exceeds the budget (then context.budget.exceeded is set).
std::optional<Rational> evaluate_exact(const MathExpr& expr, std::int32_t node, MathEvalContext& context);

// The value as a double: NaN where undefined or not a number (text, tuples), +-infinity for \infty or overflow.
double evaluate_numeric(const MathExpr& expr, std::int32_t node, const MathEvalContext& context);

// Sorted, distinct names of the variables in the subtree.
std::vector<std::string> free_variables(const MathExpr& expr, std::int32_t node);

// True when the subtree contains a node of this kind.
bool contains_kind(const MathExpr& expr, std::int32_t node, MathNodeKind kind);

}  // namespace grpo::reward
