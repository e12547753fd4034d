// Structural and numeric comparison of two parsed answers under the policies stated in math_equivalence.h.
#include "reward/math_equivalence.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "reward/grader.h"
#include "reward/math_evaluate.h"

namespace grpo::reward {
namespace {

constexpr int kMaxComparisonSteps = 20'000;   // element comparisons per pair: bounds set matching on long lists
constexpr std::int32_t kMaxSignChoices = 3;   // at most 3 ± per side, so at most 8 values each
constexpr int kSamplePoints = 6;              // points at which expressions in variables are compared
constexpr double kAbsoluteTolerance = 1e-12;  // for values that should be 0 but carry rounding error (sin(pi))

struct Ref {
  const MathExpr* expr = nullptr;
  std::int32_t index = -1;

  const MathNode& node() const { return expr->at(index); }
  MathNodeKind kind() const { return node().kind; }
  std::size_t size() const { return node().children.size(); }
  Ref child(std::size_t i) const { return {expr, node().children[i]}; }
  std::vector<Ref> children() const {
    std::vector<Ref> refs;
    for (std::size_t i = 0; i < size(); ++i) refs.push_back(child(i));
    return refs;
  }
};

// A scalar to compare: `value`, or `value - minus` for the two sides of an equation.
struct Scalar {
  Ref value;
  std::optional<Ref> minus = std::nullopt;
};

// An interval with its endpoints as subtrees; `variable` is set when it came from an inequality.
struct IntervalView {
  std::optional<Ref> lower = std::nullopt;  // nullopt: -oo
  std::optional<Ref> upper = std::nullopt;  // nullopt: +oo
  bool left_closed = false;
  bool right_closed = false;
  std::string variable = {};
};

bool is_collection(MathNodeKind kind) {
  return kind == MathNodeKind::kTuple || kind == MathNodeKind::kSet || kind == MathNodeKind::kList ||
         kind == MathNodeKind::kInterval || kind == MathNodeKind::kUnion || kind == MathNodeKind::kMatrix;
}

bool is_unordered(MathNodeKind kind) { return kind == MathNodeKind::kSet || kind == MathNodeKind::kList; }

std::string_view kind_name(MathNodeKind kind) {
  switch (kind) {
    case MathNodeKind::kTuple:
      return "tuple";
    case MathNodeKind::kSet:
      return "set";
    case MathNodeKind::kList:
      return "list";
    case MathNodeKind::kInterval:
      return "interval";
    case MathNodeKind::kUnion:
      return "union";
    case MathNodeKind::kMatrix:
      return "matrix";
    case MathNodeKind::kText:
      return "text";
    case MathNodeKind::kRelation:
      return "relation";
    default:
      return "value";
  }
}

bool is_relation(Ref ref) { return ref.kind() == MathNodeKind::kRelation; }
bool is_equation(Ref ref) { return is_relation(ref) && ref.node().text.find_first_not_of('=') == std::string::npos; }
bool is_assignment(Ref ref) { return is_equation(ref) && ref.child(0).kind() == MathNodeKind::kSymbol; }

// x \in S reads as S.
Ref unwrap_membership(Ref ref) { return is_relation(ref) && ref.node().text == "i" ? ref.child(1) : ref; }

std::optional<bool> infinity_sign(Ref ref) {  // true: +oo, false: -oo
  if (ref.kind() == MathNodeKind::kInfinity) return true;
  if (ref.kind() == MathNodeKind::kNegate && ref.child(0).kind() == MathNodeKind::kInfinity) return false;
  return std::nullopt;
}

char reversed_op(char op) {
  switch (op) {
    case '<':
      return '>';
    case '>':
      return '<';
    case 'l':
      return 'g';
    case 'g':
      return 'l';
    default:
      return op;
  }
}

// A decimal literal written by hand (possibly negated), which may be a rounded value.
const MathNode* decimal_literal(Ref ref) {
  if (ref.kind() == MathNodeKind::kNegate) ref = ref.child(0);
  return ref.kind() == MathNodeKind::kNumber && ref.node().is_decimal ? &ref.node() : nullptr;
}

int significant_digits(const MathNode& number) {
  const std::size_t first = number.digits.find_first_not_of('0');
  return first == std::string::npos ? 0 : static_cast<int>(number.digits.size() - first);
}

std::string excerpt(std::string text) { return text.size() <= 40 ? text : text.substr(0, 37) + "..."; }

}  // namespace

std::string normalize_text_answer(std::string_view text) {
  static constexpr auto kWrappers = std::to_array<std::string_view>(
      {"\\textbf", "\\textit", "\\textrm", "\\text", "\\mathrm", "\\mathbf", "\\mbox", "\\operatorname", "\\boxed"});
  std::string cleaned;
  for (std::size_t i = 0; i < text.size();) {
    bool wrapper = false;
    for (const std::string_view name : kWrappers) {
      if (text.substr(i).starts_with(name) && (i + name.size() >= text.size() || text[i + name.size()] == '{')) {
        i += name.size();
        wrapper = true;
        break;
      }
    }
    if (wrapper) continue;
    const char c = text[i++];
    if (c == '{' || c == '}' || c == '$') continue;
    if (c == '~' || is_ascii_space(c)) {
      if (!cleaned.empty() && cleaned.back() != ' ') cleaned += ' ';
      continue;
    }
    if (c == '\\' && i < text.size() && (text[i] == ' ' || text[i] == ',' || text[i] == ';' || text[i] == '!')) {
      ++i;
      if (!cleaned.empty() && cleaned.back() != ' ') cleaned += ' ';
      continue;
    }
    cleaned += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  std::string_view trimmed = trim_ascii_space(cleaned);
  while (!trimmed.empty() && trimmed.back() == '.') trimmed = trim_ascii_space(trimmed.substr(0, trimmed.size() - 1));
  return std::string(trimmed);
}

namespace {

// A word answer ("Evelyn", "odd", "no solution"): letters and spaces only, with a word of two letters or more that
// is not math ("pi", "sin", "and"). Such answers compare as text; "(A)" or "x" parse as math.
bool is_word_answer(std::string_view normalized) {
  static constexpr auto kMathWords = std::to_array<std::string_view>(
      {"pi", "infty", "inf", "infinity", "sin", "cos", "tan", "ln", "log", "exp", "sqrt", "and", "or", "e"});
  bool has_word = false;
  std::size_t i = 0;
  while (i < normalized.size()) {
    const char c = normalized[i];
    const bool letter = (c >= 'a' && c <= 'z');
    if (!letter && c != ' ' && c != '-' && c != '\'') return false;
    if (!letter) {
      ++i;
      continue;
    }
    const std::size_t begin = i;
    while (i < normalized.size() && normalized[i] >= 'a' && normalized[i] <= 'z') ++i;
    const std::string_view word = normalized.substr(begin, i - begin);
    bool math_word = false;
    for (const std::string_view entry : kMathWords) math_word = math_word || entry == word;
    has_word = has_word || (word.size() >= 2 && !math_word);
  }
  return has_word;
}

// "\text{(A)}" -> "(A)": a whole answer inside one text wrapper is the wrapped answer.
std::string_view unwrap_text_wrapper(std::string_view text) {
  static constexpr auto kWrappers =
      std::to_array<std::string_view>({"\\text{", "\\textbf{", "\\mathrm{", "\\mbox{", "\\textrm{"});
  for (;;) {
    text = trim_ascii_space(text);
    bool unwrapped = false;
    for (const std::string_view wrapper : kWrappers) {
      if (!text.starts_with(wrapper) || !text.ends_with('}')) continue;
      int depth = 0;
      std::size_t close = std::string_view::npos;
      for (std::size_t i = wrapper.size() - 1; i < text.size() && close == std::string_view::npos; ++i) {
        if (text[i] == '\\')
          ++i;
        else if (text[i] == '{')
          ++depth;
        else if (text[i] == '}' && --depth == 0)
          close = i;
      }
      if (close != text.size() - 1) continue;
      text = text.substr(wrapper.size(), text.size() - wrapper.size() - 1);
      unwrapped = true;
      break;
    }
    if (!unwrapped) return text;
  }
}

class Comparer {
 public:
  explicit Comparer(const MathCompareOptions& options) : options_(options) {}

  bool equal(Ref a, Ref b);
  const std::string& reason() const { return cannot_compare_.empty() ? reason_ : cannot_compare_; }

 private:
  const MathCompareOptions& options_;
  MathEvalContext context_;
  int steps_left_ = kMaxComparisonSteps;
  std::string reason_;          // the last mismatch seen
  std::string cannot_compare_;  // set when a limit stopped the comparison

  bool mismatch(std::string why) {
    reason_ = std::move(why);
    return false;
  }
  bool cannot_compare(std::string why) {
    if (cannot_compare_.empty()) cannot_compare_ = fmt::format("cannot compare: {}", why);
    return false;
  }

  bool equal_percent(Ref a, Ref b);
  bool equal_relations(Ref a, Ref b);
  bool equal_collections(Ref a, Ref b);
  bool equal_ordered(const std::vector<Ref>& a, const std::vector<Ref>& b);
  bool equal_unordered(const std::vector<Ref>& a, const std::vector<Ref>& b);
  bool equal_intervals(const IntervalView& a, const IntervalView& b);
  std::optional<IntervalView> as_interval(Ref ref);
  bool equal_scalars(const Scalar& a, const Scalar& b);
  bool equal_list_to_plus_minus(Ref list, Ref value, bool list_is_gold);
  bool equal_scalars_once(const Scalar& a, std::uint32_t mask_a, const Scalar& b, std::uint32_t mask_b);
  std::optional<Rational> exact(const Scalar& s, std::uint32_t mask);
  double numeric(const Scalar& s, std::uint32_t mask);
  bool rounds_to(const Scalar& decimal, const Rational& decimal_value, const Rational& exact_value);
  bool close(double a, double b, const Scalar& sa, const Scalar& sb);  // a: reference side, b: answer side
};

bool Comparer::equal(Ref a, Ref b) {
  if (--steps_left_ < 0) return cannot_compare(fmt::format("more than {} comparison steps", kMaxComparisonSteps));
  a = unwrap_membership(a);
  b = unwrap_membership(b);
  // "x = 3" against 3: the prediction's last right-hand side; gold "x = 3" against a bare 3 likewise.
  if (is_equation(b) && !is_relation(a))
    b = b.child(b.size() - 1);
  else if (is_assignment(a) && !is_relation(b))
    a = a.child(a.size() - 1);
  if (is_relation(a) || is_relation(b)) return equal_relations(a, b);
  if (a.kind() == MathNodeKind::kPercent || b.kind() == MathNodeKind::kPercent) return equal_percent(a, b);
  if (is_collection(a.kind()) || is_collection(b.kind())) return equal_collections(a, b);
  if (a.kind() == MathNodeKind::kText || b.kind() == MathNodeKind::kText) {
    if (a.kind() != b.kind())
      return mismatch(fmt::format("a {} against a {}", kind_name(a.kind()), kind_name(b.kind())));
    return normalize_text_answer(a.node().text) == normalize_text_answer(b.node().text) ||
           mismatch(fmt::format("text '{}' != '{}'", excerpt(a.node().text), excerpt(b.node().text)));
  }
  return equal_scalars({a}, {b});
}

// X% stands for both X and X/100, on either side (Math-Verify's tests: gold 28% accepts 28 and 0.28).
bool Comparer::equal_percent(Ref a, Ref b) {
  auto readings = [](Ref ref) {
    return ref.kind() == MathNodeKind::kPercent ? std::vector<Ref>{ref.child(0), ref} : std::vector<Ref>{ref};
  };
  for (const Ref x : readings(a)) {
    for (const Ref y : readings(b)) {
      const bool as_value = x.kind() == MathNodeKind::kPercent || y.kind() == MathNodeKind::kPercent;
      if (as_value ? equal_scalars({x}, {y}) : equal(x, y)) return true;
    }
  }
  return false;
}

bool Comparer::equal_relations(Ref a, Ref b) {
  const std::optional<IntervalView> interval_a = as_interval(a);
  const std::optional<IntervalView> interval_b = as_interval(b);
  if (interval_a && interval_b && (is_relation(a) || is_relation(b))) return equal_intervals(*interval_a, *interval_b);
  if (!is_relation(a) || !is_relation(b)) {
    return mismatch(fmt::format("a {} against a {}", kind_name(a.kind()), kind_name(b.kind())));
  }
  const std::string& ops_a = a.node().text;
  const std::string& ops_b = b.node().text;
  if (ops_a.size() == ops_b.size()) {
    if (ops_a == ops_b && equal_ordered(a.children(), b.children())) return true;
    std::string reversed(ops_b.rbegin(), ops_b.rend());
    for (char& op : reversed) op = reversed_op(op);
    std::vector<Ref> operands_b = b.children();
    std::reverse(operands_b.begin(), operands_b.end());
    if (ops_a == reversed && equal_ordered(a.children(), operands_b)) return true;
  }
  // One equation against another: the same up to moving terms across (y = 2x + 1 against y - 2x = 1).
  if (ops_a == "=" && ops_b == "=") {
    const Scalar difference_a{a.child(0), a.child(1)};
    if (equal_scalars(difference_a, {b.child(0), b.child(1)}) ||
        equal_scalars(difference_a, {b.child(1), b.child(0)})) {
      return true;
    }
  }
  return mismatch("the relations differ");
}

// Intervals from interval nodes, open 2-tuples and inequalities in one variable with constant bounds.
std::optional<IntervalView> Comparer::as_interval(Ref ref) {
  auto bound = [](Ref end, bool lower) -> std::optional<Ref> {
    const std::optional<bool> infinity = infinity_sign(end);
    return infinity && *infinity != lower ? std::nullopt : std::optional<Ref>(end);
  };
  if (ref.kind() == MathNodeKind::kInterval || (ref.kind() == MathNodeKind::kTuple && ref.size() == 2)) {
    return IntervalView{.lower = bound(ref.child(0), true),
                        .upper = bound(ref.child(1), false),
                        .left_closed = ref.node().left_closed,
                        .right_closed = ref.node().right_closed};
  }
  if (!is_relation(ref) || ref.size() > 3) return std::nullopt;
  const std::string& ops = ref.node().text;
  const bool all_less = ops.find_first_not_of("<l") == std::string::npos;
  const bool all_greater = ops.find_first_not_of(">g") == std::string::npos;
  if (!all_less && !all_greater) return std::nullopt;
  std::vector<Ref> operands = ref.children();
  std::string relation = ops;
  if (all_greater) {  // a > x > b reads as b < x < a
    std::reverse(operands.begin(), operands.end());
    std::reverse(relation.begin(), relation.end());
  }
  auto constant = [](Ref operand) { return free_variables(*operand.expr, operand.index).empty(); };
  auto symbol = [](Ref operand) { return operand.kind() == MathNodeKind::kSymbol; };
  std::size_t variable = 1;
  if (operands.size() == 2 && symbol(operands[0]) && constant(operands[1])) {
    variable = 0;
  } else if (!symbol(operands[1]) || !constant(operands[0]) || (operands.size() == 3 && !constant(operands[2]))) {
    return std::nullopt;
  }
  IntervalView view{.variable = operands[variable].node().text};
  if (variable > 0) {
    view.lower = bound(operands[variable - 1], true);
    view.left_closed = relation[variable - 1] == 'l' || relation[variable - 1] == 'g';
  }
  if (variable + 1 < operands.size()) {
    view.upper = bound(operands[variable + 1], false);
    view.right_closed = relation[variable] == 'l' || relation[variable] == 'g';
  }
  return view;
}

bool Comparer::equal_intervals(const IntervalView& a, const IntervalView& b) {
  if (!a.variable.empty() && !b.variable.empty() && a.variable != b.variable) {
    return mismatch(fmt::format("inequalities in {} and {}", a.variable, b.variable));
  }
  if (a.lower.has_value() != b.lower.has_value() || a.upper.has_value() != b.upper.has_value()) {
    return mismatch("the intervals differ in which ends are infinite");
  }
  // Closedness at an infinite end carries no meaning.
  if ((a.lower && a.left_closed != b.left_closed) || (a.upper && a.right_closed != b.right_closed)) {
    return mismatch("the intervals differ in which ends are closed");
  }
  return (!a.lower || equal(*a.lower, *b.lower)) && (!a.upper || equal(*a.upper, *b.upper));
}

bool Comparer::equal_ordered(const std::vector<Ref>& a, const std::vector<Ref>& b) {
  if (a.size() != b.size()) return mismatch(fmt::format("{} elements against {}", a.size(), b.size()));
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!equal(a[i], b[i])) return false;
  }
  return true;
}

bool Comparer::equal_unordered(const std::vector<Ref>& a, const std::vector<Ref>& b) {
  if (a.size() != b.size()) return mismatch(fmt::format("{} elements against {}", a.size(), b.size()));
  std::vector<bool> used(b.size(), false);
  for (const Ref element : a) {
    bool matched = false;
    for (std::size_t j = 0; j < b.size() && !matched; ++j) {
      if (!used[j] && equal(element, b[j])) used[j] = matched = true;
    }
    if (!matched) return mismatch(fmt::format("nothing matches {}", excerpt(to_string(*element.expr, element.index))));
  }
  return true;
}

bool Comparer::equal_collections(Ref a, Ref b) {
  const MathNodeKind ka = a.kind();
  const MathNodeKind kb = b.kind();
  if (is_unordered(ka) && !is_collection(kb) && contains_kind(*b.expr, b.index, MathNodeKind::kPlusMinus)) {
    return equal_list_to_plus_minus(a, b, /*list_is_gold=*/true);
  }
  if (is_unordered(kb) && !is_collection(ka) && contains_kind(*a.expr, a.index, MathNodeKind::kPlusMinus)) {
    return equal_list_to_plus_minus(b, a, /*list_is_gold=*/false);
  }
  if (is_unordered(ka) && !is_collection(kb))
    return a.size() == 1 ? equal(a.child(0), b) : mismatch("a list against a value");
  if (is_unordered(kb) && !is_collection(ka))
    return b.size() == 1 ? equal(a, b.child(0)) : mismatch("a value against a list");
  if (is_unordered(ka) && is_unordered(kb)) return equal_unordered(a.children(), b.children());
  const bool tuple_like_a = ka == MathNodeKind::kTuple || ka == MathNodeKind::kList;
  const bool tuple_like_b = kb == MathNodeKind::kTuple || kb == MathNodeKind::kList;
  if ((ka == MathNodeKind::kTuple && tuple_like_b) || (kb == MathNodeKind::kTuple && tuple_like_a)) {
    return equal_ordered(a.children(), b.children());
  }
  if (ka == MathNodeKind::kInterval || kb == MathNodeKind::kInterval) {
    const std::optional<IntervalView> interval_a = as_interval(a);
    const std::optional<IntervalView> interval_b = as_interval(b);
    if (interval_a && interval_b) return equal_intervals(*interval_a, *interval_b);
  }
  if ((ka == MathNodeKind::kUnion && (kb == MathNodeKind::kUnion || kb == MathNodeKind::kList)) ||
      (kb == MathNodeKind::kUnion && ka == MathNodeKind::kList)) {
    return equal_unordered(a.children(), b.children());
  }
  if (ka == MathNodeKind::kMatrix && kb == MathNodeKind::kMatrix) {
    if (a.node().rows != b.node().rows || a.node().cols != b.node().cols) return mismatch("matrix shapes differ");
    return equal_ordered(a.children(), b.children());
  }
  // A row or column vector against a tuple of the same length.
  const bool vector_a = ka == MathNodeKind::kMatrix && (a.node().rows == 1 || a.node().cols == 1);
  const bool vector_b = kb == MathNodeKind::kMatrix && (b.node().rows == 1 || b.node().cols == 1);
  if ((vector_a && tuple_like_b) || (vector_b && tuple_like_a)) return equal_ordered(a.children(), b.children());
  return mismatch(fmt::format("a {} against a {}", kind_name(ka), kind_name(kb)));
}

// "\frac{-1 \pm \sqrt{5}}{2}" against the list of its two values: the same set of values either way round.
bool Comparer::equal_list_to_plus_minus(Ref list, Ref value, bool list_is_gold) {
  const std::int32_t choices = value.expr->plus_minus_count;
  if (choices > kMaxSignChoices) return cannot_compare(fmt::format("more than {} plus-minus signs", kMaxSignChoices));
  const std::uint32_t masks = 1u << choices;
  auto same = [&](Ref element, std::uint32_t mask) {
    return list_is_gold ? equal_scalars_once({element}, 0, {value}, mask)
                        : equal_scalars_once({value}, mask, {element}, 0);
  };
  for (const Ref element : list.children()) {
    bool found = false;
    for (std::uint32_t mask = 0; mask < masks && !found; ++mask) found = same(element, mask);
    if (!found) return false;
  }
  for (std::uint32_t mask = 0; mask < masks; ++mask) {
    bool found = false;
    for (std::size_t i = 0; i < list.size() && !found; ++i) found = same(list.child(i), mask);
    if (!found) return false;
  }
  return true;
}

std::optional<Rational> Comparer::exact(const Scalar& s, std::uint32_t mask) {
  context_.sign_mask = mask;
  std::optional<Rational> value = evaluate_exact(*s.value.expr, s.value.index, context_);
  if (!value || !s.minus) return value;
  const std::optional<Rational> minus = evaluate_exact(*s.minus->expr, s.minus->index, context_);
  return minus ? subtract(*value, *minus, context_.budget) : std::nullopt;
}

double Comparer::numeric(const Scalar& s, std::uint32_t mask) {
  context_.sign_mask = mask;
  const double value = evaluate_numeric(*s.value.expr, s.value.index, context_);
  return s.minus ? value - evaluate_numeric(*s.minus->expr, s.minus->index, context_) : value;
}

// A decimal of enough significant digits matches an exact value within half a unit of its last place.
bool Comparer::rounds_to(const Scalar& decimal, const Rational& decimal_value, const Rational& exact_value) {
  if (decimal.minus) return false;
  const MathNode* literal = decimal_literal(decimal.value);
  if (literal == nullptr || significant_digits(*literal) < options_.rounded_decimal_min_digits) return false;
  const std::int64_t places = static_cast<std::int64_t>(literal->frac_digits) - literal->exponent10;
  if (places > 1000 || places < -1000) return false;
  const std::optional<Rational> difference = subtract(decimal_value, exact_value, context_.budget);
  if (!difference) return false;
  // |num/den| <= 10^-places / 2  <=>  2 |num| 10^places <= den
  BigInt left = difference->num().abs() * BigInt(2);
  BigInt right = difference->den();
  if (places >= 0)
    left = left * BigInt::pow10(static_cast<std::size_t>(places));
  else
    right = right * BigInt::pow10(static_cast<std::size_t>(-places));
  return left <= right;
}

bool Comparer::close(double a, double b, const Scalar& sa, const Scalar& sb) {
  auto overflowed = [](double value, const Scalar& s) {
    return std::isinf(value) && !contains_kind(*s.value.expr, s.value.index, MathNodeKind::kInfinity);
  };
  if (overflowed(a, sa) || overflowed(b, sb)) return cannot_compare("a value is infinite or too large to evaluate");
  if (std::isnan(a) || std::isnan(b)) return mismatch("a value is undefined or not a number");
  if (std::isinf(a) || std::isinf(b)) return a == b || mismatch("infinities differ");
  const double difference = std::fabs(a - b);
  if (difference <= options_.relative_tolerance * std::max(std::fabs(a), std::fabs(b)) ||
      difference <= kAbsoluteTolerance) {
    return true;
  }
  return mismatch(fmt::format("answer {:.10g} != reference {:.10g}", b, a));
}

bool Comparer::equal_scalars(const Scalar& a, const Scalar& b) {
  auto sign_choices = [](const Scalar& s) -> std::int32_t {
    const bool has = contains_kind(*s.value.expr, s.value.index, MathNodeKind::kPlusMinus) ||
                     (s.minus && contains_kind(*s.minus->expr, s.minus->index, MathNodeKind::kPlusMinus));
    return has ? s.value.expr->plus_minus_count : 0;
  };
  const std::int32_t choices_a = sign_choices(a);
  const std::int32_t choices_b = sign_choices(b);
  if (choices_a == 0 && choices_b == 0) return equal_scalars_once(a, 0, b, 0);
  if (choices_a > kMaxSignChoices || choices_b > kMaxSignChoices) {
    return cannot_compare(fmt::format("more than {} plus-minus signs", kMaxSignChoices));
  }
  // a ± b stands for the set of its values: every value on one side must appear on the other.
  const std::uint32_t masks_a = 1u << choices_a;
  const std::uint32_t masks_b = 1u << choices_b;
  for (std::uint32_t i = 0; i < masks_a; ++i) {
    bool found = false;
    for (std::uint32_t j = 0; j < masks_b && !found; ++j) found = equal_scalars_once(a, i, b, j);
    if (!found) return false;
  }
  for (std::uint32_t j = 0; j < masks_b; ++j) {
    bool found = false;
    for (std::uint32_t i = 0; i < masks_a && !found; ++i) found = equal_scalars_once(a, i, b, j);
    if (!found) return false;
  }
  return true;
}

bool Comparer::equal_scalars_once(const Scalar& a, std::uint32_t mask_a, const Scalar& b, std::uint32_t mask_b) {
  if (--steps_left_ < 0) return cannot_compare(fmt::format("more than {} comparison steps", kMaxComparisonSteps));
  context_.budget.exceeded = false;
  const std::optional<Rational> exact_a = exact(a, mask_a);
  const bool huge_a = std::exchange(context_.budget.exceeded, false);
  const std::optional<Rational> exact_b = exact(b, mask_b);
  const bool huge_b = std::exchange(context_.budget.exceeded, false);
  if (exact_a && exact_b) {
    if (*exact_a == *exact_b || rounds_to(a, *exact_a, *exact_b) || rounds_to(b, *exact_b, *exact_a)) return true;
    return mismatch(
        fmt::format("answer {} != reference {}", excerpt(exact_b->to_string()), excerpt(exact_a->to_string())));
  }
  std::vector<std::string> variables = free_variables(*a.value.expr, a.value.index);
  if (a.minus) {
    for (std::string& name : free_variables(*a.minus->expr, a.minus->index)) variables.push_back(std::move(name));
  }
  std::vector<std::string> variables_b = free_variables(*b.value.expr, b.value.index);
  if (b.minus) {
    for (std::string& name : free_variables(*b.minus->expr, b.minus->index)) variables_b.push_back(std::move(name));
  }
  for (std::vector<std::string>* names : {&variables, &variables_b}) {
    std::sort(names->begin(), names->end());
    names->erase(std::unique(names->begin(), names->end()), names->end());
  }
  if (variables != variables_b) return mismatch("the answers use different variables");
  if (variables.empty()) {
    const double value_a = numeric(a, mask_a);
    const double value_b = numeric(b, mask_b);
    // Past the exact limits a double that came out 0 or infinite has lost the value (10^{-10^{10}} is not 0).
    if ((huge_a && (value_a == 0.0 || !std::isfinite(value_a))) ||
        (huge_b && (value_b == 0.0 || !std::isfinite(value_b)))) {
      return cannot_compare("a value is too large (or too small) to evaluate, exactly or as a double");
    }
    return close(value_a, value_b, a, b);
  }
  // Polynomial-identity style check: equal expressions agree at every sample point; points where either side is
  // undefined (a pole, a negative square root) are skipped.
  int agreeing = 0;
  for (int point = 0; point < kSamplePoints; ++point) {
    context_.variables.clear();
    for (std::size_t v = 0; v < variables.size(); ++v) {
      const double phase = 0.6180339887 * (point + 1) + 0.4142135623 * static_cast<double>(v + 1);
      context_.variables.emplace_back(variables[v], 0.5 + 1.5 * (phase - std::floor(phase)));
    }
    const double value_a = numeric(a, mask_a);
    const double value_b = numeric(b, mask_b);
    if (!std::isfinite(value_a) || !std::isfinite(value_b)) continue;
    if (!close(value_a, value_b, a, b)) return false;
    ++agreeing;
  }
  context_.variables.clear();
  return agreeing >= 2 || mismatch("the expressions could not be evaluated at enough points");
}

}  // namespace

MathVerdict math_equivalent(std::string_view gold, std::string_view prediction, const MathCompareOptions& options) {
  MathVerdict verdict;
  const std::size_t limit = options.parse_limits.max_bytes;
  if (gold.size() > limit) {
    verdict.reference_ok = false;
    verdict.reason = fmt::format("reference of {} bytes is longer than the {}-byte limit", gold.size(), limit);
    return verdict;
  }
  gold = unwrap_text_wrapper(gold);
  const std::string gold_text = normalize_text_answer(gold);
  const bool gold_is_words = is_word_answer(gold_text);
  MathParseResult parsed_gold;
  if (!gold_is_words) {
    parsed_gold = parse_math(gold, options.parse_limits);
    if (!parsed_gold.ok()) {
      verdict.reference_ok = false;
      verdict.reason = fmt::format("reference does not parse: {}", parsed_gold.error);
      return verdict;
    }
  }
  if (prediction.size() > limit) {
    verdict.reason =
        fmt::format("cannot compare: answer of {} bytes is longer than the {}-byte limit", prediction.size(), limit);
    return verdict;
  }
  prediction = unwrap_text_wrapper(prediction);
  const std::string prediction_text = normalize_text_answer(prediction);
  if (prediction_text.empty()) {
    verdict.reason = "empty answer";
    return verdict;
  }
  if (gold_text == prediction_text) {
    verdict.equal = true;
    return verdict;
  }
  if (gold_is_words || is_word_answer(prediction_text)) {
    verdict.reason = fmt::format("text answer '{}' != '{}'", excerpt(prediction_text), excerpt(gold_text));
    return verdict;
  }
  const MathParseResult parsed_prediction = parse_math(prediction, options.parse_limits);
  if (!parsed_prediction.ok()) {
    verdict.reason = fmt::format("answer does not parse: {}", parsed_prediction.error);
    return verdict;
  }
  Comparer comparer(options);
  verdict.equal = comparer.equal({&parsed_gold.expr, parsed_gold.expr.root},
                                 {&parsed_prediction.expr, parsed_prediction.expr.root});
  if (!verdict.equal) verdict.reason = comparer.reason().empty() ? "not equivalent" : comparer.reason();
  return verdict;
}

}  // namespace grpo::reward
