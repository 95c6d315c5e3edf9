#!/usr/bin/env bash
# test/ops/test_completion.sh MIGCTL COMPLETION -- the bash completion,
# sourced in bash: commands, options, nothing for an option's value, the
# commands after help. (Job ids need a server: it_ops tests those.)
set -uo pipefail
migctl=$1
# shellcheck disable=SC1090
source "$2"
fail=0
complete_words() {  # complete_words WORD... : COMPREPLY for the last word
  COMP_WORDS=("$migctl" "$@")
  COMP_CWORD=$#
  COMPREPLY=()
  _migctl
  [ ${#COMPREPLY[@]} -eq 0 ] || printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' '
}
expect() {  # expect "WANTED" WORD...
  local want=$1; shift
  local got; got=$(complete_words "$@")
  if [ "$got" != "$want" ]; then echo "FAIL: migctl $*<TAB>: got '$got', want '$want'"; fail=1; fi
}
[ "$(complete -p migctl)" = "complete -F _migctl migctl" ] || { echo "FAIL: complete -p migctl"; fail=1; }
expect "start status " sta
expect "metrics " me
expect "--table " start --ta
expect "--max-lag --max-lag-bytes " start --table t --max-l
expect "" start --table ""
expect "--version " --ver
expect "--json " -d db status --js
expect "install " help ins
expect "--finished-within " metrics --fin
expect "--parallel " delete --table t --par
expect "--vacuum-every " set 3 --vac
[ $fail -eq 0 ] && echo "completion: ok"
exit $fail
