// Generated multi-step integer arithmetic ("17+4*6-9"): a reasoning task small enough to train on a CPU in minutes,
// with exact answers, worked solutions for warm-up data, and a held-out evaluation set.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace grpo::rl {

struct ArithmeticSettings {
  int min_ops = 2;  // binary operations (+ - *) per problem, drawn uniformly from [min_ops, max_ops]
  int max_ops = 3;
  int max_operand = 30;  // number literals are in [1, max_operand] ...
  int max_factor = 9;    // ... except that each '*' has at least one factor in [2, max_factor]
  int max_value = 150;   // every step result, and every number written, is in [0, max_value]
};

// Longer expressions are rarely feasible under max_value for a rejection sampler, and are far beyond what the small
// models this task is for can learn.
inline constexpr int kMaxArithmeticOps = 32;

struct ArithmeticProblem {
  std::string expression;          // e.g. "17+4*6-9": ASCII digits and + - *, no spaces
  std::string answer;              // e.g. "32"
  std::vector<std::string> steps;  // evaluation order: products left to right, then sums left to right, e.g.
                                   // {"4*6=24", "17+24=41", "41-9=32"}
};

// Throws std::invalid_argument naming the setting when the settings cannot describe any problem (min_ops > max_ops,
// min_ops < 1, max_ops > kMaxArithmeticOps, max_operand < 1, max_factor < 2, max_value < 1).
void validate_arithmetic_settings(const ArithmeticSettings& settings);

// A uniformly chosen operator sequence with literals drawn within the bounds; throws std::invalid_argument for
// invalid settings and std::runtime_error when the bounds are too tight to find a problem in a bounded number of
// tries. Deterministic for a given rng state on every standard library.
ArithmeticProblem generate_arithmetic_problem(const ArithmeticSettings& settings, std::mt19937_64& rng);

// Usual precedence (* before + and -, left to right), written independently of the generator to check it.
// nullopt for malformed input (anything but digits joined by + - *, e.g. "", "1+", "+1", "1 + 2", "(1)") or
// overflow of long long. Results may be negative ("1-5" is -4).
std::optional<long long> evaluate_expression(std::string_view expression);

// Left to right, ignoring precedence ("17+4*6-9" is ((17+4)*6)-9 = 117): the slip of someone who answers without
// working it out. Same malformed-input and overflow contract as evaluate_expression.
std::optional<long long> evaluate_left_to_right(std::string_view expression);

enum class SolutionStyle {
  kReasoned,  // "<think>4*6=24 17+24=41 41-9=32</think><answer>32</answer>"
  kDirect,    // "<think></think><answer>32</answer>": answers without reasoning, correctly
  kHasty,     // "<think></think><answer>117</answer>": answers without reasoning, left to right (often wrong)
};

std::string worked_solution(const ArithmeticProblem& problem, SolutionStyle style);

// Realistic ways a model breaks the R1 template; each makes parse_r1_completion report not well formed.
enum class FormatDefect {
  kTextAfterAnswer,     // "...</answer> 32"
  kMissingThinkClose,   // "<think>...<answer>32</answer>"
  kSecondAnswer,        // "...</answer><answer>32</answer>"
  kMissingAnswerClose,  // "...<answer>32" (a generation cut off)
};
inline constexpr std::array<FormatDefect, 4> kAllFormatDefects = {
    FormatDefect::kTextAfterAnswer, FormatDefect::kMissingThinkClose, FormatDefect::kSecondAnswer,
    FormatDefect::kMissingAnswerClose};

std::string_view format_defect_name(FormatDefect defect);

// `solution` must be well formed with the default tags (std::invalid_argument otherwise); the rng picks among
// variants of the defect's wording.
std::string with_format_defect(std::string_view solution, FormatDefect defect, std::mt19937_64& rng);
// As above, with the defect itself chosen uniformly at random.
std::string with_format_defect(std::string_view solution, std::mt19937_64& rng);

// Training and evaluation streams from separate seeds. The evaluation set is drawn first and its expressions are
// held out: training never sees one of them.
class ArithmeticTask {
 public:
  // Throws std::invalid_argument for invalid settings, a negative count, or settings whose expression space is too
  // small to hold num_eval_problems distinct expressions.
  ArithmeticTask(ArithmeticSettings settings, std::uint64_t train_seed, std::uint64_t eval_seed, int num_eval_problems);

  const ArithmeticSettings& settings() const { return settings_; }
  const std::vector<ArithmeticProblem>& eval_problems() const { return eval_problems_; }  // distinct expressions

  // Throws std::runtime_error when the eval set covers (nearly) every expression the settings can produce.
  ArithmeticProblem next_train_problem();

  // Where the training stream stands, as text (the generator's state), and back: a resumed run draws the same
  // problems as one never interrupted. restore_train_state throws std::invalid_argument for text it did not write.
  std::string train_state() const;
  void restore_train_state(std::string_view state);

 private:
  ArithmeticSettings settings_;
  std::mt19937_64 train_rng_;
  std::vector<ArithmeticProblem> eval_problems_;
  std::unordered_set<std::string> eval_expressions_;
};

}  // namespace grpo::rl
