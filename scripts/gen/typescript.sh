# TypeScript: message, proto3-JSON and @grpc/grpc-js service code for
# client/typescript/src/gen, from grpcio-tools' bundled protoc and ts-proto
# (pinned in client/typescript/package-lock.json, installed by
# scripts/setup/typescript.sh). Also generates google.rpc.Status and
# google.rpc.BadRequest from the trimmed copies in client/typescript/proto, for
# decoding grpc-status-details-bin.
GENERATED_PATHS+=("client/typescript/src/gen")

gen_typescript() {
  local out="$1/client/typescript/src/gen"
  bash scripts/setup/typescript.sh
  mkdir -p "$out"
  "$PYTHON" -m grpc_tools.protoc -I protos -I client/typescript/proto \
    --plugin=protoc-gen-ts_proto=client/typescript/node_modules/.bin/protoc-gen-ts_proto \
    --ts_proto_out="$out" \
    --ts_proto_opt=outputServices=grpc-js,esModuleInterop=true,forceLong=string,outputJsonMethods=true,env=node,exportCommonSymbols=false \
    protos/accelplan/v1/*.proto \
    client/typescript/proto/google/rpc/status.proto \
    client/typescript/proto/google/rpc/error_details.proto
}
