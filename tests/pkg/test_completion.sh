#!/bin/bash
# test_completion.sh - checks the bash completion against the binary: it
# must offer every command, subcommand and option that --help prints, the
# values of --log-level and --media, and files or folders where a command
# expects them.
# Usage: test_completion.sh CLIPMESH COMPLETION_FILE
set -uo pipefail

CLIPMESH=${1:?usage: test_completion.sh CLIPMESH COMPLETION_FILE}
COMPLETION=${2:?usage: test_completion.sh CLIPMESH COMPLETION_FILE}
CHECKS=0
FAILED=0

# shellcheck source=../../dist/bash-completion/clipmesh
source "$COMPLETION" || {
	echo "FAIL: cannot source $COMPLETION" >&2
	exit 1
}

WORK=$(mktemp -d /tmp/clipmesh-completion.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/folder"
touch "$WORK/file.mp4"

# Completes LINE as if typed after the binary and prints the candidates
# sorted, one per line. A LINE that ends in a space completes a new word.
complete_line() {
	local line="$CLIPMESH $1"
	read -r -a COMP_WORDS <<<"$line"
	[[ $line == *" " ]] && COMP_WORDS+=("")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMPREPLY=()
	_clipmesh
	printf '%s\n' "${COMPREPLY[@]}" | sed '/^$/d' | sort
}

# Compares two sorted word lists and records the result.
expect_words() {
	local what=$1 expected=$2 got=$3
	CHECKS=$((CHECKS + 1))
	if [[ $expected == "$got" ]]; then
		echo "ok $CHECKS - $what"
		return
	fi
	FAILED=$((FAILED + 1))
	echo "not ok $CHECKS - $what"
	diff <(echo "$expected") <(echo "$got") | sed 's/^/    /'
}

# Prints the names listed under HEADING in help text on stdin, sorted.
listed() {
	awk -v heading="$1" '
		$0 == heading { on = 1; next }
		on && /^  [a-z]/ { print $1; next }
		on { on = 0 }' | sort
}

# Prints every option (long and short form) of help text on stdin.
help_options() {
	sed -n '/^options:/,$p' | grep -oE '^  (-[a-z], )?--[a-z-]+' |
		tr ',' '\n' | tr -d ' ' | sed '/^$/d' | sort
}

commands=$("$CLIPMESH" --help | listed commands:)
[[ -n $commands ]] || {
	echo "FAIL: '$CLIPMESH --help' lists no commands" >&2
	exit 1
}
expect_words "commands" "$commands" "$(complete_line " ")"
expect_words "command prefix 'fo'" "$(printf 'follow\nfollowing')" \
	"$(complete_line "fo")"
expect_words "global options" \
	"$(printf -- '--help\n--home\n--log-level\n--version')" \
	"$(complete_line "--")"
expect_words "commands after --home DIR" "$commands" \
	"$(complete_line "--home /tmp ")"

for command in $commands; do
	help=$("$CLIPMESH" "$command" --help)
	subs=$(listed subcommands: <<<"$help")
	if [[ -z $subs ]]; then
		expect_words "options of $command" "$(help_options <<<"$help")" \
			"$(complete_line "$command -")"
		continue
	fi
	expect_words "subcommands of $command" "$subs" \
		"$(complete_line "$command ")"
	for sub in $subs; do
		expect_words "options of $command $sub" \
			"$("$CLIPMESH" "$command" "$sub" --help | help_options)" \
			"$(complete_line "$command $sub -")"
	done
done

expect_words "log levels" "$(printf 'debug\nerror\ninfo\nwarn')" \
	"$(complete_line "--log-level ")"
expect_words "media policies" "$(printf 'all\nfollowed\nnone')" \
	"$(complete_line "node --media ")"
expect_words "option after an option value" \
	"$("$CLIPMESH" feed --help | help_options)" \
	"$(complete_line "feed --limit 5 -")"
expect_words "no words for a free-text value" "" \
	"$(complete_line "publish --title ")"
expect_words "folders for --home" "$WORK/folder" \
	"$(complete_line "--home $WORK/fo")"
expect_words "files for -o" "$WORK/file.mp4" \
	"$(complete_line "media get 0123abcd -o $WORK/fi")"
expect_words "files for publish" "$WORK/file.mp4" \
	"$(complete_line "publish $WORK/fi")"
expect_words "folders for store backup" "$WORK/folder" \
	"$(complete_line "store backup $WORK/")"

echo "$((CHECKS - FAILED)) passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
