#!/usr/bin/env bash
# Fills vendor/ for this module from the Go sources Debian installs under /usr/share/gocode/src
# (golang-google-grpc-dev, golang-google-genproto-dev, golang-google-protobuf-dev,
# golang-github-golang-protobuf-1-5-dev and the golang.org/x packages they pull in), for a machine
# without the Go module proxy, as the test machine is. `go build` and `go run .` then build from
# vendor/ and fetch nothing. go.mod's versions are the versions of Debian 12's packages.
#
# With the proxy, skip this: `go mod tidy && go run .` fetches the modules instead.
#
# It copies each package the program needs (found with `go list -deps` in GOPATH mode over
# Debian's tree) from its module's directory and writes vendor/modules.txt the way `go mod
# vendor` does, so the go command accepts the vendor directory as consistent with go.mod.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
gocode=/usr/share/gocode
[[ -d "$gocode/src/google.golang.org/grpc" ]] || {
    echo "vendor-debian.sh: no Go gRPC sources in $gocode (apt-get install golang-google-grpc-dev golang-google-genproto-dev golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev)" >&2
    exit 1
}
[[ -d gen ]] || { echo "vendor-debian.sh: no gen/: run buf generate first" >&2; exit 1; }

module="$(awk '$1 == "module" { print $2 }' go.mod)"
# Required modules as "path version" lines, from go.mod's require blocks.
requires="$(awk '/^require \($/ { inside = 1; next } inside && /^\)$/ { inside = 0 }
    inside && NF >= 2 { print $1, $2 }' go.mod)"

# The module of a package: the longest module path in go.mod that it falls under.
owner() {
    local package="$1" path version best=""
    while read -r path version; do
        if [[ ("$package" == "$path" || "$package" == "$path/"*) && ${#path} -gt ${#best} ]]; then
            best="$path"
        fi
    done <<<"$requires"
    printf '%s\n' "$best"
}

# The packages this module imports from outside itself and the standard library (an import
# path whose first element has a dot), then everything they import in turn.
imports="$(GO111MODULE=off GOPATH="$gocode" go list -e -f '{{join .Imports "\n"}}' . ./gen/... |
    grep -E '^[^/]+\.[^/]+/' | grep -v "^$module/" | sort -u)"
# shellcheck disable=SC2086
packages="$(GO111MODULE=off GOPATH="$gocode" go list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' $imports | sort -u)"

rm -rf vendor
mkdir vendor
declare -A owners
for package in $packages; do owners[$package]="$(owner "$package")"; done
{
    while read -r path version; do
        printf '# %s %s\n' "$path" "$version"
        go_version="$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gocode/src/$path/go.mod" 2>/dev/null | head -n1)"
        printf '## explicit%s\n' "${go_version:+; go $go_version}"
        for package in $packages; do
            [[ "${owners[$package]}" == "$path" ]] || continue
            printf '%s\n' "$package"
            mkdir -p "vendor/$package"
            find "$gocode/src/$package" -maxdepth 1 -type f ! -name '*_test.go' \
                ! -name go.mod ! -name go.sum -exec cp -t "vendor/$package/" {} +
        done
    done <<<"$requires"
} >vendor/modules.txt

missing="$(for package in $packages; do [[ -d "vendor/$package" ]] || printf '%s\n' "$package"; done)"
if [[ -n "$missing" ]]; then
    echo "vendor-debian.sh: packages of no module in go.mod:" >&2
    echo "$missing" >&2
    exit 1
fi
echo "vendor-debian.sh: vendored $(wc -w <<<"$packages") packages from $gocode" >&2
