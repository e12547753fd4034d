// Dynamic sampling's kept groups over data-parallel ranks (see kept_groups.h).
#include "rl/kept_groups.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "rl/grpo_math.h"

namespace grpo::rl {

std::pair<std::int64_t, std::int64_t> block_of_rank(std::int64_t count, int rank, int world) {
  return {count * rank / world, count * (rank + 1) / world};
}

void KeptGroups::add_round(RankGroup& ranks, StepData&& round, std::string_view label) {
  const auto keep = groups_with_signal(round.rewards, round.scorable);
  auto flags = torch::zeros({round.prompts()}, torch::kUInt8);
  std::vector<std::int64_t> order;
  for (std::size_t p = 0; p < keep.size(); ++p) {
    if (!keep[p]) continue;
    flags[static_cast<std::int64_t>(p)] = 1;
    order.push_back(static_cast<std::int64_t>(p));
  }
  // The round's flags in prompt order: the ranks' blocks are contiguous and in rank order.
  const auto all = ranks.all_gather_rows(flags, label).to(torch::kInt64);
  auto place = total_ + all.narrow(0, 0, round.global_first).sum().item<std::int64_t>();
  for (std::size_t k = 0; k < order.size(); ++k) places_.push_back(place++);
  total_ += all.sum().item<std::int64_t>();
  take_groups(round, order);
  if (kept_.group_size == 0) {
    kept_ = std::move(round);
  } else {
    append_groups(kept_, std::move(round));
  }
}

StepData KeptGroups::share_out(RankGroup& ranks, std::int64_t count, std::string_view label) && {
  if (count > total_) throw std::logic_error(fmt::format("KeptGroups::share_out: {} groups asked for, {} kept", count, total_));
  const auto [first, last] = block_of_rank(count, ranks.rank(), ranks.world_size());
  std::vector<std::int64_t> staying, leaving;
  for (std::size_t i = 0; i < places_.size(); ++i) {
    const auto place = places_[i];
    if (place >= count) continue;  // past the step's batch: dropped, as one process drops it
    (place >= first && place < last ? staying : leaving).push_back(static_cast<std::int64_t>(i));
  }
  StepData incoming;
  std::vector<std::int64_t> incoming_places;
  if (ranks.any(!leaving.empty(), label)) {
    const auto sent = ranks.all_gather_strings(encode_groups(kept_, leaving, places_), label);
    for (int r = 0; r < ranks.world_size(); ++r) {
      if (r == ranks.rank()) continue;
      StepData theirs;
      std::vector<std::int64_t> their_places;
      decode_groups(sent[static_cast<std::size_t>(r)], theirs, their_places);
      std::vector<std::int64_t> mine;
      for (std::size_t i = 0; i < their_places.size(); ++i) {
        if (their_places[i] >= first && their_places[i] < last) mine.push_back(static_cast<std::int64_t>(i));
      }
      for (const auto i : mine) incoming_places.push_back(their_places[static_cast<std::size_t>(i)]);
      take_groups(theirs, mine);
      if (incoming.group_size == 0) {
        incoming = std::move(theirs);
      } else {
        append_groups(incoming, std::move(theirs));
      }
    }
  }
  // This rank's own groups of its block, then those it received, put in the step's order.
  std::vector<std::int64_t> places;
  for (const auto i : staying) places.push_back(places_[static_cast<std::size_t>(i)]);
  StepData block = std::move(kept_);
  take_groups(block, staying);
  if (incoming.prompts() > 0) {
    append_groups(block, std::move(incoming));
    places.insert(places.end(), incoming_places.begin(), incoming_places.end());
  }
  if (static_cast<std::int64_t>(places.size()) != last - first) {
    throw std::logic_error(fmt::format("KeptGroups::share_out: rank {} has {} of the {} groups of its block [{}, {})", ranks.rank(),
                                       places.size(), last - first, first, last));
  }
  std::vector<std::int64_t> order(places.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) { return places[static_cast<std::size_t>(a)] < places[static_cast<std::size_t>(b)]; });
  take_groups(block, order);
  block.global_first = first;
  block.global_prompts = count;
  return block;
}

std::string encode_groups(const StepData& data, const std::vector<std::int64_t>& indices, const std::vector<std::int64_t>& places) {
  const auto G = data.group_size;
  const auto rewards = data.rewards.to(torch::kFloat64).contiguous();
  const auto scorable = data.scorable.to(torch::kBool).contiguous();
  nlohmann::json groups = nlohmann::json::array();
  for (const auto index : indices) {
    const auto p = static_cast<std::size_t>(index);
    const auto& problem = data.problems[p];
    nlohmann::json samples = nlohmann::json::array();
    for (std::int64_t g = 0; g < G; ++g) {
      const auto row = static_cast<std::size_t>(index * G + g);
      const auto& c = data.generation.completions[row];
      samples.push_back({{"prompt_ids", data.prompt_ids[row]},
                         {"prompt_index", c.prompt_index},
                         {"sample_index", c.sample_index},
                         {"tokens", c.tokens},
                         {"logprobs", c.logprobs},
                         {"finish", c.finish == rollout::FinishReason::kStop ? "stop" : "length"},
                         {"stop_string", c.stop_string},
                         {"policy_version", c.policy_version},
                         {"reward", rewards[index][g].item<double>()},
                         {"scorable", scorable[index][g].item<bool>()}});
    }
    groups.push_back({{"place", places[p]},
                      {"question", problem.question},
                      {"reference", problem.reference},
                      {"grader", problem.grader},
                      {"metadata", problem.metadata},
                      {"prompt_text", data.prompt_texts[p]},
                      {"samples", std::move(samples)}});
  }
  const auto bytes = nlohmann::json::to_cbor(nlohmann::json{{"group_size", G}, {"groups", std::move(groups)}});
  return {bytes.begin(), bytes.end()};
}

void decode_groups(std::string_view bytes, StepData& into, std::vector<std::int64_t>& places) {
  try {
    const auto message = nlohmann::json::from_cbor(bytes.begin(), bytes.end());
    const auto G = message.at("group_size").get<std::int64_t>();
    if (into.group_size != 0 && into.group_size != G) {
      throw std::runtime_error(fmt::format("groups of {} samples, into a step of groups of {}", G, into.group_size));
    }
    into.group_size = G;
    std::vector<double> rewards;
    std::vector<std::uint8_t> scorable;
    const auto& groups = message.at("groups");
    for (const auto& group : groups) {
      const auto& samples = group.at("samples");
      if (static_cast<std::int64_t>(samples.size()) != G) throw std::runtime_error(fmt::format("a group of {} samples, not {}", samples.size(), G));
      places.push_back(group.at("place").get<std::int64_t>());
      into.problems.push_back({group.at("question").get<std::string>(), group.at("reference").get<std::string>(), group.at("grader").get<std::string>(),
                               group.at("metadata").get<std::string>()});
      into.prompt_texts.push_back(group.at("prompt_text").get<std::string>());
      for (const auto& s : samples) {
        into.prompt_ids.push_back(s.at("prompt_ids").get<std::vector<std::int64_t>>());
        rollout::Completion c;
        c.prompt_index = s.at("prompt_index").get<std::int64_t>();
        c.sample_index = s.at("sample_index").get<std::int64_t>();
        c.tokens = s.at("tokens").get<std::vector<std::int64_t>>();
        c.logprobs = s.at("logprobs").get<std::vector<float>>();
        c.finish = s.at("finish").get<std::string>() == "stop" ? rollout::FinishReason::kStop : rollout::FinishReason::kLength;
        c.stop_string = s.at("stop_string").get<std::string>();
        c.policy_version = s.at("policy_version").get<std::int64_t>();
        into.generation.generated_tokens += static_cast<std::int64_t>(c.tokens.size());
        into.generation.completions.push_back(std::move(c));
        rewards.push_back(s.at("reward").get<double>());
        scorable.push_back(s.at("scorable").get<bool>() ? 1 : 0);
      }
    }
    const auto P = static_cast<std::int64_t>(groups.size());
    const auto new_rewards = torch::tensor(rewards, torch::kFloat64).view({P, G});
    const auto new_scorable = torch::tensor(scorable, torch::kUInt8).view({P, G}).to(torch::kBool);
    into.rewards = into.rewards.defined() ? torch::cat({into.rewards, new_rewards}) : new_rewards;
    into.scorable = into.scorable.defined() ? torch::cat({into.scorable, new_scorable}) : new_scorable;
  } catch (const nlohmann::json::exception& error) {
    throw std::runtime_error(fmt::format("decode_groups: malformed groups: {}", error.what()));
  }
}

}  // namespace grpo::rl
