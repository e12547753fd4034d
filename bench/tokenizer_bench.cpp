// Encode throughput of BpeTokenizer against the Hugging Face `tokenizers` package, both on one thread, on the same
// corpus in the same invocation (the Python side runs scripts/tokenizer_reference.py --bench as a subprocess, which
// holds Rayon to one thread and, by default, passes the corpus to encode_batch; --hf-mode lines calls encode per
// text instead). Each side encodes the whole corpus --repeats times; the figures are medians over the repeats, whose
// first one also warms each side's pre-token cache.
//   build/bin/grpo_bench_tokenizer --tokenizer DIR --corpus FILE [--python PY] [--repeats N] [--hf-mode batch|lines]
// FILE is JSON Lines with the text under "text" (as tests/policy/data/tokenizer_corpus.jsonl), or plain text, one
// text a line.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "policy/bpe_tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

#ifdef GRPO_SOURCE_DIR
constexpr const char* kDefaultScript = GRPO_SOURCE_DIR "/scripts/tokenizer_reference.py";
#else
constexpr const char* kDefaultScript = "scripts/tokenizer_reference.py";
#endif

struct Options {
  std::string tokenizer;
  std::string corpus;
  std::string python = "python3";
  std::string script = kDefaultScript;
  std::string hf_mode = "batch";
  int repeats = 5;
};

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

std::vector<std::string> read_corpus(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("cannot open corpus {}", path));
  const bool jsonl = path.ends_with(".jsonl");
  std::vector<std::string> texts;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    texts.push_back(jsonl ? Json::parse(line).at("text").get<std::string>() : line);
  }
  return texts;
}

std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (const char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// Runs the reference script's benchmark; its seconds per repeat.
std::vector<double> hf_seconds(const Options& options) {
  const std::string command =
      fmt::format("{} {} --bench {} --mode {} {} {}", shell_quote(options.python), shell_quote(options.script),
                  options.repeats, options.hf_mode, shell_quote(options.tokenizer), shell_quote(options.corpus));
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("cannot start " + command);
  std::string output;
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
  if (pclose(pipe) != 0) throw std::runtime_error(fmt::format("`{}` failed:\n{}", command, output));
  return Json::parse(output).at("seconds").get<std::vector<double>>();
}

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(flag + " needs a value");
      return argv[++i];
    };
    if (flag == "--tokenizer") {
      options.tokenizer = value();
    } else if (flag == "--corpus") {
      options.corpus = value();
    } else if (flag == "--python") {
      options.python = value();
    } else if (flag == "--script") {
      options.script = value();
    } else if (flag == "--hf-mode") {
      options.hf_mode = value();
    } else if (flag == "--repeats") {
      options.repeats = std::max(1, std::atoi(value().c_str()));
    } else {
      throw std::invalid_argument("unknown flag " + flag);
    }
  }
  if (options.tokenizer.empty() || options.corpus.empty()) throw std::invalid_argument("--tokenizer and --corpus");
  if (options.hf_mode != "batch" && options.hf_mode != "lines") throw std::invalid_argument("--hf-mode batch|lines");
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  try {
    options = parse(argc, argv);
  } catch (const std::invalid_argument& e) {
    fmt::print(stderr,
               "{}\nusage: grpo_bench_tokenizer --tokenizer DIR --corpus FILE [--python PY] [--repeats N] "
               "[--hf-mode batch|lines] [--script scripts/tokenizer_reference.py]\n",
               e.what());
    return 2;
  }
  try {
    const auto tokenizer = grpo::policy::BpeTokenizer::load(options.tokenizer);
    const std::vector<std::string> texts = read_corpus(options.corpus);
    std::size_t bytes = 0;
    for (const std::string& text : texts) bytes += text.size();

    std::vector<double> ours;
    std::size_t token_count = 0;
    for (int r = 0; r < options.repeats; ++r) {
      const auto start = Clock::now();
      token_count = 0;
      for (const std::string& text : texts) token_count += tokenizer->encode(text).size();
      ours.push_back(std::chrono::duration<double>(Clock::now() - start).count());
    }
    const std::vector<double> hf = hf_seconds(options);

    const double mb = static_cast<double>(bytes) / 1e6;
    const double ours_rate = mb / median(ours);
    const double hf_rate = mb / median(hf);
    fmt::print("{}\n", Json{{"tokenizer", options.tokenizer},
                            {"corpus_bytes", bytes},
                            {"texts", texts.size()},
                            {"tokens", token_count},
                            {"repeats", options.repeats},
                            {"hf_mode", options.hf_mode},
                            {"ours_mb_per_s", ours_rate},
                            {"hf_mb_per_s", hf_rate},
                            {"ratio", ours_rate / hf_rate}}
                           .dump());
    fmt::print(
        "{}: {:.2f} MB/s ours vs {:.2f} MB/s tokenizers ({} on one thread), {:.2f}x; {} texts, {:.2f} MB, "
        "{} tokens, median of {} (first repeats {:.2f} vs {:.2f} MB/s)\n",
        std::filesystem::path(options.tokenizer).filename().string(), ours_rate, hf_rate,
        options.hf_mode == "batch" ? "encode_batch" : "encode per text", ours_rate / hf_rate, texts.size(), mb,
        token_count, options.repeats, mb / ours.front(), mb / hf.front());
  } catch (const std::exception& e) {
    fmt::print(stderr, "grpo_bench_tokenizer: {}\n", e.what());
    return 1;
  }
  return 0;
}
