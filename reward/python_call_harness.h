// The Python driver for function-call tests: it runs inside the sandbox beside solution.py, reads one test's
// arguments (a JSON array) from stdin before the solution is loaded, calls the named function (top-level, or a method
// of class Solution as LeetCode-style problems define it) and prints the return value as one JSON line. The expected
// value never enters the sandbox, so a solution cannot read it; what the solution prints is discarded.
#pragma once

#include <string_view>

namespace grpo::reward {

inline constexpr std::string_view kPythonCallHarnessName = "grpo_call_harness.py";

// Exit codes: 0 with the result on stdout; 1 the solution raised (traceback on stderr); 3 no such function;
// 4 the return value is not JSON-representable.
inline constexpr std::string_view kPythonCallHarness = R"PY(import io, json, sys

def _plain(value):
    # Tuples become lists and sets sorted lists, as datasets write expected values.
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(v) for v in value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value

def main():
    fn_name = sys.argv[1]
    arguments = json.loads(sys.stdin.read())
    sys.stdin = io.StringIO("")
    real_stdout = sys.stdout
    sys.stdout = io.StringIO()
    namespace = {"__name__": "solution"}
    # LeetCode-style solutions use List, Optional, ... without importing them.
    exec("from typing import *", namespace)
    with open("solution.py", encoding="utf-8", errors="replace") as source:
        exec(compile(source.read(), "solution.py", "exec"), namespace)
    function = namespace.get(fn_name)
    if function is None and "Solution" in namespace:
        function = getattr(namespace["Solution"](), fn_name, None)
    if not callable(function):
        print(f"no function named {fn_name} (top-level or in class Solution)", file=sys.stderr)
        sys.exit(3)
    result = function(*arguments)
    sys.stdout = real_stdout
    try:
        text = json.dumps(_plain(result))
    except (TypeError, ValueError) as error:
        print(f"the return value {result!r:.200} is not JSON-representable: {error}", file=sys.stderr)
        sys.exit(4)
    real_stdout.write("\n" + text + "\n")
    real_stdout.flush()

main()
)PY";

}  // namespace grpo::reward
