#!/usr/bin/env python3
"""Trains the small BPE tokenizers that tests/policy/bpe_tokenizer_test.cpp ships, with the `tokenizers` package, and
writes the ids it gives for a set of texts (tests/policy/data/tiny_bpe_expected.jsonl) so that the test checks them
without Python. Each fixture exercises components the real Qwen and DeepSeek files do not:

  tiny_byte_level     NFKC + Replace normalizer, Digits then ByteLevel (prefix space, GPT-2 regex), ignore_merges,
                      added tokens with lstrip/rstrip/single_word/normalized, a list of chat templates
  tiny_sentencepiece  Llama-2 style: Prepend + Replace normalizer, no pre-tokenizer, byte_fallback with a missing
                      byte token so that fuse_unk shows, Replace/ByteFallback/Fuse/Strip decoder
  tiny_metaspace      Metaspace pre-tokenizer and decoder (prepend_scheme "first"), continuing_subword_prefix and
                      end_of_word_suffix, unk without fusing, no tokenizer_config.json

    .venv/bin/python scripts/make_tiny_bpe_fixture.py
"""
import json
import pathlib

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "policy" / "data"

# Texts whose ids are committed; the corpus parity test covers far more when Python is at hand.
EXPECTED_TEXTS = [
    "Hello, world!",
    "The year 2024 had 366 days.",
    "ﬁne ① ＡＢＣ",
    "line one\r\nline two",
    "<|end|>after<|end|>",
    "a <mask> b",
    "x<mask>y",
    "  <mask>  two spaces",
    "[WORD] alone and [WORD]glued and glued[WORD]",
    "say hello world and HELLO WORLD",
    "My Ｄｏｇ and my Dog",
    "emoji 👍🏽 and 中文 and العربية",
    "tabs\tand\t\tspaces   here",
    "it's they're WE'LL",
    "",
    " ",
    "<s>Hello</s> <unk>",
    "ünïcödé ẞ",
    "<|user|>   question",
    "a\u0301 e\u0301",
]


def training_texts():
    with open(DATA / "tokenizer_corpus.jsonl", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def write(name, tokenizer, config):
    folder = DATA / name
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"), pretty=True)
    # Reload through JSON to check that the file reads back as the library's own.
    Tokenizer.from_file(str(folder / "tokenizer.json"))
    config_file = folder / "tokenizer_config.json"
    if config is None:
        config_file.unlink(missing_ok=True)
    else:
        config_file.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    return folder


def edit_model(tokenizer, edit):
    data = json.loads(tokenizer.to_str())
    edit(data)
    return Tokenizer.from_str(json.dumps(data))


def byte_level_fixture(texts):
    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace("\r\n", "\n")])
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=700, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|end|>", "<|pad|>"], show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    tokenizer = edit_model(tokenizer, lambda data: data["model"].update(ignore_merges=True))
    tokenizer.add_tokens([
        AddedToken("<mask>", lstrip=True, rstrip=True, normalized=False),
        AddedToken("[WORD]", single_word=True, normalized=False),
        AddedToken("hello world", normalized=True),
        AddedToken("Ｄｏｇ", normalized=True),
    ])
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": "<|end|>",
        "pad_token": {"__type": "AddedToken", "content": "<|pad|>", "lstrip": False, "normalized": False,
                      "rstrip": False, "single_word": False, "special": True},
        "bos_token": None,
        "model_max_length": 1e30,
        "chat_template": [
            {"name": "default", "template": "{% for m in messages %}{{ m.content }}<|end|>{% endfor %}"},
            {"name": "tool_use", "template": "{{ tools }}"},
        ],
    }
    return write("tiny_byte_level", tokenizer, config)


def sentencepiece_fixture(texts):
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tokenizer.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                           decoders.Strip(content=" ", left=1, right=0)])
    trainer = trainers.BpeTrainer(vocab_size=500, limit_alphabet=90, special_tokens=["<unk>", "<s>", "</s>"],
                                  show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)

    def add_byte_tokens(data):
        # <0x00>..<0xFF> right after the special tokens, as Llama 2 has them, except <0xF0>: four-byte characters
        # (emoji) then have no fallback and become (fused) unk tokens.
        vocab = data["model"]["vocab"]
        shifted = {token: (i if i < 3 else i + 255) for token, i in vocab.items()}
        bytes_tokens = [f"<0x{b:02X}>" for b in range(256) if b != 0xF0]
        for offset, token in enumerate(bytes_tokens):
            shifted[token] = 3 + offset
        data["model"]["vocab"] = shifted

    tokenizer = edit_model(tokenizer, add_byte_tokens)
    config = {
        "tokenizer_class": "LlamaTokenizerFast",
        "bos_token": "<s>",
        "eos_token": {"content": "</s>", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False},
        "pad_token": None,
        "unk_token": "<unk>",
        "model_max_length": 4096,
        "chat_template": "{{ bos_token }}{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}",
    }
    return write("tiny_sentencepiece", tokenizer, config)


def metaspace_fixture(texts):
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=False, continuing_subword_prefix="##",
                                     end_of_word_suffix="</w>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    trainer = trainers.BpeTrainer(vocab_size=600, limit_alphabet=120, special_tokens=["<unk>", "<s>", "</s>"],
                                  continuing_subword_prefix="##", end_of_word_suffix="</w>", show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    tokenizer.add_special_tokens([AddedToken("<|user|>", rstrip=True, normalized=False)])
    return write("tiny_metaspace", tokenizer, None)


def main():
    texts = training_texts()
    folders = [byte_level_fixture(texts), sentencepiece_fixture(texts), metaspace_fixture(texts)]
    with open(DATA / "tiny_bpe_expected.jsonl", "w", encoding="utf-8") as out:
        for folder in folders:
            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            for text in EXPECTED_TEXTS:
                ids = tokenizer.encode(text, add_special_tokens=False).ids
                out.write(json.dumps({"fixture": folder.name, "text": text, "ids": ids,
                                      "decoded": tokenizer.decode(ids, skip_special_tokens=False),
                                      "decoded_skip": tokenizer.decode(ids, skip_special_tokens=True)},
                                     ensure_ascii=False) + "\n")
    for folder in folders:
        print(f"{folder.relative_to(ROOT)}: {(folder / 'tokenizer.json').stat().st_size} bytes")


if __name__ == "__main__":
    main()
