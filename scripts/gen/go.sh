# Go: message and service code for client/go/accelplan/v1 (package accelplanv1),
# committed so that `go get` users need no protoc. Plugins come from
# scripts/setup/go.sh (pinned, installed into .tools/bin); protoc from grpcio-tools.
GENERATED_PATHS+=("client/go/accelplan/v1")

gen_go() {
  local out="$1/client/go"
  local module="github.com/accelplan/accelplan/client/go"
  bash scripts/setup/go.sh
  mkdir -p "$out"
  "$PYTHON" -m grpc_tools.protoc -I protos \
    --plugin=protoc-gen-go="$root/.tools/bin/protoc-gen-go" \
    --plugin=protoc-gen-go-grpc="$root/.tools/bin/protoc-gen-go-grpc" \
    --go_out="$out" --go_opt=module="$module" \
    --go-grpc_out="$out" --go-grpc_opt=module="$module" \
    protos/accelplan/v1/*.proto
}
