// Unit tests for error decoding and 64-bit JSON handling (run: npm test).
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const grpc = require("@grpc/grpc-js");
const sdk = require("../dist");
const { Status } = require("../dist/gen/google/rpc/status");

function statusDetails(violations) {
  const bad = sdk.BadRequest.encode({
    fieldViolations: violations.map(([field, description]) => ({ field, description, reason: "" })),
  }).finish();
  return Buffer.from(
    Status.encode({
      code: grpc.status.INVALID_ARGUMENT,
      message: "bad",
      details: [
        { typeUrl: "type.googleapis.com/google.rpc.ErrorInfo", value: new Uint8Array([10, 1, 120]) },
        { typeUrl: "type.googleapis.com/google.rpc.BadRequest", value: bad },
      ],
    }).finish(),
  );
}

test("AccelplanError decodes BadRequest field violations from grpc-status-details-bin", () => {
  const md = new grpc.Metadata();
  md.set("grpc-status-details-bin", statusDetails([["model.parameter_count", "must be greater than 0"]]));
  const err = Object.assign(new Error("3 INVALID_ARGUMENT: bad"), {
    code: grpc.status.INVALID_ARGUMENT,
    details: "model.parameter_count: must be greater than 0",
    metadata: md,
  });
  const e = sdk.AccelplanError.fromServiceError(err);
  assert.ok(e instanceof sdk.AccelplanError);
  assert.equal(e.code, grpc.status.INVALID_ARGUMENT);
  assert.equal(e.codeName, "INVALID_ARGUMENT");
  assert.deepEqual(e.fieldViolations, [
    { field: "model.parameter_count", description: "must be greater than 0", reason: "" },
  ]);
});

test("errors without or with malformed details keep code and message", () => {
  const md = new grpc.Metadata();
  md.set("grpc-status-details-bin", Buffer.from([0xff, 0xff, 0xff]));
  const e = sdk.AccelplanError.fromServiceError(
    Object.assign(new Error("x"), { code: grpc.status.NOT_FOUND, details: "no such model", metadata: md }),
  );
  assert.equal(e.codeName, "NOT_FOUND");
  assert.equal(e.details, "no such model");
  assert.deepEqual(e.fieldViolations, []);
});

test("uint64 above 2^53 survives proto3 JSON and the wire", () => {
  const req = sdk.EstimateMemoryRequest.fromJSON({
    model: { parameter_count: "9007199254740993" },
    quantization: "QUANTIZATION_LEVEL_INT4",
  });
  const back = sdk.EstimateMemoryRequest.decode(sdk.EstimateMemoryRequest.encode(req).finish());
  assert.deepEqual(sdk.EstimateMemoryRequest.toJSON(back), {
    model: { parameterCount: "9007199254740993" },
    quantization: "QUANTIZATION_LEVEL_INT4",
  });
});

test("bearer token is sent and status details are decoded end to end", async () => {
  const server = new grpc.Server();
  let seenAuth;
  server.addService(sdk.PlannerServiceService, {
    estimateMemory(call, callback) {
      seenAuth = call.metadata.get("authorization")[0];
      const trailer = new grpc.Metadata();
      trailer.set("grpc-status-details-bin", statusDetails([["quantization", "must be set"]]));
      callback({ code: grpc.status.INVALID_ARGUMENT, details: "quantization: must be set", metadata: trailer });
    },
  });
  const port = await new Promise((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const client = sdk.createPlannerClient(`127.0.0.1:${port}`, { token: "s3cret", timeoutMs: 5000 });
  try {
    await assert.rejects(client.estimateMemory({ model: { parameterCount: "7" } }), (e) => {
      assert.ok(e instanceof sdk.AccelplanError);
      assert.equal(e.codeName, "INVALID_ARGUMENT");
      assert.deepEqual(e.fieldViolations.map((v) => v.field), ["quantization"]);
      return true;
    });
    assert.equal(seenAuth, "Bearer s3cret");
  } finally {
    client.close();
    server.forceShutdown();
  }
});
