// The Llama/Qwen2/Qwen3 decoder-only transformer (RMSNorm, rotary position embeddings, grouped-query attention, SwiGLU
// MLP; Qwen2's q/k/v biases and Qwen3's per-head q/k norms as flags set by policy/architecture.h) as LibTorch modules whose parameter names are the Hugging Face ones ("model.layers.0.self_attn.q_proj.weight").
//
// Shape glossary: B sequences, T new tokens, S key positions (cache + new), C hidden size, H query heads,
// K key/value heads, D head size, V vocabulary.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "policy/model_config.h"

namespace grpo::policy {

// Preallocated keys and values of every layer: [B, K, capacity, D] each. Positions [0, length) are filled.
struct KvCache {
  std::vector<torch::Tensor> keys;
  std::vector<torch::Tensor> values;
  std::int64_t length = 0;

  std::int64_t capacity() const { return keys.empty() ? 0 : keys.front().size(2); }
  std::int64_t batch_size() const { return keys.empty() ? 0 : keys.front().size(0); }
  // Keeps only the given rows (int64 indices into the batch), e.g. to drop finished sequences or to repeat a
  // prefilled prompt G times.
  void select_rows(const torch::Tensor& rows);
};

// Keys and values of prompts shared by several sequences, so that the G completions of one prompt are scored without
// running the prompt G times (the "shared-prefix forward" of Prefix Grouper, arXiv 2506.05433). A forward of the
// prompts [P, L] with `rows` undefined records each layer's keys and values [P, K, L, D] (after RoPE, with autograd);
// a forward of continuations [B, T] with `rows` [B] int64 set lets row b attend to prompt rows[b] before its own
// tokens. Gradients reaching the shared keys and values from every continuation add up (index_select's backward), so
// the result equals running every sequence whole, up to float round-off.
//
// Continuations can also come padding-free (TRL's padding_free, verl's use_remove_padding): x is [1, N], the real
// tokens of the B rows end to end, and `packed_positions` [N] says where each sits in the padded [B, T] layout. Every
// projection, norm and MLP then runs on the N real tokens only; attention alone runs padded (the tokens are put in
// place for it and taken out after), with the mask of the padded layout.
struct SharedPrefix {
  std::vector<torch::Tensor> keys;    // per layer [P, K, L, D]
  std::vector<torch::Tensor> values;  // per layer [P, K, L, D]
  torch::Tensor rows;                 // [B] int64 into P; undefined while the prompts run
  torch::Tensor packed_positions;     // [N] int64 into B·T; undefined when continuations come padded [B, T]
  std::int64_t padded_width = 0;      // T of the padded layout, with packed_positions
};

// torch::nn::Linear / Embedding without their initialisation: parameters are allocated (uninitialised) in the
// model's dtype and filled by a checkpoint load or initialize_weights(), so that building a 0.5B-parameter model
// before loading it costs no random-number generation and no float32 detour. Parameter names are "weight" and
// "bias", as in PyTorch and Hugging Face checkpoints.
class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(std::int64_t in_features, std::int64_t out_features, bool bias, torch::Dtype dtype);
  torch::Tensor forward(const torch::Tensor& x);  // x [..., in] → [..., out]
  torch::Tensor weight;                           // [out, in]
  torch::Tensor bias;                             // [out], undefined without bias
};
TORCH_MODULE(Linear);

class EmbeddingImpl : public torch::nn::Module {
 public:
  EmbeddingImpl(std::int64_t num_embeddings, std::int64_t dim, torch::Dtype dtype);
  torch::Tensor forward(const torch::Tensor& ids);  // ids [B, T] → [B, T, C]
  torch::Tensor weight;                             // [V, C]
};
TORCH_MODULE(Embedding);

class RmsNormImpl : public torch::nn::Module {
 public:
  RmsNormImpl(std::int64_t size, double eps, torch::Dtype dtype);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::Tensor weight_;
  double eps_;
};
TORCH_MODULE(RmsNorm);

// cos/sin tables for rotary embeddings in Hugging Face's "rotate_half" layout (the two halves of each head, not
// interleaved pairs), with the config's frequency scaling (llama3) applied to inv_freq as transformers does.
class RotaryEmbeddingImpl : public torch::nn::Module {
 public:
  explicit RotaryEmbeddingImpl(const ModelConfig& config);
  // position_ids [B, T] → cos, sin [B, 1, T, D] in float32.
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& position_ids);

 private:
  torch::Tensor inv_freq_;  // [D/2]
};
TORCH_MODULE(RotaryEmbedding);

class LlamaAttentionImpl : public torch::nn::Module {
 public:
  LlamaAttentionImpl(const ModelConfig& config, torch::Dtype dtype);
  // x [B, T, C]; cos/sin [B, 1, T, D]; mask [B, 1, T, S] bool (true = may attend). With a cache, the new keys and
  // values are written at positions [cache.length, cache.length + T) of `layer` and attention covers [0, S). With a
  // shared prefix (no cache), the keys are the prefix's L and then the T new ones: S = L + T.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin, const torch::Tensor& mask,
                        KvCache* cache, std::int64_t layer, SharedPrefix* prefix = nullptr);

 private:
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  RmsNorm q_norm{nullptr}, k_norm{nullptr};  // Qwen3 only (config.qk_norm), over each head's D values
  std::int64_t num_heads_, num_kv_heads_, head_dim_;
};
TORCH_MODULE(LlamaAttention);

class LlamaMlpImpl : public torch::nn::Module {
 public:
  LlamaMlpImpl(const ModelConfig& config, torch::Dtype dtype);
  torch::Tensor forward(const torch::Tensor& x);  // down(silu(gate(x)) * up(x))

 private:
  Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(LlamaMlp);

class LlamaDecoderLayerImpl : public torch::nn::Module {
 public:
  LlamaDecoderLayerImpl(const ModelConfig& config, torch::Dtype dtype);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin, const torch::Tensor& mask,
                        KvCache* cache, std::int64_t layer, SharedPrefix* prefix = nullptr);

 private:
  LlamaAttention self_attn{nullptr};
  LlamaMlp mlp{nullptr};
  RmsNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(LlamaDecoderLayer);

// The decoder stack without the output projection ("model." in Hugging Face names).
class LlamaBackboneImpl : public torch::nn::Module {
 public:
  LlamaBackboneImpl(const ModelConfig& config, torch::Dtype dtype);
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& position_ids, const torch::Tensor& mask, KvCache* cache,
                        SharedPrefix* prefix = nullptr);
  Embedding embed_tokens{nullptr};
  // Gradient checkpointing: in a training forward (grad mode on, no cache; shared prefixes and padding-free
  // continuations included) each decoder layer keeps only its inputs, and backward runs the layer again to get what
  // it needs: activation memory of one layer instead of all, for one more forward pass.
  bool gradient_checkpointing = false;

 private:
  torch::nn::ModuleList layers{nullptr};
  RmsNorm norm{nullptr};
  RotaryEmbedding rotary_{nullptr};
};
TORCH_MODULE(LlamaBackbone);

class LlamaForCausalLMImpl : public torch::nn::Module {
 public:
  // Parameters are allocated in `dtype` and left uninitialised: load a checkpoint or call initialize_weights().
  explicit LlamaForCausalLMImpl(ModelConfig config, torch::Dtype dtype = torch::kFloat32);

  // input_ids [B, T] int64; position_ids [B, T]; mask [B, 1, T, S] bool → logits [B, T, V] (float32 on CPU).
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& position_ids, const torch::Tensor& mask,
                        KvCache* cache = nullptr);
  // The two halves of forward(), for callers that must not hold [B, T, V] logits at once (long sequences with a
  // 150k vocabulary): the final hidden states [B, T, C], and the logits [..., V] in float32 of any slice of them.
  torch::Tensor hidden_states(const torch::Tensor& input_ids, const torch::Tensor& position_ids, const torch::Tensor& mask,
                              KvCache* cache = nullptr, SharedPrefix* prefix = nullptr);
  torch::Tensor logits(const torch::Tensor& hidden);
  // The output projection's weight [V, C] (the embedding's when tied), for ops that fuse it with what follows.
  torch::Tensor output_weight() const;
  void set_gradient_checkpointing(bool on) { model->gradient_checkpointing = on; }
  bool gradient_checkpointing() const { return model->gradient_checkpointing; }

  // A cache for `batch_size` sequences of up to `capacity` positions, on the model's device and dtype.
  KvCache make_cache(std::int64_t batch_size, std::int64_t capacity) const;
  const ModelConfig& config() const { return config_; }
  torch::Device device() const;
  torch::Dtype dtype() const;

 private:
  ModelConfig config_;
  LlamaBackbone model{nullptr};
  Linear lm_head{nullptr};  // absent when tie_word_embeddings
};
TORCH_MODULE(LlamaForCausalLM);

// A parameter LlamaForCausalLM allocates for a config, with the config.json fields behind each dimension
// ("num_key_value_heads 2 × head_dim 64"), so that a checkpoint's tensors can be checked against config.json
// before a byte of the model is allocated.
struct ParameterSpec {
  std::string name;                     // "model.layers.0.self_attn.k_proj.weight"
  std::vector<std::int64_t> shape;      // [128, 896]
  std::vector<std::string> dimensions;  // one per dimension: {"num_key_value_heads 2 × head_dim 64", "hidden_size 896"}
};
// The parameters of LlamaForCausalLM(config), in named_parameters() order (a test holds the two together).
std::vector<ParameterSpec> parameter_specs(const ModelConfig& config);

// Masks and positions for a batch whose rows are left-padded: valid [B, S] bool marks real tokens among the S key
// positions; the last T of them are the queries. Returns the [B, 1, T, S] causal mask over valid keys (a padded
// query attends to itself only, so no row of the softmax is empty).
torch::Tensor causal_padding_mask(const torch::Tensor& valid, std::int64_t num_queries);
// Position ids [B, S] counting real tokens only (left padding does not shift positions).
torch::Tensor positions_from_valid(const torch::Tensor& valid);

// Deterministic initialisation for a new model (normal(0, 0.02) weights, ones for norms) from a seed.
void initialize_weights(LlamaForCausalLM& model, std::uint64_t seed);

}  // namespace grpo::policy
