#!/usr/bin/env python3
"""Writes policy/unicode_regex_table.inc: for each Unicode property a tokenizer.json regex may use, the code points
that Oniguruma (inside the Hugging Face `tokenizers` package, whose Unicode data is newer) puts in the property and
the system PCRE2 does not. policy/unicode_regex.cpp adds them to \\p{...} so that both engines split alike.

Oniguruma is asked through the `tokenizers` package (a Split pre-tokenizer with behavior "removed" over every code
point); PCRE2 through ctypes, compiled with UTF and UCP as policy/unicode_regex.cpp compiles.

    .venv/bin/python scripts/make_regex_unicode_table.py [--output policy/unicode_regex_table.inc]
"""
import argparse
import ctypes
import ctypes.util
import pathlib
import sys

import tokenizers
from tokenizers import Regex
from tokenizers import pre_tokenizers

# General categories and their groups, plus the scripts tokenizer patterns name (DeepSeek, Qwen, GPT-4o, Llama 3
# use the categories; some multilingual ones use scripts).
PROPERTIES = [
    "L", "Lu", "Ll", "Lt", "Lm", "Lo", "M", "Mn", "Mc", "Me", "N", "Nd", "Nl", "No",
    "P", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "S", "Sm", "Sc", "Sk", "So", "Z", "Zs", "Zl", "Zp",
    "Han", "Hiragana", "Katakana", "Hangul", "Latin", "Greek", "Cyrillic", "Arabic", "Hebrew", "Thai", "Devanagari",
]
PCRE2_UTF = 0x00080000
PCRE2_UCP = 0x00020000
CODE_POINTS = [c for c in range(0x110000) if not 0xD800 <= c < 0xE000]


class Pcre2:
    def __init__(self):
        self.lib = ctypes.CDLL(ctypes.util.find_library("pcre2-8") or "libpcre2-8.so.0")
        self.lib.pcre2_compile_8.restype = ctypes.c_void_p
        self.lib.pcre2_compile_8.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint32,
                                             ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_size_t),
                                             ctypes.c_void_p]
        self.lib.pcre2_match_data_create_8.restype = ctypes.c_void_p
        self.lib.pcre2_match_data_create_8.argtypes = [ctypes.c_uint32, ctypes.c_void_p]
        self.lib.pcre2_match_8.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t,
                                           ctypes.c_uint32, ctypes.c_void_p, ctypes.c_void_p]
        self.lib.pcre2_get_ovector_pointer_8.restype = ctypes.POINTER(ctypes.c_size_t)
        self.lib.pcre2_get_ovector_pointer_8.argtypes = [ctypes.c_void_p]
        self.lib.pcre2_config_8.argtypes = [ctypes.c_uint32, ctypes.c_void_p]
        self.match_data = self.lib.pcre2_match_data_create_8(1, None)

    def version(self):
        buffer = ctypes.create_string_buffer(64)
        self.lib.pcre2_config_8(11, buffer)  # PCRE2_CONFIG_VERSION
        unicode = ctypes.create_string_buffer(64)
        self.lib.pcre2_config_8(10, unicode)  # PCRE2_CONFIG_UNICODE_VERSION
        return buffer.value.decode(), unicode.value.decode()

    def members(self, pattern):
        """The code points matched by `pattern` (one character), scanning a string of every code point."""
        pattern_bytes = pattern.encode()
        error, offset = ctypes.c_int(), ctypes.c_size_t()
        code = self.lib.pcre2_compile_8(pattern_bytes, len(pattern_bytes), PCRE2_UTF | PCRE2_UCP,
                                        ctypes.byref(error), ctypes.byref(offset), None)
        if not code:
            raise SystemExit(f"PCRE2 does not compile {pattern!r}")
        text = "".join(map(chr, CODE_POINTS)).encode()
        byte_to_index = {}
        position = 0
        for index, c in enumerate(CODE_POINTS):
            byte_to_index[position] = index
            position += len(chr(c).encode())
        found = set()
        start = 0
        while self.lib.pcre2_match_8(code, text, len(text), start, 0x40000000, self.match_data, None) >= 0:
            ovector = self.lib.pcre2_get_ovector_pointer_8(self.match_data)
            found.add(CODE_POINTS[byte_to_index[ovector[0]]])
            start = ovector[1]
        return found


def oniguruma_members(pattern):
    text = "".join(map(chr, CODE_POINTS))
    kept = set()
    for _, (start, end) in pre_tokenizers.Split(Regex(pattern), "removed").pre_tokenize_str(text):
        kept.update(range(start, end))
    return {CODE_POINTS[i] for i in range(len(CODE_POINTS)) if i not in kept}


def ranges(code_points):
    result = []
    for c in sorted(code_points):
        if result and result[-1][1] == c - 1:
            result[-1][1] = c
        else:
            result.append([c, c])
    return result


def class_body(code_points):
    parts = []
    for low, high in ranges(code_points):
        parts.append(f"\\\\x{{{low:x}}}" if low == high else f"\\\\x{{{low:x}}}-\\\\x{{{high:x}}}")
    return "".join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(pathlib.Path(__file__).resolve().parent.parent /
                                                "policy" / "unicode_regex_table.inc"))
    args = parser.parse_args()
    pcre2 = Pcre2()
    pcre2_version, pcre2_unicode = pcre2.version()
    lines = []
    for name in PROPERTIES:
        onig = oniguruma_members(f"\\p{{{name}}}")
        ours = pcre2.members(f"\\p{{{name}}}")
        extra, wrong = onig - ours, ours - onig
        print(f"\\p{{{name}}}: {len(onig)} code points, {len(extra)} missing from PCRE2, {len(wrong)} wrongly in it",
              file=sys.stderr)
        if wrong:
            # PCRE2 puts code points in the property that a newer Unicode moved out: spell the whole class out.
            lines.append(f'    {{"{name}", "{class_body(onig)}", /*exact=*/true}},')
        elif extra:
            lines.append(f'    {{"{name}", "{class_body(extra)}", /*exact=*/false}},')
    # Oniguruma's \s is the White_Space property; PCRE2's differs (U+180E), so the table spells it out.
    space = oniguruma_members(r"\s")
    header = [
        f"// Generated by scripts/make_regex_unicode_table.py from tokenizers {tokenizers.__version__} (Oniguruma) and",
        f"// PCRE2 {pcre2_version} (Unicode {pcre2_unicode}); do not edit. For each property, the code points Oniguruma",
        "// has and PCRE2 lacks, as the body of a PCRE2 character class, or (exact) all of its code points where PCRE2",
        "// also has some that Oniguruma does not.",
        f'constexpr std::string_view kOnigurumaSpaceClassBody = "{class_body(space)}";',
        "constexpr PropertyExtra kPropertyExtras[] = {",
    ]
    pathlib.Path(args.output).write_text("\n".join(header + lines + ["};", ""]))
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
