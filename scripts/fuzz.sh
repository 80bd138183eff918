#!/usr/bin/env bash
# Runs every Go fuzz target (func FuzzX(f *testing.F)) of every module of
# go.work for FUZZTIME each, one after another, and prints how many inputs
# each ran. A crasher is written under the package's testdata/fuzz/FuzzX/;
# keep it there once the code is fixed: `make test` runs it as a test.
# Usage: FUZZTIME=30s scripts/fuzz.sh [-m "DIR DIR..."] [-r REGEXP]
#   -m   only these module directories (relative to the repository root)
#   -r   only the targets whose name matches REGEXP
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$repo_root"

fuzztime="${FUZZTIME:-30s}"
modules=()
only='.'
while (($# > 0)); do
	case "$1" in
	-m) read -r -a modules <<<"$2"; shift 2 ;;
	-r) only="$2"; shift 2 ;;
	*) die "usage: scripts/fuzz.sh [-m \"DIR...\"] [-r REGEXP]" ;;
	esac
done
if ((${#modules[@]} == 0)); then
	while IFS= read -r dir; do
		modules+=("${dir#"$repo_root"/}")
	done < <(go list -m -f '{{.Dir}}')
fi

summary=()
failed=()
for mod in "${modules[@]}"; do
	# Packages with a fuzz target: a _test.go file declaring func Fuzz….
	mapfile -t pkgs < <(cd "$mod" && grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' . |
		xargs -r -n1 dirname | sort -u)
	for pkg in "${pkgs[@]}"; do
		mapfile -t targets < <(cd "$mod" && go test -list '^Fuzz' "$pkg" | grep '^Fuzz' | grep -E -- "$only" || true)
		for target in "${targets[@]}"; do
			say "$mod/${pkg#./}: $target for $fuzztime"
			log="$(mktemp)"
			if (cd "$mod" && go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg") 2>&1 | tee "$log"; then
				outcome=ok
			else
				outcome=FAILED
				failed+=("$mod/${pkg#./}.$target")
			fi
			execs="$(grep -oE 'execs: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)"
			rm -f "$log"
			summary+=("$(printf '%-58s %-28s %12s  %s' "$mod/${pkg#./}" "$target" "${execs:-?}" "$outcome")")
		done
	done
done

printf '\n%-58s %-28s %12s  %s\n' package target execs outcome
printf '%s\n' "${summary[@]}"
if ((${#failed[@]} > 0)); then
	die "${#failed[@]} fuzz target(s) failed: ${failed[*]} (crashers under testdata/fuzz/)"
fi
say "every fuzz target ran $fuzztime without a failure"
