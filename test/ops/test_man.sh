#!/usr/bin/env bash
# test/ops/test_man.sh MIGCTL MANPAGE -- the man page renders without a
# warning; every command of migctl's command table has its section there,
# with every one of its options; migctl help COMMAND prints exactly what
# migctl COMMAND --help prints.
set -euo pipefail
migctl=$1 page=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
MANWIDTH=80 man --warnings -l "$page" > "$tmp/man.txt" 2> "$tmp/warnings.txt"
if [ -s "$tmp/warnings.txt" ]; then
  echo "FAIL: man --warnings -l $page:"; cat "$tmp/warnings.txt"; fail=1
fi
grep -q '^NAME' "$tmp/man.txt" || { echo "FAIL: no NAME section"; fail=1; }
# the section headings of COMMANDS (3 spaces of indent)
sed -n '/^COMMANDS/,/^CONNECTION OPTIONS/p' "$tmp/man.txt" | grep -E '^   [a-z]' > "$tmp/headings.txt"
commands=$("$migctl" __complete)
[ "$(echo "$commands" | wc -l)" -ge 10 ] || { echo "FAIL: too few commands: $commands"; fail=1; }
for c in $commands; do
  if ! grep -qw -- "$c" "$tmp/headings.txt"; then
    echo "FAIL: command $c has no section in the man page"; fail=1
  fi
  for o in $("$migctl" __complete "$c" | awk '$1 ~ /^--/ { print $1 }'); do
    grep -qF -- "$o" "$tmp/man.txt" || { echo "FAIL: option $o of $c is not in the man page"; fail=1; }
  done
  "$migctl" help "$c" > "$tmp/help.txt"
  "$migctl" "$c" --help > "$tmp/dashhelp.txt"
  if ! cmp -s "$tmp/help.txt" "$tmp/dashhelp.txt" || [ ! -s "$tmp/help.txt" ]; then
    echo "FAIL: migctl help $c differs from migctl $c --help:"; diff "$tmp/help.txt" "$tmp/dashhelp.txt" || true; fail=1
  fi
done
[ $fail -eq 0 ] && echo "man page: $(echo $commands | wc -w) commands, no warnings"
exit $fail
