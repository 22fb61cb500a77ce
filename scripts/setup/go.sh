#!/usr/bin/env bash
# Installs the Go protoc plugins that scripts/gen/go.sh uses, at pinned
# versions, into the repository's .tools/bin (GOBIN). Idempotent: a plugin that
# already reports the pinned version is left alone. Needs the go command; the
# plugins come from the Go module proxy. Prints progress on stderr only.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"

PROTOC_GEN_GO_VERSION="v1.36.12"       # google.golang.org/protobuf/cmd/protoc-gen-go
PROTOC_GEN_GO_GRPC_VERSION="v1.5.1"    # google.golang.org/grpc/cmd/protoc-gen-go-grpc

bin="$root/.tools/bin"
mkdir -p "$bin"
# .tools/ holds only installed tools: keep it out of git whatever the root .gitignore says.
[[ -f "$root/.tools/.gitignore" ]] || printf '*\n' > "$root/.tools/.gitignore"

if ! command -v go >/dev/null 2>&1; then
  echo "scripts/setup/go.sh: the go command is needed (https://go.dev/doc/install)" >&2
  exit 1
fi

install_plugin() { # name module-path version version-as-printed
  local name="$1" pkg="$2" version="$3" printed="$4"
  if [[ -x "$bin/$name" ]] && [[ "$("$bin/$name" --version 2>/dev/null)" == "$name $printed" ]]; then
    return 0
  fi
  echo "installing $pkg@$version into .tools/bin" >&2
  GOBIN="$bin" go install "$pkg@$version" >&2
}

install_plugin protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go \
  "$PROTOC_GEN_GO_VERSION" "$PROTOC_GEN_GO_VERSION"
install_plugin protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc \
  "$PROTOC_GEN_GO_GRPC_VERSION" "${PROTOC_GEN_GO_GRPC_VERSION#v}"
