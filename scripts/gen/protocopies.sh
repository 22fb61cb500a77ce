# Java and Rust: verbatim copies of protos/accelplan/v1 inside each SDK's own
# directory, so the Maven jar and the cargo package build from files in their
# module (a published crate or a jar built from a source release has no
# ../../protos). protos/ stays the single source; --check catches a stale copy.
GENERATED_PATHS+=("client/java/src/main/proto" "client/rust/proto")

gen_protocopies() {
  local dest
  for dest in "$1/client/java/src/main/proto/accelplan/v1" "$1/client/rust/proto/accelplan/v1"; do
    mkdir -p "$dest"
    cp protos/accelplan/v1/*.proto "$dest/"
  done
}
