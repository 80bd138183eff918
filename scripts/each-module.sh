#!/usr/bin/env bash
# Runs a command in every Go module of go.work (one `go test ./...` at the
# root cannot span modules), continues past failures, and fails at the end
# if the command failed in any module.
# Usage: scripts/each-module.sh [-m "DIR DIR..."] CMD ARGS...
#   -m   only these module directories (relative to the repository root)
# Example: scripts/each-module.sh go test -race -count=1 ./...
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$repo_root"

modules=()
if [[ "${1:-}" == -m ]]; then
	read -r -a modules <<<"$2"
	shift 2
fi
(($# > 0)) || die "usage: scripts/each-module.sh [-m \"DIR...\"] CMD ARGS..."
if ((${#modules[@]} == 0)); then
	while IFS= read -r dir; do
		modules+=("${dir#"$repo_root"/}")
	done < <(go list -m -f '{{.Dir}}')
fi

failed=()
for mod in "${modules[@]}"; do
	[[ -f "$mod/go.mod" ]] || die "$mod is not a module directory"
	if [[ -z "$(cd "$mod" && go list ./... 2>/dev/null)" ]] && [[ -z "$(find "$mod" -name '*.go' -print -quit)" ]]; then
		say "$mod: no Go packages yet; skipped"
		continue
	fi
	say "$mod: $*"
	if ! (cd "$mod" && "$@"); then
		failed+=("$mod")
	fi
done
if ((${#failed[@]} > 0)); then
	die "failed in ${#failed[@]} module(s): ${failed[*]}"
fi
say "passed in every module"
