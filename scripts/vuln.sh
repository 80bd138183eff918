#!/usr/bin/env bash
# Runs govulncheck (pinned, installed with `go install`) over every module of
# go.work against a local copy of the Go vulnerability database, and fails
# if any module reaches an advisory that is not accepted below.
#
# The database is built here, not fetched from its web site (this project's
# machines reach the Go module proxy and Debian's mirrors only): the module
# golang.org/x/vulndb holds the OSV reports (data/osv/GO-*.json), and its own
# cmd/indexdb writes the directory layout `govulncheck -db file://DIR`
# reads (index/db.json, index/modules.json, index/vulns.json, ID/GO-*.json).
# Both the database and govulncheck are cached per version under
# GREENROOM_CACHE_DIR (default ~/.cache/greenroom); the first run takes
# about two minutes more than later ones.
#
# Usage: scripts/vuln.sh [-m "DIR DIR..."]
#   -m   only these module directories (relative to the repository root)
# Environment: GOVULNCHECK_VERSION, VULNDB_VERSION (a version of the module
# golang.org/x/vulndb; "latest" takes the newest the proxy serves: newer
# advisories, and a run that may fail on code nobody changed).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$repo_root"

govulncheck_version="${GOVULNCHECK_VERSION:-v1.9.0}"
vulndb_version="${VULNDB_VERSION:-v0.0.0-20261105234957-e22db6528018}"
cache="${GREENROOM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/greenroom}"

# Advisories accepted after review: reported as reachable by govulncheck,
# yet not reachable in Greenroom. Each one needs its reason here and in
# README.md ("Security notes"); anything else that is reachable fails the
# run. None is accepted at present.
accepted=()

modules=()
if [[ "${1:-}" == -m ]]; then
	read -r -a modules <<<"$2"
	shift 2
fi
(($# == 0)) || die "usage: scripts/vuln.sh [-m \"DIR...\"]"
if ((${#modules[@]} == 0)); then
	while IFS= read -r dir; do
		modules+=("${dir#"$repo_root"/}")
	done < <(go list -m -f '{{.Dir}}')
fi

# govulncheck at its pinned version, built by the Go it runs with (it
# type-checks that Go's standard library).
gvc_dir="$cache/govulncheck/$govulncheck_version-$(go env GOVERSION)"
gvc="$gvc_dir/govulncheck"
if [[ ! -x "$gvc" ]]; then
	say "installing govulncheck $govulncheck_version into ${gvc_dir/#"$HOME"/\~}"
	mkdir -p "$gvc_dir"
	GOWORK=off GOFLAGS=-mod=mod GOBIN="$gvc_dir" go install "golang.org/x/vuln/cmd/govulncheck@$govulncheck_version"
fi

# The vulnerability database, built from the OSV reports of golang.org/x/vulndb.
if [[ "$vulndb_version" == latest ]]; then
	vulndb_version="$(cd "${TMPDIR:-/tmp}" && GOWORK=off GOFLAGS=-mod=mod go list -m -f '{{.Version}}' golang.org/x/vulndb@latest)"
fi
db="$cache/vulndb/$vulndb_version"
if [[ ! -f "$db/index/db.json" ]]; then
	say "building the vulnerability database from golang.org/x/vulndb@$vulndb_version (cmd/indexdb; once per version)"
	src="$(cd "${TMPDIR:-/tmp}" && GOWORK=off GOFLAGS=-mod=mod go mod download -json "golang.org/x/vulndb@$vulndb_version" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
	[[ -d "$src/data/osv" ]] || die "golang.org/x/vulndb@$vulndb_version has no data/osv"
	mkdir -p "$cache/vulndb"
	tmp="$(mktemp -d "$cache/vulndb/.build.XXXXXX")"
	trap 'rm -rf "$tmp"' EXIT
	(cd "${TMPDIR:-/tmp}" && GOWORK=off GOFLAGS=-mod=mod \
		go run "golang.org/x/vulndb/cmd/indexdb@$vulndb_version" -vulns "$src/data/osv" -out "$tmp/db")
	for f in index/db.json index/modules.json index/vulns.json; do
		[[ -s "$tmp/db/$f" ]] || die "cmd/indexdb wrote no $f"
	done
	reports="$(find "$src/data/osv" -name 'GO-*.json' | wc -l)"
	entries="$(find "$tmp/db/ID" -name 'GO-*.json' | wc -l)"
	# indexdb writes each entry as ID/GO-….json and, compressed, ID/GO-….json.gz.
	((entries == reports)) || die "database has $entries entries for $reports reports"
	rm -rf "$db"
	mv "$tmp/db" "$db"
	say "database ready: $entries advisories in ${db/#"$HOME"/\~}"
fi

say "$("$gvc" -version | tr '\n' ' ')"
say "database golang.org/x/vulndb@$vulndb_version"

is_accepted() {
	local a
	for a in "${accepted[@]}"; do [[ "$a" == "$1" ]] && return 0; done
	return 1
}

failed=()
out_file="$(mktemp)"
trap 'rm -f "$out_file"; [[ -z "${tmp:-}" ]] || rm -rf "$tmp"' EXIT
for mod in "${modules[@]}"; do
	[[ -f "$mod/go.mod" ]] || die "$mod is not a module directory"
	say "== $mod"
	rc=0
	# Each module on its own (GOWORK=off), with the versions its go.mod
	# selects; the standard library is that of the go command on PATH
	# (GOTOOLCHAIN, see go.work).
	(cd "$mod" && GOWORK=off "$gvc" -db "file://$db" ./...) >"$out_file" 2>&1 || rc=$?
	if ((rc != 0 && rc != 3)); then
		cat "$out_file"
		failed+=("$mod (govulncheck exit $rc)")
		continue
	fi
	# The advisories govulncheck found reachable (its "Symbol Results").
	mapfile -t found < <(awk '/^=== /{in_sym = ($0 ~ /Symbol Results/)} in_sym && /^Vulnerability #[0-9]+: /{print $3}' "$out_file")
	new=()
	for id in "${found[@]}"; do
		is_accepted "$id" || new+=("$id")
	done
	if ((${#new[@]} > 0)); then
		cat "$out_file"
		failed+=("$mod (${new[*]})")
	elif ((${#found[@]} > 0)); then
		say "$mod: only accepted advisories reachable (${found[*]}); see scripts/vuln.sh"
	else
		say "$mod: no reachable advisory"
	fi
done

if ((${#failed[@]} > 0)); then
	die "reachable advisories in: ${failed[*]}"
fi
if ((${#accepted[@]} > 0)); then
	say "no reachable advisory beyond the accepted ones (${accepted[*]}) in ${#modules[@]} modules"
else
	say "no reachable advisory in ${#modules[@]} modules"
fi
