#!/usr/bin/env python3
"""Reference side of the model-parity test (tests/policy/hf_parity_test.cpp), run with transformers from PyPI.

  hf_parity.py make OUT       writes small random Llama, Qwen2 and Qwen3 checkpoints (Hugging Face layout, with a
                              byte-level BPE tokenizer) under OUT/<name>/, and OUT/<name>/reference.json: per-token
                              float32 log-probs of a left-padded batch of prompts and 64 greedy tokens per prompt;
                              and OUT/defaults.json: the head_dim and num_key_value_heads each config class resolves
                              when config.json leaves them out or sets them null.
  hf_parity.py score IDS DIR...  loads each DIR with AutoModelForCausalLM (e.g. checkpoints grpo saved) and prints
                              {DIR: log-probs} of the prompts in the JSON file IDS: how we check that our saved
                              checkpoints load in transformers and give the same logits.

Weights are drawn with a larger spread than transformers' default so that next-token distributions are peaked: a
greedy comparison on a near-uniform model would hinge on float rounding, not on the implementation.
"""
import json
import os
import sys

import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

GREEDY_TOKENS = 64
VOCAB_SIZE = 320  # larger than the tokenizer, as in Qwen checkpoints whose embedding is padded

CORPUS = [
    "The answer is 42. Let me think step by step: 6 * 7 = 42.",
    "def add(a, b):\n    return a + b\n",
    "<think>First, 12 + 30 = 42.</think> <answer>42</answer>",
    "Solve x^2 = 9, so x = 3 or x = -3. \\boxed{3}",
] * 20

# (name, config class, fields): one entry per architecture in policy/architectures/.
MODELS = [
    ("llama", transformers.LlamaConfig, dict(
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 32},
        rope_theta=500000.0, tie_word_embeddings=False, num_key_value_heads=2)),
    ("qwen2", transformers.Qwen2Config, dict(rope_theta=1000000.0, tie_word_embeddings=True, num_key_value_heads=1)),
    ("qwen3", transformers.Qwen3Config, dict(rope_theta=1000000.0, tie_word_embeddings=False, num_key_value_heads=2,
                                              head_dim=24)),
]

PROMPTS = [
    [5, 17, 42, 99, 3, 250, 7, 8, 19, 300],
    [11, 12, 13],
    [200, 150, 100, 50, 25, 12, 6],
    [1, 2],
]


def make_tokenizer():
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>", "<think>", "</think>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(CORPUS, trainer)
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>",
                                                pad_token="<|endoftext|>")


def padded_batch(prompts):
    width = max(len(p) for p in prompts)
    ids = torch.zeros(len(prompts), width, dtype=torch.long)
    mask = torch.zeros(len(prompts), width, dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt):] = torch.tensor(prompt)
        mask[row, width - len(prompt):] = 1
    # As generate() does: positions count real tokens only, so left padding does not shift them.
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids, mask, positions


@torch.no_grad()
def logprobs(model, prompts):
    ids, mask, positions = padded_batch(prompts)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits.float()
    out = []
    for row, prompt in enumerate(prompts):
        start = ids.shape[1] - len(prompt)
        lp = torch.log_softmax(logits[row, start:-1], dim=-1)
        out.append(lp.gather(-1, ids[row, start + 1:].unsqueeze(-1)).squeeze(-1).tolist())
    return out


@torch.no_grad()
def greedy(model, prompt):
    ids = list(prompt)
    for _ in range(GREEDY_TOKENS):  # full forward each step: no cache, no generate() options in the way
        logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
        ids.append(int(logits.argmax()))
    return ids[len(prompt):]


def make(out):
    torch.manual_seed(0)
    tokenizer = make_tokenizer()
    for name, config_class, fields in MODELS:
        config = config_class(vocab_size=VOCAB_SIZE, hidden_size=96, intermediate_size=160, num_hidden_layers=2,
                              num_attention_heads=4, max_position_embeddings=256, rms_norm_eps=1e-6,
                              initializer_range=0.2, bos_token_id=None, eos_token_id=0, pad_token_id=0,
                              attn_implementation="eager", **fields)
        model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
        with torch.no_grad():  # norms and biases away from their 1/0 initial values, so that bugs in them show
            for param_name, param in model.named_parameters():
                if param_name.endswith("norm.weight"):
                    param.copy_(1 + 0.3 * torch.randn_like(param))
                elif param_name.endswith(".bias"):
                    param.copy_(0.3 * torch.randn_like(param))
        folder = os.path.join(out, name)
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        reference = {"prompts": PROMPTS, "logprobs": logprobs(model, PROMPTS),
                     "greedy": [greedy(model, p) for p in PROMPTS]}
        with open(os.path.join(folder, "reference.json"), "w") as f:
            json.dump(reference, f)
    with open(os.path.join(out, "defaults.json"), "w") as f:
        json.dump(head_size_defaults(), f)


def head_size_defaults():
    """{name: {case: {"head_dim", "num_key_value_heads"} or None}}, read off the attention transformers builds from a
    config.json without head_dim and num_key_value_heads ("missing"), or with one of them null; None where building
    fails. Qwen2Config has no head_dim field: its attention decides, so the model is built, not just the config.
    64 heads of hidden 128: the computed head_dim (2) and KV heads (64) differ from Qwen's defaults (128, 32)."""
    base = dict(vocab_size=8, hidden_size=128, intermediate_size=8, num_hidden_layers=1, num_attention_heads=64,
                max_position_embeddings=16)
    out = {}
    for name, config_class, _ in MODELS:
        out[name] = {}
        for case, fields in [("missing", {}), ("null_kv", {"num_key_value_heads": None}), ("null_head_dim", {"head_dim": None})]:
            try:
                config = config_class.from_dict(dict(base, **fields))  # what from_pretrained does with config.json
                attention = transformers.AutoModelForCausalLM.from_config(config).model.layers[0].self_attn
                out[name][case] = {"head_dim": attention.head_dim,
                                   "num_key_value_heads": attention.k_proj.out_features // attention.head_dim}
            except Exception:  # strict dataclass validation, or the model failing on a None head_dim
                out[name][case] = None
    return out


def score(ids_file, folders):
    with open(ids_file) as f:
        prompts = json.load(f)["prompts"]
    out = {}
    for folder in folders:
        model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32,
                                                                  attn_implementation="eager").eval()
        out[folder] = logprobs(model, prompts)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    if len(sys.argv) == 3 and sys.argv[1] == "make":
        make(sys.argv[2])
    elif len(sys.argv) >= 4 and sys.argv[1] == "score":
        score(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(__doc__)
