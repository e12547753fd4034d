// SVG line plots (see svg_plot.h).
#include "rl/svg_plot.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

namespace grpo::rl {
namespace {

constexpr double kWidth = 720, kHeight = 420, kLeft = 70, kRight = 180, kTop = 40, kBottom = 50;
constexpr std::array<const char*, 8> kColors = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

std::string escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// Round tick spacing (1, 2 or 5 × 10^k) giving about `count` ticks over [low, high].
double tick_step(double low, double high, int count) {
  const double raw = (high - low) / std::max(count, 1);
  if (raw <= 0) return 1.0;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  for (const double factor : {1.0, 2.0, 5.0, 10.0}) {
    if (factor * magnitude >= raw) return factor * magnitude;
  }
  return 10.0 * magnitude;
}

}  // namespace

void write_line_plot(const std::filesystem::path& file, const std::string& title, const std::string& x_label, const std::string& y_label,
                     const std::vector<PlotSeries>& series) {
  double x_low = std::numeric_limits<double>::infinity(), x_high = -x_low, y_low = x_low, y_high = -x_low;
  for (const auto& s : series) {
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      x_low = std::min(x_low, x), x_high = std::max(x_high, x), y_low = std::min(y_low, y), y_high = std::max(y_high, y);
    }
  }
  if (!std::isfinite(x_low)) x_low = 0, x_high = 1, y_low = 0, y_high = 1;
  if (x_high == x_low) x_high = x_low + 1;
  if (y_high == y_low) y_high = y_low + 1;
  const double y_pad = (y_high - y_low) * 0.05;
  y_low -= y_pad, y_high += y_pad;
  const double plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
  auto px = [&](double x) { return kLeft + (x - x_low) / (x_high - x_low) * plot_w; };
  auto py = [&](double y) { return kTop + (1.0 - (y - y_low) / (y_high - y_low)) * plot_h; };

  std::string svg = fmt::format("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"12\">\n",
                                kWidth, kHeight);
  svg += fmt::format("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"22\" font-size=\"15\">{}</text>\n", kLeft, escape(title));
  svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#444\"/>\n", kLeft, kTop, plot_w, plot_h);
  const double xs = tick_step(x_low, x_high, 6), ys = tick_step(y_low, y_high, 6);
  for (double x = std::ceil(x_low / xs) * xs; x <= x_high + 1e-9; x += xs) {
    svg += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"#ddd\"/><text x=\"{0:.1f}\" y=\"{3}\" text-anchor=\"middle\">{4:g}</text>\n",
                       px(x), kTop, kTop + plot_h, kTop + plot_h + 16, x);
  }
  for (double y = std::ceil(y_low / ys) * ys; y <= y_high + 1e-9; y += ys) {
    svg += fmt::format("<line x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" stroke=\"#ddd\"/><text x=\"{3}\" y=\"{4:.1f}\" text-anchor=\"end\">{5:g}</text>\n",
                       kLeft, py(y), kLeft + plot_w, kLeft - 6, py(y) + 4, std::abs(y) < 1e-12 ? 0.0 : y);
  }
  svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", kLeft + plot_w / 2, kHeight - 12, escape(x_label));
  svg += fmt::format("<text x=\"16\" y=\"{0}\" transform=\"rotate(-90 16 {0})\" text-anchor=\"middle\">{1}</text>\n", kTop + plot_h / 2, escape(y_label));
  for (std::size_t i = 0; i < series.size(); ++i) {
    const auto* color = kColors[i % kColors.size()];
    std::string path;
    for (const auto& [x, y] : series[i].points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      path += fmt::format("{}{:.1f},{:.1f}", path.empty() ? "M" : " L", px(x), py(y));
    }
    if (!path.empty()) svg += fmt::format("<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>\n", path, color);
    const double ly = kTop + 14 + 20.0 * static_cast<double>(i);
    svg += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"{3}\" stroke-width=\"3\"/><text x=\"{4}\" y=\"{5}\">{6}</text>\n",
                       kLeft + plot_w + 12, ly, kLeft + plot_w + 36, color, kLeft + plot_w + 42, ly + 4, escape(series[i].label));
  }
  svg += "</svg>\n";
  std::ofstream out(file);
  out << svg;
  if (!out) throw std::runtime_error(fmt::format("cannot write {}", file.string()));
}

}  // namespace grpo::rl
