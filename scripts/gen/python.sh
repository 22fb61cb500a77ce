# Python: message, service and type-stub modules for client/python/src/accelplan/v1,
# from grpcio-tools' bundled protoc and mypy-protobuf's plugins.
GENERATED_PATHS+=("client/python/src/accelplan/v1")

gen_python() {
  local out="$1/client/python/src"
  mkdir -p "$out/accelplan/v1"
  "$PYTHON" -m grpc_tools.protoc -I protos \
    --python_out="$out" --grpc_python_out="$out" \
    --mypy_out="$out" --mypy_grpc_out="$out" \
    protos/accelplan/v1/*.proto 2> >(grep -v '^Writing mypy to' >&2)
  printf '"""Generated protobuf and gRPC modules for accelplan.v1 (scripts/generate)."""\n' \
    > "$out/accelplan/v1/__init__.py"
  touch "$out/accelplan/v1/py.typed"
}
