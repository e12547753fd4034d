#!/usr/bin/env python3
"""Writes tests/policy/data/tokenizer_corpus.jsonl: the texts on which policy/bpe_tokenizer.h must agree with the
Hugging Face `tokenizers` package, one {"text": ...} a line.

Hand-written samples (code in several languages, math and LaTeX, prose in many scripts, chat-formatted text, emoji
sequences, whitespace mixes, numbers, URLs) and generated ones (a fixed seed, so the file is reproducible): mixtures
of tricky characters, combining marks, characters newer than PCRE2's Unicode tables, long runs.

    python3 scripts/make_tokenizer_corpus.py [--output tests/policy/data/tokenizer_corpus.jsonl]
"""
import argparse
import json
import pathlib
import random

CODE = [
    '#include <vector>\n#include <cstdint>\n\ntemplate <typename T>\nT sum(const std::vector<T>& xs) {\n  T total{};\n'
    '  for (const T& x : xs) total += x;\n  return total;\n}\n',
    'int main(int argc, char** argv) {\n\tif (argc < 2) { std::fprintf(stderr, "usage: %s FILE\\n", argv[0]); return 1; }'
    '\n\tauto p = std::make_unique<Foo<int, 3>>();\n\treturn p->run() ? 0 : 2;\n}',
    'def fibonacci(n: int) -> list[int]:\n    """Return the first n Fibonacci numbers."""\n    a, b = 0, 1\n    out = []\n'
    '    for _ in range(n):\n        out.append(a)\n        a, b = b, a + b\n    return out\n\n\nprint(fibonacci(10))',
    'class Node:\n    def __init__(self, value, children=None):\n        self.value = value\n'
    '        self.children = children or []\n\n    def __repr__(self):\n        return f"Node({self.value!r}, {len(self.children)})"',
    'fn main() {\n    let words: Vec<&str> = "the quick brown fox".split_whitespace().collect();\n'
    '    let lens: HashMap<&str, usize> = words.iter().map(|w| (*w, w.len())).collect();\n    println!("{:?}", lens);\n}',
    'impl<T: Ord + Clone> BinaryHeap<T> {\n    pub fn push(&mut self, item: T) {\n        self.data.push(item);\n'
    '        let mut i = self.data.len() - 1;\n        while i > 0 && self.data[(i - 1) / 2] < self.data[i] {\n'
    '            self.data.swap(i, (i - 1) / 2);\n            i = (i - 1) / 2;\n        }\n    }\n}',
    'const fetchJson = async (url) => {\n  const res = await fetch(url, { headers: { "Accept": "application/json" } });\n'
    '  if (!res.ok) throw new Error(`HTTP ${res.status}`);\n  return res.json();\n};\n',
    'package main\n\nimport (\n\t"fmt"\n\t"strings"\n)\n\nfunc main() {\n\tfor i, w := range strings.Fields("a bb ccc") {'
    '\n\t\tfmt.Printf("%d:%s\\n", i, w)\n\t}\n}\n',
    'public static <K, V extends Comparable<V>> Map<K, V> sortByValue(Map<K, V> map) {\n'
    '    return map.entrySet().stream().sorted(Map.Entry.comparingByValue())\n'
    '        .collect(Collectors.toMap(Map.Entry::getKey, Map.Entry::getValue, (a, b) -> a, LinkedHashMap::new));\n}',
    "SELECT u.id, u.name, COUNT(o.id) AS orders\nFROM users u\nLEFT JOIN orders o ON o.user_id = u.id\n"
    "WHERE u.created_at >= '2024-01-01' AND u.email LIKE '%@example.com'\nGROUP BY u.id, u.name\nHAVING COUNT(o.id) > 3\n"
    "ORDER BY orders DESC\nLIMIT 10;",
    '#!/usr/bin/env bash\nset -euo pipefail\nfor f in "$@"; do\n  if [[ -f "$f" ]]; then\n'
    '    wc -l -- "$f" | awk \'{print $1}\'\n  fi\ndone 2>&1 | sort -n | tail -n 5\n',
    '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>Test &amp; page</title></head>\n<body>\n'
    '  <div class="card" id="main" data-x=\'1\'>\n    <p>Hello&nbsp;world &lt;3</p>\n  </div>\n</body>\n</html>',
    '.card:hover > p::before {\n  content: "\\201C";\n  margin: 0 auto !important;\n  color: #ff00aa;\n'
    '  transition: opacity .3s ease-in-out;\n}',
    '{\n  "name": "grpo",\n  "version": "0.1.0",\n  "tags": ["rl", "llm"],\n  "nested": {"a": [1, 2.5, -3e-7, true, null]}\n}',
    'server:\n  host: 0.0.0.0\n  port: 8080\n  routes:\n    - path: /api/v1/users\n      methods: [GET, POST]\n'
    '    - path: "/static/*"\n',
    'quicksort :: Ord a => [a] -> [a]\nquicksort [] = []\nquicksort (p:xs) = quicksort [x | x <- xs, x < p] ++ [p] '
    '++ quicksort [x | x <- xs, x >= p]',
    '(defun factorial (n)\n  (if (<= n 1)\n      1\n      (* n (factorial (- n 1)))))',
    '    mov rax, qword ptr [rbp-0x18]\n    add rax, 0x1\n    cmp rax, rdi\n    jne .L3\n    ret',
    r're.compile(r"^(?P<user>[\w.+-]+)@(?P<host>[\w-]+\.)+[A-Za-z]{2,}$")  # e-mail, roughly',
    'x=1;y=2;z=x+y*3-(4/5)%6**7//8<<9>>10&11|12^~13;a+=1;b-=2;c*=3;d/=4;e**=5;f//=6;g%=7;h<<=1;i>>=2;j&=3;k|=4;l^=5',
    '// TODO(alice): handle the edge case where n == 0\n/* multi-line\n * comment */\n#define MAX(a, b) ((a) > (b) ? (a) : (b))',
    'if __name__ == "__main__":\n    import sys\n    sys.exit(main(sys.argv[1:]))\n\r\n\r\n',
    'let mut v = vec![0u8; 1024];\nv[0..4].copy_from_slice(&[0xDE, 0xAD, 0xBE, 0xEF]);\nassert_eq!(u32::from_be_bytes(v[..4].try_into()?), 0xDEADBEEF);',
    '    \n        \n\t\t\n  \t  \n',
    '@media (max-width: 600px) { .a{display:none} }',
    'python3 -m pip install --upgrade "torch>=2.3,<3" transformers==4.44.2 && echo "ok" || echo "fail"',
]

MATH = [
    'What is 2+2? The answer is 4.',
    'Compute 1234 * 5678 = 7006652. Then 7006652 / 4 = 1751663.',
    'Let $f(x) = x^2 + 3x - 4$. Then $f\'(x) = 2x + 3$ and the roots are $x = 1$ and $x = -4$.',
    r'The final answer is $\boxed{\frac{3}{4}}$.',
    r'\begin{aligned} \int_0^1 x^2\,dx &= \left[\frac{x^3}{3}\right]_0^1 \\ &= \frac{1}{3} \end{aligned}',
    r'$$\sum_{k=1}^{n} k = \frac{n(n+1)}{2}, \qquad \prod_{p \le x} \left(1 - \frac{1}{p}\right)^{-1} \sim e^{\gamma} \log x$$',
    r'\[ \lim_{n\to\infty} \left(1+\frac{1}{n}\right)^n = e \approx 2.718281828459045 \]',
    r'By Cauchy–Schwarz, $\left|\langle u, v\rangle\right|^2 \leq \langle u,u\rangle \cdot \langle v,v\rangle$.',
    r'\mathbb{E}[X] = \sum_{x} x\,\Pr(X = x),\quad \operatorname{Var}(X) = \mathbb{E}[X^2] - (\mathbb{E}[X])^2',
    r'\begin{pmatrix} a & b \\ c & d \end{pmatrix}^{-1} = \frac{1}{ad-bc}\begin{pmatrix} d & -b \\ -c & a \end{pmatrix}',
    '∀ε>0 ∃δ>0: |x−a|<δ ⇒ |f(x)−f(a)|<ε. Also ∑ᵢ xᵢ² ≤ (∑ᵢ |xᵢ|)², ∫₀^∞ e^{−x²} dx = √π/2, x ∈ ℝ³, A ⊆ B ∪ C.',
    '3.14159 2.71828 1.41421 0.5772 6.022e23 1.6e-19 -273.15 +42 1,000,000 1.000.000,50 12:30:45 2024-02-29',
    '12345678901234567890 + 98765432109876543210 = 111111111011111111100',
    'Solve for x: 3x + 7 = 22 → 3x = 15 → x = 5. Check: 3·5 + 7 = 22 ✓',
    '<think>\nFirst, 12 * 7 = 84. Then 84 + 16 = 100.\n</think>\n<answer>100</answer>',
    '<think>\nLet me reconsider... 17 is prime since it is not divisible by 2, 3 (17/3≈5.67).\n</think>\n<answer>yes</answer>',
    '1/2 + 1/3 = 5/6; 0.1 + 0.2 = 0.30000000000000004; 2^10 = 1024; 10! = 3628800; √2 ≈ 1.4142',
    'Numbers: 0 00 000 0000 00000 1 12 123 1234 12345 123456 1234567 v1.2.3 3rd 21st 100%',
    'Full-width digits ０１２３４５６７８９ and Arabic-Indic ٠١٢٣٤٥٦٧٨٩ and Devanagari ०१२३४५६७८९ and Thai ๐๑๒๓',
    'Fractions ½ ⅓ ¼ ⅔ ¾, superscripts x² y³ z⁴, subscripts H₂O CO₂, Roman Ⅻ ⅷ, circled ① ② ⑳.',
]

PROSE = [
    "The quick brown fox jumps over the lazy dog. It's a pangram; they're used to test fonts, aren't they?",
    "I'M SURE WE'LL FIND IT. You'VE been there, haven't you? She'd said he'll come; they'RE late. O'Neil's cat.",
    'Typographic quotes: “double”, ‘single’, «guillemets», „German“, and an apostrophe in it’s and don’t.',
    'Der schnelle braune Fuchs springt über den faulen Hund. Größe, Maß, Straße — Äpfel und Öl für Übermorgen.',
    "Le cœur a ses raisons que la raison ne connaît point. Où est l'hôtel ? À bientôt, garçon !",
    '¿Dónde está la biblioteca? ¡Qué día tan bonito! El niño comió piña y jalapeños en la mañana.',
    'A ação do coração não é só emoção: é razão também. Não há pão sem mãos.',
    'Nel mezzo del cammin di nostra vita mi ritrovai per una selva oscura, ché la diritta via era smarrita.',
    'Het is vandaag mooi weer in Amsterdam; de fietsen staan overal langs de grachten.',
    'Zażółć gęślą jaźń. Pchnąć w tę łódź jeża lub ośm skrzyń fig.',
    'Příliš žluťoučký kůň úpěl ďábelské ódy. Čeština má háčky a čárky.',
    'Съешь же ещё этих мягких французских булок, да выпей чаю. Москва — столица России.',
    'Чуєш їх, доцю, га? Кумедна ж ти, прощайся без ґольфів!',
    'Ξεσκεπάζω την ψυχοφθόρα βδελυγμία. Η Αθήνα είναι η πρωτεύουσα της Ελλάδας.',
    'Pijamalı hasta yağız şoföre çabucak güvendi. İstanbul’da ılık bir gün; IŞIK ve ışık.',
    'Tiếng Việt có dấu: Trường học, người, nước, đường, hoà bình, quốc ngữ, Nguyễn Ánh.',
    'مرحبا بالعالم! اللغة العربية تكتب من اليمين إلى اليسار، وفيها حركات مثل: كَتَبَ الوَلَدُ الدَّرْسَ.',
    'سلام دنیا! زبان فارسی با الفبای عربی نوشته می‌شود و نیم‌فاصله دارد.',
    'שלום עולם! עברית נכתבת מימין לשמאל, ולפעמים עם ניקוד: בְּרֵאשִׁית בָּרָא.',
    'नमस्ते दुनिया! हिन्दी देवनागरी लिपि में लिखी जाती है। क्षत्रिय, श्रीमान, द्वार।',
    'হ্যালো বিশ্ব! বাংলা ভাষা বিশ্বের অন্যতম প্রধান ভাষা।',
    'வணக்கம் உலகம்! தமிழ் ஒரு தொன்மையான மொழி.',
    'สวัสดีชาวโลก ภาษาไทยเขียนติดกันโดยไม่มีช่องว่างระหว่างคำ แต่มีวรรณยุกต์ เช่น ก่ ก้ ก๊ ก๋',
    '你好，世界！今天天气很好，我们去公园散步吧。机器学习和强化学习是人工智能的重要分支。',
    '繁體中文：臺灣的夜市很熱鬧，滷肉飯和珍珠奶茶都很好吃。',
    'こんにちは世界！日本語はひらがな、カタカナ、漢字を使います。東京タワーに行きました。',
    'ｶﾀｶﾅの半角とカタカナの全角、そして㍿や㌔のような合字もあります。',
    '안녕하세요 세계! 한국어는 한글로 씁니다. 강화학습은 재미있어요.',
    'გამარჯობა მსოფლიო! ქართული ანბანი უნიკალურია.',
    'Բարեւ աշխարհ! Հայերենն ունի իր այբուբենը։',
    'ሰላም ዓለም! አማርኛ በግዕዝ ፊደል ይጻፋል።',
    'Habari dunia! Kiswahili kinazungumzwa Afrika Mashariki.',
    'Halo dunia! Bahasa Indonesia ditulis dengan huruf Latin.',
    'Mixed: English, 中文, русский, العربية, हिन्दी, 日本語, 한국어 — all in one line!',
    'Ελληνικά και English mixed: αβγ abc ΑΒΓ ABC, café naïve résumé coöperate.',
]

CHAT = [
    '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nSolve x^2 = 9.<|im_end|>\n'
    '<|im_start|>assistant\n',
    '<|im_start|>user\nWhat is 7*8?<|im_end|>\n<|im_start|>assistant\n<think>\n7*8 = 56\n</think>\n\n56<|im_end|>\n',
    '<|endoftext|><|endoftext|>text after two end markers<|im_end|>',
    'A partial marker <|im_sta and <|im_end without closing, and <think without >, and </answer> alone.',
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
    '<｜begin▁of▁sentence｜>You are a helpful assistant.<｜User｜>Hi!<｜Assistant｜>Hello!<｜end▁of▁sentence｜>',
    '<|fim_prefix|>def add(a, b):\n    <|fim_suffix|>\n    return c<|fim_middle|>',
    'Special tokens glued: x<|im_start|>y<|im_end|>z and spaced: x <|im_start|> y <|im_end|> z',
]

WEB = [
    'https://example.com/path/to/page?query=1&lang=en#section-2',
    'Visit http://www.test.org:8080/a/b/c.html?x=%20y&z=%E4%BD%A0 or ftp://files.example.net/pub/README.txt',
    'Email me at first.last+tag@sub.example.co.uk or admin@例え.jp; IPv4 192.168.0.1, IPv6 2001:db8::ff00:42:8329',
    'C:\\Users\\Alice\\Documents\\report_2024-03-15.docx and /usr/local/lib/python3.11/site-packages/',
    '| col A | col B |\n|------:|:------|\n| 1.5 | **bold** |\n| 2 | _it_ |\n\n> quote\n- item\n  - nested\n1. first',
    '[link](https://github.com/huggingface/tokenizers/blob/main/README.md) ![img](./a.png "title")',
    '@user #hashtag $TICKER 50% off!!! ??? ... --- *** ~~~ ```code``` <br/> &amp; &#x1F600;',
    'UUID 123e4567-e89b-12d3-a456-426614174000, SHA 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
    'base64: SGVsbG8sIFdvcmxkIQ== and aGVsbG8gd29ybGQgdGhpcyBpcyBhIGxvbmdlciBzdHJpbmc/+',
]

EMOJI = [
    'Thumbs up 👍 👍🏻 👍🏼 👍🏽 👍🏾 👍🏿 and hearts ❤️ 🧡 💛 💚 💙 💜 🖤 🤍 🤎',
    'Family 👨‍👩‍👧‍👦, couple 👩‍❤️‍💋‍👨, technologist 🧑🏿‍💻, rainbow flag 🏳️‍🌈, pirate 🏴‍☠️',
    'Flags 🇯🇵 🇫🇷 🇺🇸 🇧🇷 🇮🇳 🏴󠁧󠁢󠁳󠁣󠁴󠁿 and keycaps 1️⃣ 2️⃣ #️⃣ *️⃣',
    'Newer emoji: 🫠 🫨 🪿 🫎 🩷 🫸🏽 🐦‍🔥 🍋‍🟩 🫩 🫆 🪾 and variation ☺︎ ☺️ ✌🏽',
    'Emoji glued:hello😀world🎉🎉🎉!!!😂😂 and 🤖🧠✨→🚀',
]

WHITESPACE = [
    'tabs\tbetween\t\twords\t\t\tand trailing tab\t',
    'CRLF line one\r\nline two\r\n\r\nline four\rold mac line\n\n\nthree blank lines',
    '   leading spaces and trailing spaces   ',
    'two  spaces   three    four     five      six       seven',
    'NBSP\u00a0here, narrow\u202fnbsp, ideographic\u3000space, em\u2003space, thin\u2009space',
    'line\u2028separator and paragraph\u2029separator and next\u0085line and vtab\x0bff\x0c',
    'zero\u200bwidth\u200cnon\u200djoiner\ufeffbom and mongolian\u180evowel sep',
    '\n',
    ' ',
    '\t',
    '\r\n',
    '  \n  \n',
    'a\n\nb\n\n\nc\n\n\n\nd',
    'end with newline\n',
    ' \u00a0 \u3000 mixed \t\u2003 blanks \r\n',
]

COMBINING = [
    'Decomposed: e\u0301 a\u0300 o\u0308 n\u0303 c\u0327 (NFD) versus composed: é à ö ñ ç (NFC)',
    'Zalgo: Z\u0351\u036b\u0343a\u0352\u0359l\u0350\u0317g\u0306\u0345o\u0313\u0324 text',
    'Hangul jamo: \u1100\u1161\u11a8 \u1112\u1161\u11ab\u1100\u1173\u11af versus 각 한글',
    'Vietnamese stacked: Ê\u0301 ê\u0300 ư\u0309 ơ\u0303 ạ\u0302',
    'Ligatures ﬁ ﬂ ﬀ ﬃ, compatibility ㎏ ㎞ ™ ℃ Ⅳ ｆｕｌｌｗｉｄｔｈ',
    'Kelvin \u212a and Angstrom \u212b and Ohm \u2126; long s \u017f and \u017ft',
    "Case contractions with odd letters: \u017f's 'ſ 'K 'ﬀ 'İ 'ı",
    'Devanagari virama: क्ष त्र ज्ञ श्र and nukta क़ ख़ ग़',
]


def generated(rng):
    """Mixtures of characters that stress the pre-tokenizer regexes and the BPE merges."""
    pool = (list("abcXYZ019 _-.,;:'\"!?()[]{}<>/\\|@#$%^&*+=~`") + ["\t", "\n", "\r\n", "  ", "\u00a0", "\u3000"] +
            list("éüßçøåñ") + ["e\u0301", "a\u0308"] + list("αβγДЖЯ") + list("中文字日本語한국어") + list("ひらカタ") +
            list("العربية") + list("हिन्दी") + list("ไทย") + ["👍", "👍🏽", "👨‍👩‍👧", "🇫🇷", "1️⃣"] +
            list("①½²₂ℝ∑√") + ["'s", "'T", "'re", "'VE", "'ll", "'D", "'m"] +
            # Newer than PCRE2 10.42's Unicode 14 tables: CJK extension H, Kawi, Nag Mundari, Garay, Todhri.
            ["\U00031350", "\U000323af", "\U00011f04", "\U00011f50", "\U0001e4d0", "\U0001e4f0", "\U00010d4a",
             "\U00010d40", "\U000105c0", "\u2ffc", "\U0001fae8", "\U0001fabf"])
    lines = []
    for _ in range(500):
        length = rng.choice([1, 2, 3, 5, 8, 13, 21, 34, 55, 89])
        lines.append("".join(rng.choice(pool) for _ in range(length)))
    # Random code points across the assigned planes (no surrogates, no private use, no noncharacters).
    for _ in range(150):
        chars = []
        for _ in range(rng.randint(1, 30)):
            while True:
                c = rng.choice([rng.randint(0x20, 0x7e), rng.randint(0xa0, 0x2fff), rng.randint(0x3000, 0x9fff),
                                rng.randint(0xac00, 0xd7a3), rng.randint(0xf900, 0xfffd), rng.randint(0x10000, 0x1fbff),
                                rng.randint(0x20000, 0x323af)])
                if not (0xd800 <= c <= 0xdfff or 0xe000 <= c <= 0xf8ff or (c & 0xfffe) == 0xfffe):
                    break
            chars.append(chr(c))
        lines.append("".join(chars))
    # Long runs: one long word, digits, spaces, repeated punctuation and emoji, and a long mixed line.
    lines.append("a" * 3000)
    lines.append("1234567890" * 80)
    lines.append(" " * 2000 + "x")
    lines.append("!?" * 700)
    lines.append("😀" * 300)
    lines.append("ab " * 1500)
    lines.append("".join(rng.choice(pool) for _ in range(5000)))
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = pathlib.Path(__file__).resolve().parent.parent / "tests" / "policy" / "data" / "tokenizer_corpus.jsonl"
    parser.add_argument("--output", default=str(default))
    args = parser.parse_args()
    rng = random.Random(20240601)
    texts = CODE + MATH + PROSE + CHAT + WEB + EMOJI + WHITESPACE + COMBINING
    # Each hand-written sample also joined with its neighbour, so that boundaries between kinds of text occur.
    texts += [a + b for a, b in zip(texts, texts[1:])]
    texts += generated(rng)
    with open(args.output, "w", encoding="utf-8") as out:
        for text in texts:
            out.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
    size = pathlib.Path(args.output).stat().st_size
    print(f"wrote {len(texts)} texts, {size} bytes, to {args.output}")


if __name__ == "__main__":
    main()
