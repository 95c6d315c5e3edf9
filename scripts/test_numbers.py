#!/usr/bin/env python3
"""scripts/test_numbers.py -- checks, with no server, that the tests are
numbered and named without collisions:

  - every test/sql/NN_name.sql has a number of its own and an expected
    output test/expected/NN_name.out (or NN_name_N.out, an alternative);
    every expected output has its test;
  - every isolation spec test/specs/NAME.spec has test/expected/NAME.out;
  - every gtest suite of the integration tests (TEST(Suite, ...)) is in one
    test file only, so that a GTEST_FILTER='Suite.*' names one binary.

Exit 0 when all holds, else 1 with one line per collision on stderr.
"""
import collections
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main():
    errors = []
    test = ROOT / "test"
    sql = sorted((test / "sql").glob("*.sql"))
    by_number = collections.defaultdict(list)
    for f in sql:
        m = re.match(r"(\d+)_\w+$", f.stem)
        if not m:
            errors.append(f"test/sql/{f.name} is not named NN_name.sql")
            continue
        by_number[int(m.group(1))].append(f.name)
    for number, names in sorted(by_number.items()):
        if len(names) > 1:
            errors.append(f"test/sql: number {number:02d} is taken by {', '.join(names)}")
    tests = {f.stem for f in sql} | {f.stem for f in (test / "specs").glob("*.spec")}
    expected = {f.stem for f in (test / "expected").glob("*.out")}
    for name in sorted(tests):
        if name not in expected:
            errors.append(f"test {name} has no test/expected/{name}.out")
    for out in sorted(expected):
        if out not in tests and re.sub(r"_\d+$", "", out) not in tests:
            errors.append(f"test/expected/{out}.out has no test")
    suites = collections.defaultdict(set)
    for f in sorted((test / "integration").glob("test_*.cpp")):
        for suite in re.findall(r"^TEST(?:_F|_P)?\((\w+),", f.read_text(), re.M):
            suites[suite].add(f.name)
    for suite, files in sorted(suites.items()):
        if len(files) > 1:
            errors.append(f"gtest suite {suite} is in {', '.join(sorted(files))}")
    for e in errors:
        print("test_numbers.py: " + e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
