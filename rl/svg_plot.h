// Line plots as SVG files, for reports a person reads in a browser: one line per series, axes with ticks, a legend.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace grpo::rl {

struct PlotSeries {
  std::string label;
  std::vector<std::pair<double, double>> points;  // (x, y), in x order
};

// Writes the plot to `file`. Throws std::runtime_error naming the file when it cannot be written.
void write_line_plot(const std::filesystem::path& file, const std::string& title, const std::string& x_label, const std::string& y_label,
                     const std::vector<PlotSeries>& series);

}  // namespace grpo::rl
