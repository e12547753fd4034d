// The arithmetic task: generated problems agree with an independent evaluator and obey their bounds, steps chain,
// seeds reproduce, the eval set stays held out, and worked solutions and format defects grade as intended.
#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "reward/accuracy_grader.h"
#include "reward/format_grader.h"
#include "reward/r1_format.h"
#include "rl/tasks/arithmetic_task.h"

namespace grpo::rl {
namespace {

TEST(EvaluateExpression, FollowsPrecedenceAndLeftAssociativity) {
  EXPECT_EQ(evaluate_expression("17+4*6-9"), 32);
  EXPECT_EQ(evaluate_expression("2*3*4"), 24);
  EXPECT_EQ(evaluate_expression("10-2-3"), 5);
  EXPECT_EQ(evaluate_expression("2+3*4"), 14);
  EXPECT_EQ(evaluate_expression("2*3+4*5"), 26);
  EXPECT_EQ(evaluate_expression("1-5"), -4);
  EXPECT_EQ(evaluate_expression("7"), 7);
  EXPECT_EQ(evaluate_expression("007+1"), 8);
  EXPECT_EQ(evaluate_expression("9223372036854775807"), 9223372036854775807LL);
}

TEST(EvaluateExpression, RejectsMalformedInput) {
  for (const std::string text : {"",
                                 "+",
                                 "1+",
                                 "+1",
                                 "-1",
                                 "1++2",
                                 "1+*2",
                                 "*3",
                                 "1 + 2",
                                 " 1",
                                 "1 ",
                                 "(1)",
                                 "1/2",
                                 "1.5",
                                 "a",
                                 "1+a",
                                 "2**3",
                                 "9223372036854775808",
                                 "9223372036854775807+1",
                                 "99999999999*99999999999"}) {
    EXPECT_FALSE(evaluate_expression(text).has_value()) << "'" << text << "'";
    EXPECT_FALSE(evaluate_left_to_right(text).has_value()) << "'" << text << "'";
  }
  EXPECT_FALSE(evaluate_expression(std::string("1+\0", 3)).has_value());
  EXPECT_FALSE(evaluate_left_to_right(std::string("1+\0", 3)).has_value());
}

TEST(EvaluateLeftToRight, IgnoresPrecedence) {
  EXPECT_EQ(evaluate_left_to_right("17+4*6-9"), 117);  // ((17+4)*6)-9
  EXPECT_EQ(evaluate_left_to_right("2+3*4"), 20);
  EXPECT_EQ(evaluate_left_to_right("2*3+4*5"), 50);  // ((2*3)+4)*5
  EXPECT_EQ(evaluate_left_to_right("2-3*4"), -4);
  EXPECT_EQ(evaluate_left_to_right("2*3*4"), 24);  // agrees with precedence when it does not matter
  EXPECT_EQ(evaluate_left_to_right("10-2-3"), 5);
  EXPECT_EQ(evaluate_left_to_right("7"), 7);
}

// Re-derives the problem from its steps: each step's operands are literals or earlier results, the arithmetic in
// each step is right, every result is in bounds, and the last result is the answer.
void expect_consistent(const ArithmeticProblem& problem, const ArithmeticSettings& settings) {
  SCOPED_TRACE(problem.expression);
  const std::optional<long long> value = evaluate_expression(problem.expression);
  ASSERT_TRUE(value.has_value());
  EXPECT_EQ(std::to_string(*value), problem.answer);
  EXPECT_GE(*value, 0);
  EXPECT_LE(*value, settings.max_value);

  const auto num_ops = std::count_if(problem.expression.begin(), problem.expression.end(),
                                     [](char c) { return c == '+' || c == '-' || c == '*'; });
  EXPECT_GE(num_ops, settings.min_ops);
  EXPECT_LE(num_ops, settings.max_ops);
  ASSERT_EQ(std::ssize(problem.steps), num_ops);

  // Literals and the factor rule, read from the expression text.
  std::vector<long long> literals;
  std::vector<char> ops;
  std::size_t pos = 0;
  while (pos < problem.expression.size()) {
    const std::size_t end = problem.expression.find_first_of("+-*", pos);
    literals.push_back(std::stoll(problem.expression.substr(pos, end - pos)));
    if (end == std::string::npos) break;
    ops.push_back(problem.expression[end]);
    pos = end + 1;
  }
  for (const long long literal : literals) {
    EXPECT_GE(literal, 1);
    EXPECT_LE(literal, std::max(settings.max_operand, settings.max_factor));
    EXPECT_LE(literal, settings.max_value);
  }
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (ops[i] != '*') {
      EXPECT_LE(literals[i + 1], settings.max_operand);
      continue;
    }
    const auto is_factor = [&](long long x) { return x >= 2 && x <= settings.max_factor; };
    EXPECT_TRUE(is_factor(literals[i]) || is_factor(literals[i + 1])) << "no factor around '*' #" << i;
  }

  // Each step consumes two values that exist (literals or earlier results) and makes one.
  std::multiset<long long> available(literals.begin(), literals.end());
  for (const std::string& step : problem.steps) {
    SCOPED_TRACE(step);
    const std::size_t op = step.find_first_of("+-*");
    const std::size_t equals = step.find('=');
    ASSERT_NE(op, std::string::npos);
    ASSERT_NE(equals, std::string::npos);
    const std::optional<long long> computed = evaluate_expression(step.substr(0, equals));
    ASSERT_TRUE(computed.has_value());
    const long long result = std::stoll(step.substr(equals + 1));
    EXPECT_EQ(*computed, result);
    EXPECT_GE(result, 0);
    EXPECT_LE(result, settings.max_value);
    for (const long long operand : {std::stoll(step.substr(0, op)), std::stoll(step.substr(op + 1, equals - op - 1))}) {
      const auto it = available.find(operand);
      ASSERT_NE(it, available.end()) << "operand " << operand << " is neither a literal nor an earlier result";
      available.erase(it);
    }
    available.insert(result);
  }
  EXPECT_EQ(available.size(), 1u);
  EXPECT_EQ(problem.steps.back().substr(problem.steps.back().find('=') + 1), problem.answer);
}

TEST(GenerateArithmeticProblem, ProblemsMatchTheEvaluatorAndObeyTheBounds) {
  const std::vector<ArithmeticSettings> all_settings = {
      {},
      {.min_ops = 1, .max_ops = 1, .max_operand = 3, .max_factor = 2, .max_value = 6},
      {.min_ops = 4, .max_ops = 6, .max_operand = 99, .max_factor = 12, .max_value = 999},
      {.min_ops = 3, .max_ops = 3, .max_operand = 50, .max_factor = 20, .max_value = 40},
      {.min_ops = 1, .max_ops = 3, .max_operand = 5, .max_factor = 3, .max_value = 1},  // no room for '*'
      {.min_ops = 8, .max_ops = 12, .max_operand = 30, .max_factor = 9, .max_value = 150},
  };
  std::mt19937_64 rng(/*seed=*/1);
  for (const ArithmeticSettings& settings : all_settings) {
    for (int i = 0; i < 500; ++i) expect_consistent(generate_arithmetic_problem(settings, rng), settings);
  }
}

TEST(GenerateArithmeticProblem, CoversEveryOperatorAndProductChains) {
  const ArithmeticSettings settings;
  std::mt19937_64 rng(/*seed=*/2);
  std::set<char> seen_ops;
  bool saw_chain = false;
  bool saw_two_products = false;
  for (int i = 0; i < 2000; ++i) {
    const ArithmeticProblem problem = generate_arithmetic_problem(settings, rng);
    for (const char c : problem.expression) {
      if (c == '+' || c == '-' || c == '*') seen_ops.insert(c);
    }
    const std::string& e = problem.expression;
    for (std::size_t k = 0; k < e.size(); ++k) {
      const std::size_t next = e.find_first_of("+-*", k + 1);
      if (e[k] == '*' && next != std::string::npos && e[next] == '*') saw_chain = true;
      if (e[k] == '*' && next != std::string::npos && e[next] != '*' && e.find('*', next) != std::string::npos) {
        saw_two_products = true;
      }
    }
  }
  EXPECT_EQ(seen_ops, (std::set<char>{'+', '-', '*'}));
  EXPECT_TRUE(saw_chain);
  EXPECT_TRUE(saw_two_products);
}

TEST(GenerateArithmeticProblem, WritesStepsInEvaluationOrder) {
  // Products first (left to right), then sums left to right, as in the task's example "17+4*6-9".
  std::mt19937_64 rng(/*seed=*/3);
  const ArithmeticSettings settings{.min_ops = 3, .max_ops = 3};
  int checked = 0;
  for (int i = 0; i < 5000 && checked < 20; ++i) {
    const ArithmeticProblem problem = generate_arithmetic_problem(settings, rng);
    const std::string& e = problem.expression;
    const std::size_t star = e.find('*');
    if (star == std::string::npos || e.find_first_of("+-") > star) continue;  // want a sum before the product
    ++checked;
    EXPECT_NE(problem.steps.front().find('*'), std::string::npos) << e << ": " << problem.steps.front();
  }
  EXPECT_EQ(checked, 20);
}

TEST(GenerateArithmeticProblem, SameSeedSameProblems) {
  const ArithmeticSettings settings;
  std::mt19937_64 a(/*seed=*/42);
  std::mt19937_64 b(/*seed=*/42);
  std::mt19937_64 c(/*seed=*/43);
  bool any_different = false;
  for (int i = 0; i < 100; ++i) {
    const ArithmeticProblem pa = generate_arithmetic_problem(settings, a);
    const ArithmeticProblem pb = generate_arithmetic_problem(settings, b);
    EXPECT_EQ(pa.expression, pb.expression);
    EXPECT_EQ(pa.steps, pb.steps);
    any_different = any_different || pa.expression != generate_arithmetic_problem(settings, c).expression;
  }
  EXPECT_TRUE(any_different);
}

TEST(GenerateArithmeticProblem, RejectsImpossibleSettings) {
  std::mt19937_64 rng(/*seed=*/4);
  const std::vector<ArithmeticSettings> invalid = {
      {.min_ops = 3, .max_ops = 2},
      {.min_ops = 0, .max_ops = 2},
      {.min_ops = 1, .max_ops = kMaxArithmeticOps + 1},
      {.max_operand = 0},
      {.max_factor = 1},
      {.max_value = 0},
  };
  for (const ArithmeticSettings& settings : invalid) {
    EXPECT_THROW(generate_arithmetic_problem(settings, rng), std::invalid_argument);
    EXPECT_THROW(ArithmeticTask(settings, 1, 2, 10), std::invalid_argument);
  }
  try {
    generate_arithmetic_problem({.min_ops = 3, .max_ops = 2}, rng);
    FAIL() << "min_ops > max_ops was accepted";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("max_ops must be at least min_ops"), std::string::npos) << error.what();
  }
}

TEST(WorkedSolution, ReasonedAndDirectSolutionsAreWellFormedAndCorrect) {
  const ArithmeticProblem example{.expression = "17+4*6-9", .answer = "32", .steps = {"4*6=24", "17+24=41", "41-9=32"}};
  EXPECT_EQ(worked_solution(example, SolutionStyle::kReasoned),
            "<think>4*6=24 17+24=41 41-9=32</think><answer>32</answer>");
  EXPECT_EQ(worked_solution(example, SolutionStyle::kDirect), "<think></think><answer>32</answer>");
  EXPECT_EQ(worked_solution(example, SolutionStyle::kHasty), "<think></think><answer>117</answer>");

  const reward::AccuracyGrader accuracy;
  const reward::FormatGrader format;
  std::mt19937_64 rng(/*seed=*/5);
  for (int i = 0; i < 200; ++i) {
    const ArithmeticProblem problem = generate_arithmetic_problem({}, rng);
    for (const SolutionStyle style : {SolutionStyle::kReasoned, SolutionStyle::kDirect}) {
      const std::string solution = worked_solution(problem, style);
      EXPECT_TRUE(reward::parse_r1_completion(solution).well_formed) << solution;
      const reward::GradeInput input{.prompt = problem.expression, .completion = solution, .reference = problem.answer};
      EXPECT_EQ(accuracy.grade(input).score, 1.0) << solution;
      EXPECT_EQ(format.grade(input).score, 1.0) << solution;
    }
  }
}

// The hasty answer is well formed, and right exactly when left-to-right order gives the true value.
TEST(WorkedSolution, HastySolutionsAreWellFormedAndRightOnlyWhenOrderDoesNotMatter) {
  const reward::AccuracyGrader accuracy;
  const reward::FormatGrader format;
  std::mt19937_64 rng(/*seed=*/7);
  int wrong = 0;
  for (int i = 0; i < 200; ++i) {
    const ArithmeticProblem problem = generate_arithmetic_problem({.min_ops = 3, .max_ops = 4, .max_operand = 9,
                                                                    .max_factor = 9, .max_value = 99}, rng);
    const std::string solution = worked_solution(problem, SolutionStyle::kHasty);
    const reward::GradeInput input{.prompt = problem.expression, .completion = solution, .reference = problem.answer};
    EXPECT_EQ(format.grade(input).score, 1.0) << solution;
    const bool order_matters = evaluate_left_to_right(problem.expression) != evaluate_expression(problem.expression);
    EXPECT_EQ(accuracy.grade(input).score, order_matters ? 0.0 : 1.0) << problem.expression << " -> " << solution;
    wrong += order_matters ? 1 : 0;
  }
  // Most multi-step problems with a product after a sum or difference are answered wrongly: the base is weak.
  EXPECT_GT(wrong, 60);
}

TEST(WithFormatDefect, EveryDefectBreaksTheFormat) {
  const reward::AccuracyGrader accuracy;
  std::mt19937_64 rng(/*seed=*/6);
  for (int i = 0; i < 50; ++i) {
    const ArithmeticProblem problem = generate_arithmetic_problem({}, rng);
    for (const SolutionStyle style : {SolutionStyle::kReasoned, SolutionStyle::kDirect, SolutionStyle::kHasty}) {
      const std::string solution = worked_solution(problem, style);
      for (const FormatDefect defect : kAllFormatDefects) {
        const std::string broken = with_format_defect(solution, defect, rng);
        const reward::ParsedCompletion parsed = reward::parse_r1_completion(broken);
        EXPECT_FALSE(parsed.well_formed) << format_defect_name(defect) << ": " << broken;
        EXPECT_NE(broken, solution);
      }
      EXPECT_FALSE(reward::parse_r1_completion(with_format_defect(solution, rng)).well_formed);
    }
  }
  const std::string solution = "<think>2+3=5</think><answer>5</answer>";
  EXPECT_EQ(reward::parse_r1_completion(with_format_defect(solution, FormatDefect::kTextAfterAnswer, rng)).problem,
            "text after </answer>");
  EXPECT_EQ(with_format_defect(solution, FormatDefect::kMissingThinkClose, rng), "<think>2+3=5<answer>5</answer>");
  EXPECT_EQ(with_format_defect(solution, FormatDefect::kMissingAnswerClose, rng), "<think>2+3=5</think><answer>5");
  EXPECT_EQ(reward::parse_r1_completion(with_format_defect(solution, FormatDefect::kSecondAnswer, rng)).problem,
            "2 <answer> blocks");
}

TEST(WithFormatDefect, RandomDefectsCoverEveryKind) {
  std::mt19937_64 rng(/*seed=*/7);
  const std::string solution = "<think>2+3=5</think><answer>5</answer>";
  std::set<std::string> problems;
  for (int i = 0; i < 200; ++i) problems.insert(reward::parse_r1_completion(with_format_defect(solution, rng)).problem);
  EXPECT_EQ(problems, (std::set<std::string>{"text after </answer>", "missing </think>", "2 <answer> blocks",
                                             "missing </answer>"}));
}

TEST(WithFormatDefect, RequiresAWellFormedSolution) {
  std::mt19937_64 rng(/*seed=*/8);
  EXPECT_THROW(with_format_defect("<answer>5</answer>", rng), std::invalid_argument);
}

TEST(ArithmeticTask, EvalSetIsDistinctAndReproducible) {
  const ArithmeticTask task({}, /*train_seed=*/1, /*eval_seed=*/2, /*num_eval_problems=*/200);
  ASSERT_EQ(task.eval_problems().size(), 200u);
  std::set<std::string> expressions;
  for (const ArithmeticProblem& problem : task.eval_problems()) expressions.insert(problem.expression);
  EXPECT_EQ(expressions.size(), 200u);

  const ArithmeticTask same_eval_seed({}, /*train_seed=*/99, /*eval_seed=*/2, /*num_eval_problems=*/200);
  for (std::size_t i = 0; i < 200; ++i) {
    EXPECT_EQ(task.eval_problems()[i].expression, same_eval_seed.eval_problems()[i].expression);
  }
  EXPECT_TRUE(ArithmeticTask({}, 1, 2, /*num_eval_problems=*/0).eval_problems().empty());
  EXPECT_THROW(ArithmeticTask({}, 1, 2, /*num_eval_problems=*/-1), std::invalid_argument);
}

TEST(ArithmeticTask, TrainingIsReproducible) {
  ArithmeticTask a({}, /*train_seed=*/11, /*eval_seed=*/12, /*num_eval_problems=*/50);
  ArithmeticTask b({}, /*train_seed=*/11, /*eval_seed=*/12, /*num_eval_problems=*/50);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.next_train_problem().expression, b.next_train_problem().expression);
}

TEST(ArithmeticTask, TrainingNeverSeesAnEvalExpression) {
  // A space of a few dozen expressions: without the hold-out, training draws would hit the eval set constantly.
  const ArithmeticSettings tiny{.min_ops = 1, .max_ops = 1, .max_operand = 3, .max_factor = 2, .max_value = 6};
  ArithmeticTask task(tiny, /*train_seed=*/3, /*eval_seed=*/4, /*num_eval_problems=*/10);
  std::set<std::string> eval;
  for (const ArithmeticProblem& problem : task.eval_problems()) eval.insert(problem.expression);
  ASSERT_EQ(eval.size(), 10u);

  std::set<std::string> train;
  std::mt19937_64 unrestricted(/*seed=*/5);
  int unrestricted_collisions = 0;
  for (int i = 0; i < 2000; ++i) {
    const ArithmeticProblem problem = task.next_train_problem();
    EXPECT_FALSE(eval.contains(problem.expression)) << problem.expression;
    expect_consistent(problem, tiny);
    train.insert(problem.expression);
    unrestricted_collisions += eval.contains(generate_arithmetic_problem(tiny, unrestricted).expression) ? 1 : 0;
  }
  EXPECT_GT(unrestricted_collisions, 100);  // collisions are common without the hold-out
  EXPECT_GE(train.size(), 5u);
}

TEST(ArithmeticTask, ReportsAnExpressionSpaceTooSmall) {
  const ArithmeticSettings tiny{.min_ops = 1, .max_ops = 1, .max_operand = 2, .max_factor = 2, .max_value = 2};
  // Only "1+1", "1-1", "2-1", "2-2", "1*2", "2*1" and similar fit: far fewer than 100.
  EXPECT_THROW(ArithmeticTask(tiny, 1, 2, /*num_eval_problems=*/100), std::invalid_argument);

  std::mt19937_64 rng(/*seed=*/9);
  std::set<std::string> space;
  for (int i = 0; i < 2000; ++i) space.insert(generate_arithmetic_problem(tiny, rng).expression);
  ArithmeticTask exhausted(tiny, 1, 2, /*num_eval_problems=*/static_cast<int>(space.size()));
  EXPECT_THROW(exhausted.next_train_problem(), std::runtime_error);
}

}  // namespace
}  // namespace grpo::rl
