#!/usr/bin/env python3
"""The Hugging Face `tokenizers` package's encoding of a corpus, for the parity test and the benchmark of
policy/bpe_tokenizer.h.

Encode: one output line per input line, {"ids": [...], "decoded": ..., "decoded_skip": ...}, with
add_special_tokens=False; decoded and decoded_skip are decode(ids) without and with skip_special_tokens.

    tokenizer_reference.py TOKENIZER_DIR CORPUS.jsonl OUTPUT.jsonl

Benchmark: encodes every text REPEATS times on one thread and prints one JSON line
{"seconds": [per repeat], "bytes": UTF-8 bytes per repeat, "mode": ...}. Mode "batch" (the default) passes all texts to
encode_batch with the Rayon pool held to one thread (RAYON_NUM_THREADS=1, set before the import); "lines" calls
encode once per text.

    tokenizer_reference.py --bench REPEATS [--mode batch|lines] TOKENIZER_DIR CORPUS.jsonl

CORPUS.jsonl has one JSON object a line with the text under "text".
"""
import os

# Both must be set before tokenizers starts its thread pool.
os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import time  # noqa: E402

from tokenizers import Tokenizer  # noqa: E402


def read_texts(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tokenizer_dir", type=pathlib.Path)
    parser.add_argument("corpus", type=pathlib.Path)
    parser.add_argument("output", type=pathlib.Path, nargs="?")
    parser.add_argument("--bench", type=int, metavar="REPEATS")
    parser.add_argument("--mode", choices=["batch", "lines"], default="batch")
    args = parser.parse_args()

    tokenizer = Tokenizer.from_file(str(args.tokenizer_dir / "tokenizer.json"))
    texts = read_texts(args.corpus)

    if args.bench:
        seconds = []
        for _ in range(args.bench):
            start = time.perf_counter()
            if args.mode == "batch":
                tokenizer.encode_batch(texts, add_special_tokens=False)
            else:
                for text in texts:
                    tokenizer.encode(text, add_special_tokens=False)
            seconds.append(time.perf_counter() - start)
        total = sum(len(text.encode("utf-8")) for text in texts)
        print(json.dumps({"seconds": seconds, "bytes": total, "mode": args.mode}))
        return

    if args.output is None:
        parser.error("OUTPUT is needed unless --bench is given")
    with open(args.output, "w", encoding="utf-8") as out:
        for text in texts:
            ids = tokenizer.encode(text, add_special_tokens=False).ids
            out.write(json.dumps({
                "ids": ids,
                "decoded": tokenizer.decode(ids, skip_special_tokens=False),
                "decoded_skip": tokenizer.decode(ids, skip_special_tokens=True),
            }, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
