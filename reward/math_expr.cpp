// Rendering of parsed answers, for reasons in grade results and for parser tests.
#include "reward/math_expr.h"

#include <fmt/format.h>

namespace grpo::reward {
namespace {

std::string join(const MathExpr& expr, const std::vector<std::int32_t>& children, std::string_view separator) {
  std::string text;
  for (std::size_t i = 0; i < children.size(); ++i) {
    if (i > 0) text += separator;
    text += to_string(expr, children[i]);
  }
  return text;
}

std::string number_text(const MathNode& node) {
  std::string text = node.digits;
  if (node.frac_digits > 0) {
    const auto point = text.size() - static_cast<std::size_t>(node.frac_digits);
    text.insert(point, point == 0 ? "0." : ".");
  }
  if (node.exponent10 != 0) text += fmt::format("e{}", node.exponent10);
  return text;
}

}  // namespace

std::string to_string(const MathExpr& expr, std::int32_t index) {
  const MathNode& node = expr.at(index);
  const std::vector<std::int32_t>& c = node.children;
  switch (node.kind) {
    case MathNodeKind::kNumber:
      return number_text(node);
    case MathNodeKind::kSymbol:
      return node.text;
    case MathNodeKind::kPi:
      return "pi";
    case MathNodeKind::kEuler:
      return "e";
    case MathNodeKind::kInfinity:
      return "oo";
    case MathNodeKind::kText:
      return fmt::format("\"{}\"", node.text);
    case MathNodeKind::kAdd:
      return fmt::format("({})", join(expr, c, " + "));
    case MathNodeKind::kMultiply:
      return fmt::format("({})", join(expr, c, " * "));
    case MathNodeKind::kDivide:
      return fmt::format("({} / {})", to_string(expr, c[0]), to_string(expr, c[1]));
    case MathNodeKind::kReciprocal:
      return fmt::format("1/{}", to_string(expr, c[0]));
    case MathNodeKind::kNegate:
      return fmt::format("-{}", to_string(expr, c[0]));
    case MathNodeKind::kPlusMinus:
      return fmt::format("({} +- {})", to_string(expr, c[0]), to_string(expr, c[1]));
    case MathNodeKind::kPower:
      return fmt::format("{}^{}", to_string(expr, c[0]), to_string(expr, c[1]));
    case MathNodeKind::kRoot:
      return fmt::format("root({}, {})", to_string(expr, c[0]), to_string(expr, c[1]));
    case MathNodeKind::kPercent:
      return to_string(expr, c[0]) + "%";
    case MathNodeKind::kFactorial:
      return to_string(expr, c[0]) + "!";
    case MathNodeKind::kFunction:
      return fmt::format("{}({})", node.text, join(expr, c, ", "));
    case MathNodeKind::kAbs:
      return fmt::format("|{}|", to_string(expr, c[0]));
    case MathNodeKind::kRelation: {
      std::string text = to_string(expr, c[0]);
      for (std::size_t i = 1; i < c.size(); ++i) {
        const char op = node.text[i - 1];
        const std::string_view name = op == 'l' ? "<=" : op == 'g' ? ">=" : op == 'n' ? "!=" : op == 'i' ? "in" : "";
        text += name.empty() ? fmt::format(" {} ", op) : fmt::format(" {} ", name);
        text += to_string(expr, c[i]);
      }
      return text;
    }
    case MathNodeKind::kTuple:
      return fmt::format("({})", join(expr, c, ", "));
    case MathNodeKind::kSet:
      return fmt::format("{{{}}}", join(expr, c, ", "));
    case MathNodeKind::kList:
      return join(expr, c, ", ");
    case MathNodeKind::kInterval:
      return fmt::format("{}{}, {}{}", node.left_closed ? "[" : "(", to_string(expr, c[0]), to_string(expr, c[1]),
                         node.right_closed ? "]" : ")");
    case MathNodeKind::kUnion:
      return join(expr, c, " U ");
    case MathNodeKind::kMatrix: {
      std::string text = "[";
      for (std::int32_t row = 0; row < node.rows; ++row) {
        const auto begin = c.begin() + row * node.cols;
        text += (row > 0 ? "; " : "") + join(expr, std::vector<std::int32_t>(begin, begin + node.cols), ", ");
      }
      return text + "]";
    }
  }
  return "?";
}

}  // namespace grpo::reward
