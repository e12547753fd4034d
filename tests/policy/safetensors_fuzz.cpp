// Fuzz target for parse_safetensors: any bytes must either parse into a header that keeps the parser's promises or
// be rejected with SafetensorsError. Another exception type, a broken promise, a crash or a sanitizer report is a
// failure. The mutator knows the format (length field, JSON header, offsets), so most inputs reach deep checks.
//
// libFuzzer (coverage-guided; the mutator below is plugged in as LLVMFuzzerCustomMutator):
//   clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address -D_GLIBCXX_USE_CXX11_ABI=1 -I. -isystem <torch includes>
//     tests/policy/safetensors_fuzz.cpp policy/safetensors.cpp -o safetensors_fuzz <torch libs> -lfmt
//   (policy/safetensors.cpp must be built with the instrumentation too: that is where the coverage is.)
//   ./safetensors_fuzz -max_total_time=60 -max_len=4096 [CORPUS_DIR]
// Standalone (any compiler, no libFuzzer; a deterministic mutation loop over built-in seeds):
//   g++ -DGRPO_FUZZ_STANDALONE ... -o safetensors_fuzz_standalone
//   ./safetensors_fuzz_standalone [--seconds N | --runs N] [--seed S] [--stats] [--write-seeds DIR] [FILE...]
//   FILE arguments replay inputs (e.g. a crash file libFuzzer saved) instead of fuzzing.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include "policy/safetensors.h"

namespace {

using grpo::policy::SafetensorsEntry;
using grpo::policy::SafetensorsError;
using grpo::policy::SafetensorsHeader;

[[noreturn]] void broken(const std::string& what) {
  std::fprintf(stderr, "safetensors_fuzz: FAILURE: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

std::uint64_t element_size(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kFloat64:
    case torch::kInt64:
      return 8;
    case torch::kFloat32:
    case torch::kInt32:
      return 4;
    case torch::kFloat16:
    case torch::kBFloat16:
    case torch::kInt16:
      return 2;
    case torch::kInt8:
    case torch::kUInt8:
    case torch::kBool:
      return 1;
    default:
      broken("accepted a tensor of a dtype safetensors does not have");
  }
}

// The promises parse_safetensors makes about a file it accepts, checked independently.
void check_accepted(std::span<const std::byte> file, const SafetensorsHeader& header) {
  std::uint64_t header_length = 0;
  std::memcpy(&header_length, file.data(), sizeof header_length);
  const std::uint64_t buffer_start = 8 + header_length;
  if (buffer_start > file.size()) broken("accepted a header that runs past the end of the file");
  std::uint64_t previous_end = buffer_start;
  bool first = true;
  for (const SafetensorsEntry& entry : header.tensors) {
    if (!grpo::policy::safetensors_dtype_name(entry.dtype)) broken("tensor '" + entry.name + "' has an unknown dtype");
    std::uint64_t bytes = element_size(entry.dtype);
    for (const std::int64_t dim : entry.shape) {
      if (dim < 0) broken("tensor '" + entry.name + "' has a negative dimension");
      if (__builtin_mul_overflow(bytes, static_cast<std::uint64_t>(dim), &bytes) ||
          bytes > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        broken("tensor '" + entry.name + "' has more bytes than an int64 counts");
      }
    }
    if (entry.begin > entry.end || entry.end > file.size() || entry.begin < buffer_start) {
      broken("tensor '" + entry.name + "' has a byte range outside the data buffer");
    }
    if (entry.end - entry.begin != bytes) broken("tensor '" + entry.name + "' has a byte range of the wrong size");
    if (!first && entry.begin < previous_end) broken("tensor '" + entry.name + "' overlaps or is out of order");
    previous_end = entry.end;
    first = false;
    if (entry.dtype == torch::kBool) {
      for (std::uint64_t i = entry.begin; i < entry.end; ++i) {
        if (std::to_integer<unsigned>(file[i]) > 1) broken("BOOL tensor '" + entry.name + "' has a byte over 1");
      }
    }
  }
}

enum class Outcome { kAccepted, kRejected };

// The last rejection's message, for the standalone loop's --stats.
std::string last_error;

Outcome run_one(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> file(reinterpret_cast<const std::byte*>(data), size);
  try {
    check_accepted(file, grpo::policy::parse_safetensors(file, "fuzz.safetensors"));
    return Outcome::kAccepted;
  } catch (const SafetensorsError& e) {
    if (std::string_view(e.what()).rfind("fuzz.safetensors: ", 0) != 0) {
      broken(std::string("an error message does not start with the file name: ") + e.what());
    }
    last_error = e.what();
    return Outcome::kRejected;
  } catch (const std::exception& e) {
    broken(std::string("threw ") + typeid(e).name() + " instead of SafetensorsError: " + e.what());
  } catch (...) {
    broken("threw something that is not a std::exception");
  }
}

// ---- Inputs: seeds and a format-aware mutator (shared by the standalone loop and libFuzzer) ----

std::string file_of(std::string_view header, std::string_view data, std::uint64_t length) {
  std::string bytes(8, '\0');
  std::memcpy(bytes.data(), &length, 8);
  bytes.append(header);
  bytes.append(data);
  return bytes;
}

std::string file_of(std::string_view header, std::string_view data = {}) {
  return file_of(header, data, header.size());
}

// Valid files of several shapes (every dtype, metadata, empty tensors, gaps, padding) and one per rejection rule.
std::vector<std::string> seed_files() {
  const std::string eight(8, '\x01');
  std::vector<std::string> seeds = {
      file_of(R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", eight),
      file_of(R"({"a":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]},)"
              R"("b":{"dtype":"F16","shape":[1],"data_offsets":[8,10]},)"
              R"("c":{"dtype":"BOOL","shape":[2],"data_offsets":[10,12]},)"
              R"("d":{"dtype":"I64","shape":[],"data_offsets":[16,24]},)"
              R"("e":{"dtype":"U8","shape":[0,3],"data_offsets":[24,24]}}    )",
              std::string(10, '\x02') + std::string("\x01\x00", 2) + std::string(12, '\x03')),
      file_of(R"({"x":{"dtype":"F64","shape":[1,1,1],"data_offsets":[0,8]},"y":{"dtype":"I8","shape":[3],)"
              R"("data_offsets":[8,11]},"z":{"dtype":"I16","shape":[2],"data_offsets":[12,16]},)"
              R"("__metadata__":{"a":"","b":"\u00e9\n"}})",
              std::string(16, '\x00')),
      file_of(R"({"i32":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}})", std::string(4, '\x7f')),
      file_of("{}"),
      file_of(R"({"__metadata__":{}})"),
      // Malformed: one per rule.
      "abc",
      file_of("{}", "", 100),
      file_of(R"({"a": {"dtype": "F32",)"),
      file_of("[1]"),
      file_of(R"({"a": {"dtype": 4, "shape": [2], "data_offsets": [0, 8]}})", eight),
      file_of(R"({"a": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}})", eight),
      file_of(R"({"a": {"dtype": "U8", "shape": [-1], "data_offsets": [0, 1]}})", eight),
      file_of(R"({"a": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}})"),
      file_of(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})", eight),
      file_of(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", eight),
      file_of(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 8]}})", eight),
      file_of(R"({"b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}, )"
              R"("a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})",
              eight),
      file_of(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, )"
              R"("a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
              eight),
      file_of(R"({"__metadata__": {"step": 3}})"),
      file_of(R"({"a": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}})", "\x01\x05"),
  };
  return seeds;
}

constexpr std::string_view kTokens[] = {"{",
                                        "}",
                                        "[",
                                        "]",
                                        ",",
                                        ":",
                                        "\"",
                                        "\"dtype\"",
                                        "\"shape\"",
                                        "\"data_offsets\"",
                                        "\"__metadata__\"",
                                        "\"BF16\"",
                                        "\"BOOL\"",
                                        "\"F64\"",
                                        "\"U8\"",
                                        "null",
                                        "true",
                                        "-1",
                                        "0",
                                        "1e400",
                                        "-0",
                                        "1.5",
                                        "\\u0000",
                                        "\\ud800",
                                        "\xff",
                                        "18446744073709551615",
                                        "18446744073709551616",
                                        "9223372036854775807",
                                        "9223372036854775808",
                                        "-9223372036854775808",
                                        "[[[[[[[[[[",
                                        "]]]]]]]]]]"};

constexpr std::string_view kNumbers[] = {"0",
                                         "1",
                                         "-1",
                                         "7",
                                         "4294967296",
                                         "4611686018427387904",
                                         "9223372036854775807",
                                         "9223372036854775808",
                                         "18446744073709551615",
                                         "18446744073709551616",
                                         "-9223372036854775808",
                                         "1e308",
                                         "1e400",
                                         "2.0",
                                         "1E2",
                                         "99999999999999999999999999999"};

// The header text of a file whose length field fits inside it, else nullopt-like empty result (ok = false).
struct Split {
  bool ok = false;
  std::string header;
  std::string body;
};

Split split_file(const std::string& file) {
  Split split;
  if (file.size() < 8) return split;
  std::uint64_t length = 0;
  std::memcpy(&length, file.data(), 8);
  if (length > file.size() - 8) return split;
  split.ok = true;
  split.header = file.substr(8, length);
  split.body = file.substr(8 + length);
  return split;
}

class Mutator {
 public:
  explicit Mutator(std::uint64_t seed) : rng_(seed), seeds_(seed_files()) {}

  const std::vector<std::string>& seeds() const { return seeds_; }
  void reseed(std::uint64_t seed) { rng_.seed(seed); }

  // One to four stacked mutations of `input`; `other` is a second input for splicing.
  std::string mutate(std::string input, const std::string& other) {
    const int count = 1 + static_cast<int>(below(4));
    for (int i = 0; i < count; ++i) input = mutate_once(std::move(input), other);
    return input;
  }

 private:
  std::size_t below(std::size_t n) { return n == 0 ? 0 : std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_); }
  bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  template <typename T, std::size_t N>
  std::string_view pick(const T (&items)[N]) {
    return items[below(N)];
  }

  // Raw edits and length-field edits a tenth of the time each, else edits inside the header (byte-level or
  // JSON-aware) after which the length field is mostly set right again, so that they reach the checks past it.
  std::string mutate_once(std::string s, const std::string& other) {
    const std::size_t choice = below(10);
    if (choice == 0) return mutate_bytes(std::move(s), other);
    if (choice == 1) return set_length(std::move(s));
    Split split = split_file(s);
    if (!split.ok) return mutate_bytes(std::move(s), other);
    if (choice < 5) {
      split.header = mutate_bytes(std::move(split.header), split_file(other).header);
    } else {
      edit_header(split);
    }
    const std::string& h = split.header;
    return chance(0.9) ? file_of(h, split.body) : file_of(h, split.body, h.size() + below(3) - 1);
  }

  std::string mutate_bytes(std::string s, const std::string& other) {
    switch (below(6)) {
      case 0:  // flip a bit
        if (!s.empty()) s[below(s.size())] ^= static_cast<char>(1U << below(8));
        return s;
      case 1:  // set a byte
        if (!s.empty()) s[below(s.size())] = static_cast<char>(below(256));
        return s;
      case 2:  // insert a token or random bytes
        return s.insert(below(s.size() + 1), chance(0.7) ? std::string(pick(kTokens)) : random_bytes(1 + below(8)));
      case 3:  // erase a range
        if (!s.empty()) {
          const std::size_t at = below(s.size());
          s.erase(at, 1 + below(std::min<std::size_t>(16, s.size() - at)));
        }
        return s;
      case 4:  // duplicate a range
        if (!s.empty()) {
          const std::size_t at = below(s.size());
          const std::string piece = s.substr(at, 1 + below(32));
          s.insert(below(s.size() + 1), piece);
        }
        return s;
      default:  // splice with another input
        return s.substr(0, below(s.size() + 1)) + other.substr(below(other.size() + 1));
    }
  }

  std::string random_bytes(std::size_t n) {
    std::string bytes(n, '\0');
    for (char& c : bytes) c = static_cast<char>(below(256));
    return bytes;
  }

  std::string set_length(std::string s) {
    if (s.size() < 8) s.resize(8, '\0');
    std::uint64_t length = 0;
    std::memcpy(&length, s.data(), 8);
    const std::uint64_t choices[] = {s.size() - 8,
                                     s.size() - 7,
                                     length + 1,
                                     length - 1,
                                     0,
                                     100'000'000,
                                     100'000'001,
                                     std::numeric_limits<std::uint64_t>::max(),
                                     std::numeric_limits<std::uint64_t>::max() - 7,
                                     1ULL << 63};
    length = choices[below(std::size(choices))];
    std::memcpy(s.data(), &length, 8);
    return s;
  }

  // Positions of JSON numbers (maximal runs of number characters after a non-identifier character).
  static std::vector<std::pair<std::size_t, std::size_t>> numbers_in(const std::string& text) {
    std::vector<std::pair<std::size_t, std::size_t>> spans;
    auto is_number_char = [](char c) {
      return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
    };
    for (std::size_t i = 0; i < text.size();) {
      if ((text[i] >= '0' && text[i] <= '9') || text[i] == '-') {
        std::size_t end = i;
        while (end < text.size() && is_number_char(text[end])) ++end;
        spans.emplace_back(i, end - i);
        i = end;
      } else {
        ++i;
      }
    }
    return spans;
  }

  void edit_header(Split& split) {
    std::string& h = split.header;
    switch (below(6)) {
      case 0: {  // a number becomes an interesting one, or moves a little
        const auto spans = numbers_in(h);
        if (spans.empty()) break;
        const auto [at, length] = spans[below(spans.size())];
        std::string replacement(pick(kNumbers));
        if (chance(0.4)) {
          try {
            const long long value = std::stoll(h.substr(at, length));
            replacement = std::to_string(value + static_cast<long long>(below(17)) - 8);
          } catch (const std::exception&) {
          }
        }
        h.replace(at, length, replacement);
        break;
      }
      case 1: {  // swap two numbers (e.g. begin and end of data_offsets, or two tensors' offsets)
        const auto spans = numbers_in(h);
        if (spans.size() < 2) break;
        std::size_t i = below(spans.size() - 1);
        std::size_t j = chance(0.6) ? i + 1 : below(spans.size());
        if (i > j) std::swap(i, j);
        if (i == j) break;
        const std::string a = h.substr(spans[i].first, spans[i].second);
        const std::string b = h.substr(spans[j].first, spans[j].second);
        h.replace(spans[j].first, spans[j].second, a);
        h.replace(spans[i].first, spans[i].second, b);
        break;
      }
      case 2: {  // duplicate a key: copy `"key": value` (up to the next comma or brace) after itself
        const std::size_t quote = h.find('"', below(h.size() + 1));
        if (quote == std::string::npos) break;
        std::size_t end = quote + 1;
        int depth = 0;
        for (; end < h.size(); ++end) {
          if (h[end] == '{' || h[end] == '[') ++depth;
          if (h[end] == '}' || h[end] == ']') {
            if (depth == 0) break;
            --depth;
          }
          if (h[end] == ',' && depth == 0) break;
        }
        const std::string entry = h.substr(quote, end - quote);
        h.insert(end, entry);
        h.insert(end, 1, ',');
        break;
      }
      case 3: {  // another dtype
        const std::size_t at = h.find("\"dtype\"", below(h.size() + 1));
        const std::size_t open = at == std::string::npos ? at : h.find('"', h.find(':', at));
        const std::size_t close = open == std::string::npos ? open : h.find('"', open + 1);
        if (close == std::string::npos) break;
        constexpr std::string_view kDtypes[] = {"F64", "F32", "F16",  "BF16",    "I64",  "I32", "I16",
                                                "I8",  "U8",  "BOOL", "F8_E4M3", "bf16", ""};
        h.replace(open + 1, close - open - 1, pick(kDtypes));
        break;
      }
      case 4:  // a token inside the header
        h.insert(below(h.size() + 1), pick(kTokens));
        break;
      default:  // grow, shrink or change the body
        if (chance(0.4)) {
          split.body += random_bytes(below(16));
        } else if (chance(0.5) && !split.body.empty()) {
          split.body.resize(below(split.body.size()));
        } else if (!split.body.empty()) {
          split.body[below(split.body.size())] = static_cast<char>(below(3));
        }
        break;
    }
  }

  std::mt19937_64 rng_;
  std::vector<std::string> seeds_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  run_one(data, size);
  return 0;
}

#ifndef GRPO_FUZZ_STANDALONE

extern "C" std::size_t LLVMFuzzerMutate(std::uint8_t* data, std::size_t size, std::size_t max_size);

// libFuzzer's own byte mutations half of the time, ours the other half; an input too short to be a file (as the
// empty first input is) is replaced by a seed.
extern "C" std::size_t LLVMFuzzerCustomMutator(std::uint8_t* data, std::size_t size, std::size_t max_size,
                                               unsigned int seed) {
  static Mutator mutator(/*seed=*/1);
  mutator.reseed(seed);
  std::mt19937 rng(seed);
  if (size >= 8 && rng() % 2 == 0) return LLVMFuzzerMutate(data, size, max_size);
  const std::vector<std::string>& seeds = mutator.seeds();
  std::string input = size < 8 ? seeds[rng() % seeds.size()] : std::string(reinterpret_cast<char*>(data), size);
  std::string output = mutator.mutate(std::move(input), seeds[rng() % seeds.size()]);
  output.resize(std::min(output.size(), max_size));
  std::memcpy(data, output.data(), output.size());
  return output.size();
}

#else

// A rejection message reduced to its rule: quoted names and numbers blanked, JSON excerpts and parser details cut.
std::string rule_of(std::string_view message) {
  message.remove_prefix(std::string_view("fuzz.safetensors: ").size());
  std::string rule;
  if (message.starts_with("tensor '")) {
    message.remove_prefix(message.find("': ") + 3);
    rule = "tensor '*': ";
  }
  bool quoted = false;
  for (const char c : message.substr(0, message.find_first_of("[{:(\"", 1))) {
    if (c == '\'') {
      quoted = !quoted;
      rule += quoted ? "'*" : "'";
    } else if (!quoted && (c < '0' || c > '9' || rule.empty() || rule.back() != '#')) {
      rule += (c >= '0' && c <= '9') ? '#' : c;
    }
  }
  return rule;
}

int main(int argc, char** argv) {
  double seconds = 20;
  long long max_runs = -1;
  std::uint64_t seed = 1;
  std::string seeds_dir;
  bool stats = false;
  std::vector<std::string> replay;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (arg == "--runs" && i + 1 < argc) {
      max_runs = std::atoll(argv[++i]);
    } else if (arg == "--seed" && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--stats") {
      stats = true;
    } else if (arg == "--write-seeds" && i + 1 < argc) {
      seeds_dir = argv[++i];
    } else if (!arg.starts_with("--")) {
      replay.emplace_back(arg);
    } else {
      std::fprintf(stderr,
                   "usage: %s [--seconds N (default 20) | --runs N] [--seed S (default 1)] [--stats] "
                   "[--write-seeds DIR] [FILE...]\n",
                   argv[0]);
      return 2;
    }
  }

  Mutator mutator(seed);
  if (!seeds_dir.empty()) {
    std::filesystem::create_directories(seeds_dir);
    for (std::size_t i = 0; i < mutator.seeds().size(); ++i) {
      std::ofstream(std::filesystem::path(seeds_dir) / ("seed_" + std::to_string(i)), std::ios::binary)
          << mutator.seeds()[i];
    }
    std::printf("wrote %zu seeds to %s\n", mutator.seeds().size(), seeds_dir.c_str());
    return 0;
  }
  if (!replay.empty()) {
    for (const std::string& path : replay) {
      std::ifstream in(path, std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      const Outcome outcome = run_one(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
      std::printf("%s: %s\n", path.c_str(), outcome == Outcome::kAccepted ? "accepted" : "rejected");
    }
    return 0;
  }

  // No coverage feedback here: the pool keeps the seeds plus mutants that parsed, so that edits wander away from the
  // seeds while each run stays a few edits from a valid file (rejected mutants are mostly broken JSON, and mutating
  // them further only finds more of it); bounded, replaced at random when full.
  constexpr std::size_t kMaxPool = 4096;
  std::vector<std::string> pool = mutator.seeds();
  std::mt19937_64 rng(seed ^ 0x9E3779B97F4A7C15ULL);
  long long runs = 0;
  long long accepted = 0;
  std::map<std::string, long long> rejections;
  for (const std::string& s : pool) {
    if (run_one(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()) == Outcome::kAccepted) ++accepted;
    ++runs;
  }
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);
  for (;;) {
    if (max_runs >= 0 ? runs >= max_runs : (runs % 256 == 0 && std::chrono::steady_clock::now() >= deadline)) break;
    const std::string& base = pool[rng() % pool.size()];
    const std::string& other = pool[rng() % pool.size()];
    std::string input = mutator.mutate(base, other);
    if (input.size() > (1U << 16)) input.resize(1U << 16);
    const Outcome outcome = run_one(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
    ++runs;
    if (outcome == Outcome::kAccepted) ++accepted;
    if (outcome == Outcome::kRejected && stats) ++rejections[rule_of(last_error)];
    if (outcome == Outcome::kAccepted && rng() % 2 == 0) {
      if (pool.size() < kMaxPool) {
        pool.push_back(std::move(input));
      } else {
        pool[mutator.seeds().size() + rng() % (kMaxPool - mutator.seeds().size())] = std::move(input);
      }
    }
  }
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "safetensors_fuzz: %lld runs in %.1f s (%lld accepted, %lld rejected with SafetensorsError), seed %llu, "
      "no failures\n",
      runs, elapsed, accepted, runs - accepted, static_cast<unsigned long long>(seed));
  if (stats) {
    std::printf("rejections by rule (%zu rules):\n", rejections.size());
    for (const auto& [rule, count] : rejections) std::printf("  %9lld  %s\n", count, rule.c_str());
  }
  return 0;
}

#endif
