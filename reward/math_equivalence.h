// Equivalence of a gold answer and a predicted one, by parsing both into expression trees (never by eval). Policies:
//  - Numbers compare exactly as rationals when both sides are exact. A decimal written with at least 6 significant
//    digits also matches an exact value that rounds to it (0.333333 = 1/3, as Math-Verify's 6-place rounding).
//  - Anything irrational (roots, pi, e, functions) or with variables compares numerically with a relative tolerance
//    of 1e-6; expressions in variables are sampled at fixed points and need the same variables (x+1 != y+1).
//  - Percent, as in Math-Verify's tests: "28\%" matches 28, 28\% and 0.28; a bare 28 does not match gold 0.28.
//  - "x = 3" matches 3 (the last right-hand side); inequalities in one variable match intervals (x > 3 = (3, oo)).
//  - Tuples are ordered; sets, bare lists and adjacent boxes are order-free; (a, b) also reads as an open interval.
//  - Text answers compare case-insensitively with \text{} and spacing removed.
//  - Bounded: answers over 8 KB, nesting over 100 levels, values over ~2,300 digits and pathological comparisons
//    stop with a reason (cannot compare) instead of consuming time or memory.
#pragma once

#include <string>
#include <string_view>

#include "reward/math_parse.h"

namespace grpo::reward {

struct MathCompareOptions {
  double relative_tolerance = 1e-6;    // for values that are not exact on both sides
  int rounded_decimal_min_digits = 6;  // significant digits a decimal needs to match by rounding
  MathParseLimits parse_limits = {};
};

struct MathVerdict {
  bool equal = false;
  bool reference_ok = true;  // false when the gold answer itself does not parse: the pair cannot be scored
  std::string reason;        // empty when equal; otherwise why not, or why it could not be compared
};

// Never throws except std::bad_alloc.
MathVerdict math_equivalent(std::string_view gold, std::string_view prediction, const MathCompareOptions& options = {});

// Lower-cased, single-spaced text with \text{}-style wrappers, braces, '$' and a final period removed: the form in
// which text answers ("Evelyn", "\text{odd}") compare.
std::string normalize_text_answer(std::string_view text);

}  // namespace grpo::reward
