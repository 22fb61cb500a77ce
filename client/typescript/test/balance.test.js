// The default service config: round_robin over every address of an ipv4: target, and
// retries of UNAVAILABLE (run: npm test). Three in-process servers on loopback ports.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const grpc = require("@grpc/grpc-js");
const sdk = require("../dist");

async function startServer(handler) {
  const server = new grpc.Server();
  server.addService(sdk.PlannerServiceService, { listQuantizationLevels: handler });
  const port = await new Promise((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { server, port };
}

async function threeServers(handler) {
  const counts = [0, 0, 0];
  const servers = await Promise.all(
    counts.map((_, i) => startServer((call, callback) => handler(i, counts, callback))),
  );
  return { counts, servers, target: "ipv4:" + servers.map((s) => `127.0.0.1:${s.port}`).join(",") };
}

test("the default channel spreads calls over every address; serviceConfig null pins one", async () => {
  const { counts, servers, target } = await threeServers((i, counts, callback) => {
    counts[i]++;
    callback(null, { levels: [] });
  });
  try {
    const client = sdk.createPlannerClient(target);
    for (let i = 0; i < 30; i++) await client.listQuantizationLevels({}); // every subchannel READY
    counts.fill(0);
    for (let i = 0; i < 90; i++) await client.listQuantizationLevels({});
    client.close();
    for (const n of counts) assert.ok(n >= 25, `round_robin split ${counts}`);

    counts.fill(0);
    const pinned = sdk.createPlannerClient(target, { serviceConfig: null });
    for (let i = 0; i < 30; i++) await pinned.listQuantizationLevels({});
    pinned.close();
    assert.equal(counts.filter((n) => n > 0).length, 1, `pick_first split ${counts}`);
  } finally {
    servers.forEach((s) => s.server.forceShutdown());
  }
});

test("a call that fails with UNAVAILABLE is retried", async () => {
  let failures = 1;
  const { server, port } = await startServer((call, callback) => {
    if (failures-- > 0) callback({ code: grpc.status.UNAVAILABLE, details: "going away" });
    else callback(null, { levels: [] });
  });
  try {
    const client = sdk.createPlannerClient(`127.0.0.1:${port}`);
    await client.listQuantizationLevels({});
    client.close();
    const strict = sdk.createPlannerClient(`127.0.0.1:${port}`, { serviceConfig: null });
    failures = 1;
    await assert.rejects(strict.listQuantizationLevels({}), (e) => e.codeName === "UNAVAILABLE");
    strict.close();
  } finally {
    server.forceShutdown();
  }
});
