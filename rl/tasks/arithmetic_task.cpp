// Arithmetic problem generation by bounded rejection sampling, an independent precedence evaluator, worked
// solutions and deliberate format defects for warm-up data, and the held-out train/eval split.
#include "rl/tasks/arithmetic_task.h"

#include <sstream>

#include <algorithm>
#include <iterator>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#include "reward/grader.h"
#include "reward/r1_format.h"

namespace grpo::rl {
namespace {

// Full restarts of the generator before it gives up, and retries of one term before a restart. With the default
// settings almost every attempt succeeds; the limits only turn impossible-in-practice settings into an error.
constexpr int kMaxAttempts = 10000;
constexpr int kTermRetries = 16;
// Draws allowed per requested distinct problem before the space counts as exhausted.
constexpr int kDrawsPerDistinctProblem = 100;
constexpr int kMinDistinctDraws = 1000;

// std::uniform_int_distribution's algorithm is unspecified, so the same seed would give different problems under
// libstdc++ and libc++; this rejection sampler is fixed. Inclusive bounds, lo <= hi.
long long uniform_int(std::mt19937_64& rng, long long lo, long long hi) {
  const auto span = static_cast<std::uint64_t>(hi - lo) + 1;
  const std::uint64_t threshold = (0 - span) % span;  // 2^64 mod span: draws below it would bias small values
  std::uint64_t draw = rng();
  while (draw < threshold) draw = rng();
  return lo + static_cast<long long>(draw % span);
}

struct Term {
  char sign = '+';                // how the term joins the running sum ('+' for the first term)
  std::vector<long long> lo, hi;  // allowed range of each literal before the running bounds apply
  std::vector<long long> literals;
  long long value = 0;
};

// The term structure for an operator sequence, with each '*' giving one of its neighbours the factor range.
std::vector<Term> term_skeleton(const ArithmeticSettings& settings, const std::vector<char>& ops,
                                std::mt19937_64& rng) {
  std::vector<Term> terms(1);
  terms.back().lo.push_back(1);
  terms.back().hi.push_back(settings.max_operand);
  for (const char op : ops) {
    if (op != '*') {
      terms.emplace_back();
      terms.back().sign = op;
    }
    Term& term = terms.back();
    term.lo.push_back(1);
    term.hi.push_back(settings.max_operand);
    if (op == '*') {
      const std::size_t factor = term.lo.size() - 1 - static_cast<std::size_t>(uniform_int(rng, 0, 1));
      term.lo[factor] = 2;
      term.hi[factor] = settings.max_factor;
    }
  }
  return terms;
}

// Smallest value a term can take, saturated above max_value.
long long min_term_value(const Term& term, long long max_value) {
  long long product = 1;
  for (const long long lo : term.lo) product = std::min(product * lo, max_value + 1);
  return product;
}

// Draws the term's literals so that its value (and every partial product) is at most `cap`. False on a dead end.
bool sample_term(Term& term, long long cap, std::mt19937_64& rng) {
  const std::size_t n = term.lo.size();
  std::vector<long long> rest_min(n + 1, 1);  // product of the lower bounds of literals after each position
  for (std::size_t k = n; k-- > 0;) rest_min[k] = std::min(rest_min[k + 1] * term.lo[k], cap + 1);
  term.literals.clear();
  long long product = 1;
  for (std::size_t k = 0; k < n; ++k) {
    const long long hi = std::min(term.hi[k], cap / (product * rest_min[k + 1]));
    if (hi < term.lo[k]) return false;
    const long long literal = uniform_int(rng, term.lo[k], hi);
    term.literals.push_back(literal);
    product *= literal;
  }
  term.value = product;
  return true;
}

// Literals for every term with all step results in [0, max_value]. Each term also leaves the running sum where
// the next term can still be added or subtracted, which removes most dead ends; the rest restart.
bool sample_terms(std::vector<Term>& terms, long long max_value, std::mt19937_64& rng) {
  long long sum = 0;
  for (std::size_t j = 0; j < terms.size(); ++j) {
    const long long cap = j == 0 ? max_value : (terms[j].sign == '+' ? max_value - sum : sum);
    long long next_lo = 0;
    long long next_hi = max_value;
    if (j + 1 < terms.size()) {
      const long long next_min = min_term_value(terms[j + 1], max_value);
      if (terms[j + 1].sign == '-') {
        next_lo = next_min;
      } else {
        next_hi = max_value - next_min;
      }
    }
    bool placed = false;
    for (int retry = 0; retry < kTermRetries && !placed; ++retry) {
      if (!sample_term(terms[j], cap, rng)) return false;
      const long long next_sum = j == 0 ? terms[j].value : sum + (terms[j].sign == '+' ? 1 : -1) * terms[j].value;
      if (next_sum >= next_lo && next_sum <= next_hi) {
        sum = next_sum;
        placed = true;
      }
    }
    if (!placed) return false;
  }
  return true;
}

ArithmeticProblem write_problem(const std::vector<Term>& terms) {
  ArithmeticProblem problem;
  for (const Term& term : terms) {
    if (&term != &terms.front()) problem.expression += term.sign;
    long long product = term.literals.front();
    problem.expression += std::to_string(product);
    for (std::size_t k = 1; k < term.literals.size(); ++k) {
      problem.expression += fmt::format("*{}", term.literals[k]);
      problem.steps.push_back(fmt::format("{}*{}={}", product, term.literals[k], product * term.literals[k]));
      product *= term.literals[k];
    }
  }
  long long sum = terms.front().value;
  for (std::size_t j = 1; j < terms.size(); ++j) {
    const long long next = terms[j].sign == '+' ? sum + terms[j].value : sum - terms[j].value;
    problem.steps.push_back(fmt::format("{}{}{}={}", sum, terms[j].sign, terms[j].value, next));
    sum = next;
  }
  problem.answer = std::to_string(sum);
  return problem;
}

// Recursive-descent evaluation over `text` from `pos`; each returns nullopt on malformed input or overflow.
std::optional<long long> parse_number(std::string_view text, std::size_t& pos) {
  if (pos >= text.size() || text[pos] < '0' || text[pos] > '9') return std::nullopt;
  long long value = 0;
  for (; pos < text.size() && text[pos] >= '0' && text[pos] <= '9'; ++pos) {
    if (__builtin_mul_overflow(value, 10LL, &value) || __builtin_add_overflow(value, text[pos] - '0', &value)) {
      return std::nullopt;
    }
  }
  return value;
}

std::optional<long long> parse_product(std::string_view text, std::size_t& pos) {
  std::optional<long long> value = parse_number(text, pos);
  while (value && pos < text.size() && text[pos] == '*') {
    ++pos;
    const std::optional<long long> factor = parse_number(text, pos);
    if (!factor || __builtin_mul_overflow(*value, *factor, &*value)) return std::nullopt;
  }
  return value;
}

std::optional<long long> parse_sum(std::string_view text, std::size_t& pos) {
  std::optional<long long> value = parse_product(text, pos);
  while (value && pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    const char op = text[pos++];
    const std::optional<long long> term = parse_product(text, pos);
    if (!term) return std::nullopt;
    const bool overflow =
        op == '+' ? __builtin_add_overflow(*value, *term, &*value) : __builtin_sub_overflow(*value, *term, &*value);
    if (overflow) return std::nullopt;
  }
  return value;
}

}  // namespace

void validate_arithmetic_settings(const ArithmeticSettings& s) {
  const auto fail = [&](std::string_view what) {
    throw std::invalid_argument(fmt::format(
        "invalid arithmetic settings: {} (min_ops={}, max_ops={}, max_operand={}, max_factor={}, max_value={})", what,
        s.min_ops, s.max_ops, s.max_operand, s.max_factor, s.max_value));
  };
  if (s.min_ops < 1) fail("min_ops must be at least 1");
  if (s.max_ops < s.min_ops) fail("max_ops must be at least min_ops");
  if (s.max_ops > kMaxArithmeticOps) fail(fmt::format("max_ops must be at most {}", kMaxArithmeticOps));
  if (s.max_operand < 1) fail("max_operand must be at least 1");
  if (s.max_factor < 2) fail("max_factor must be at least 2");
  if (s.max_value < 1) fail("max_value must be at least 1");
}

ArithmeticProblem generate_arithmetic_problem(const ArithmeticSettings& settings, std::mt19937_64& rng) {
  validate_arithmetic_settings(settings);
  // The smallest product, 1*2, already exceeds a max_value of 1, so '*' is only offered when it can fit.
  const std::string_view alphabet = settings.max_value >= 2 ? "+-*" : "+-";
  std::vector<char> ops;
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    const auto num_ops = static_cast<std::size_t>(uniform_int(rng, settings.min_ops, settings.max_ops));
    ops.clear();
    for (std::size_t i = 0; i < num_ops; ++i) {
      ops.push_back(alphabet[static_cast<std::size_t>(uniform_int(rng, 0, std::ssize(alphabet) - 1))]);
    }
    std::vector<Term> terms = term_skeleton(settings, ops, rng);
    if (sample_terms(terms, settings.max_value, rng)) return write_problem(terms);
  }
  throw std::runtime_error(fmt::format(
      "could not generate an arithmetic problem within the bounds in {} attempts (min_ops={}, max_ops={}, "
      "max_operand={}, max_factor={}, max_value={}); raise max_value or lower max_ops",
      kMaxAttempts, settings.min_ops, settings.max_ops, settings.max_operand, settings.max_factor, settings.max_value));
}

std::optional<long long> evaluate_expression(std::string_view expression) {
  std::size_t pos = 0;
  const std::optional<long long> value = parse_sum(expression, pos);
  if (!value || pos != expression.size()) return std::nullopt;
  return value;
}

std::optional<long long> evaluate_left_to_right(std::string_view expression) {
  std::size_t pos = 0;
  std::optional<long long> value = parse_number(expression, pos);
  while (value && pos < expression.size()) {
    const char op = expression[pos++];
    const std::optional<long long> operand = parse_number(expression, pos);
    if (!operand) return std::nullopt;
    bool overflow = false;
    switch (op) {
      case '+':
        overflow = __builtin_add_overflow(*value, *operand, &*value);
        break;
      case '-':
        overflow = __builtin_sub_overflow(*value, *operand, &*value);
        break;
      case '*':
        overflow = __builtin_mul_overflow(*value, *operand, &*value);
        break;
      default:
        return std::nullopt;
    }
    if (overflow) return std::nullopt;
  }
  return value;
}

std::string worked_solution(const ArithmeticProblem& problem, SolutionStyle style) {
  if (style == SolutionStyle::kHasty) {
    const std::optional<long long> hasty = evaluate_left_to_right(problem.expression);
    if (!hasty) {
      throw std::invalid_argument(
          fmt::format("worked_solution: cannot evaluate {} left to right", reward::quote_excerpt(problem.expression, 80)));
    }
    return fmt::format("<think></think><answer>{}</answer>", *hasty);
  }
  std::string think;
  if (style == SolutionStyle::kReasoned) {
    for (const std::string& step : problem.steps) {
      if (!think.empty()) think += ' ';
      think += step;
    }
  }
  return fmt::format("<think>{}</think><answer>{}</answer>", think, problem.answer);
}

std::string_view format_defect_name(FormatDefect defect) {
  switch (defect) {
    case FormatDefect::kTextAfterAnswer:
      return "text_after_answer";
    case FormatDefect::kMissingThinkClose:
      return "missing_think_close";
    case FormatDefect::kSecondAnswer:
      return "second_answer";
    case FormatDefect::kMissingAnswerClose:
      return "missing_answer_close";
  }
  throw std::invalid_argument(fmt::format("format_defect_name: unknown FormatDefect {}", static_cast<int>(defect)));
}

std::string with_format_defect(std::string_view solution, FormatDefect defect, std::mt19937_64& rng) {
  const reward::TemplateTags tags;
  const reward::ParsedCompletion parsed = reward::parse_r1_completion(solution, tags);
  if (!parsed.well_formed) {
    throw std::invalid_argument(fmt::format("with_format_defect: the solution is not well formed ({}): {}",
                                            parsed.problem, reward::quote_excerpt(solution, 200)));
  }
  std::string broken(solution);
  const auto erase_tag = [&broken](std::string_view tag) { broken.erase(broken.find(tag), tag.size()); };
  const std::string& answer = parsed.answer;
  switch (defect) {
    case FormatDefect::kTextAfterAnswer: {
      const std::array<std::string, 3> tails = {" " + answer, "\n" + answer, " The answer is " + answer + "."};
      return broken + tails[static_cast<std::size_t>(uniform_int(rng, 0, std::ssize(tails) - 1))];
    }
    case FormatDefect::kMissingThinkClose:
      erase_tag(tags.think_close);
      return broken;
    case FormatDefect::kSecondAnswer: {
      const std::string separator = uniform_int(rng, 0, 1) == 0 ? "" : "\n";
      return fmt::format("{}{}{}{}{}", broken, separator, tags.answer_open, answer, tags.answer_close);
    }
    case FormatDefect::kMissingAnswerClose:
      erase_tag(tags.answer_close);
      return broken;
  }
  throw std::invalid_argument(fmt::format("with_format_defect: unknown FormatDefect {}", static_cast<int>(defect)));
}

std::string with_format_defect(std::string_view solution, std::mt19937_64& rng) {
  const auto pick = static_cast<std::size_t>(uniform_int(rng, 0, std::ssize(kAllFormatDefects) - 1));
  return with_format_defect(solution, kAllFormatDefects[pick], rng);
}

ArithmeticTask::ArithmeticTask(ArithmeticSettings settings, std::uint64_t train_seed, std::uint64_t eval_seed,
                               int num_eval_problems)
    : settings_(settings), train_rng_(train_seed) {
  validate_arithmetic_settings(settings_);
  if (num_eval_problems < 0) {
    throw std::invalid_argument(
        fmt::format("ArithmeticTask: num_eval_problems must be >= 0, got {}", num_eval_problems));
  }
  std::mt19937_64 eval_rng(eval_seed);
  const long long max_draws =
      std::max<long long>(kMinDistinctDraws, static_cast<long long>(kDrawsPerDistinctProblem) * num_eval_problems);
  for (long long draw = 0; std::ssize(eval_problems_) < num_eval_problems; ++draw) {
    if (draw == max_draws) {
      throw std::invalid_argument(fmt::format(
          "ArithmeticTask: found only {} distinct problems in {} draws but num_eval_problems is {}; the settings "
          "allow too few expressions (raise max_ops, max_operand or max_value, or ask for fewer eval problems)",
          eval_problems_.size(), max_draws, num_eval_problems));
    }
    ArithmeticProblem problem = generate_arithmetic_problem(settings_, eval_rng);
    if (eval_expressions_.insert(problem.expression).second) eval_problems_.push_back(std::move(problem));
  }
}

ArithmeticProblem ArithmeticTask::next_train_problem() {
  for (int draw = 0; draw < kMaxAttempts; ++draw) {
    ArithmeticProblem problem = generate_arithmetic_problem(settings_, train_rng_);
    if (!eval_expressions_.contains(problem.expression)) return problem;
  }
  throw std::runtime_error(fmt::format(
      "ArithmeticTask: {} draws in a row were held-out eval problems; the {} eval problems cover (nearly) every "
      "expression these settings produce (raise max_ops, max_operand or max_value, or use fewer eval problems)",
      kMaxAttempts, eval_problems_.size()));
}

std::string ArithmeticTask::train_state() const {
  std::ostringstream out;
  out << train_rng_;
  return out.str();
}

void ArithmeticTask::restore_train_state(std::string_view state) {
  std::istringstream in{std::string(state)};
  std::mt19937_64 rng;
  in >> rng;
  if (in.fail()) throw std::invalid_argument("arithmetic task: the saved training-stream state is not a generator state");
  train_rng_ = rng;
}

}  // namespace grpo::rl
