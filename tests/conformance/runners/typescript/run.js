// @ts-check
// Conformance runner for the TypeScript SDK (see tests/conformance/README.md).
// Usage: node run.js --server HOST:PORT --cases DIR   (run.sh builds the SDK first)
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const sdk = require("../../../../client/typescript/dist");

const CALL_TIMEOUT_MS = 10_000;

/** rpc name -> [client method, request message, response message] */
const RPCS = {
  ListQuantizationLevels: ["listQuantizationLevels", sdk.ListQuantizationLevelsRequest, sdk.ListQuantizationLevelsResponse],
  ResolveQuantizationLevel: ["resolveQuantizationLevel", sdk.ResolveQuantizationLevelRequest, sdk.QuantizationLevelInfo],
  EstimateMemory: ["estimateMemory", sdk.EstimateMemoryRequest, sdk.MemoryEstimate],
  SuggestQuantization: ["suggestQuantization", sdk.SuggestQuantizationRequest, sdk.SuggestQuantizationResponse],
  PlanSharding: ["planSharding", sdk.PlanShardingRequest, sdk.ShardingPlan],
  EstimateTrainingMemory: ["estimateTrainingMemory", sdk.EstimateTrainingMemoryRequest, sdk.EstimateTrainingMemoryResponse],
  RecommendInstances: ["recommendInstances", sdk.RecommendInstancesRequest, sdk.RecommendInstancesResponse],
  ListModels: ["listModels", sdk.ListModelsRequest, sdk.ListModelsResponse],
  GetModel: ["getModel", sdk.GetModelRequest, sdk.GetModelResponse],
  FindCompatibleModels: ["findCompatibleModels", sdk.FindCompatibleModelsRequest, sdk.FindCompatibleModelsResponse],
  FilterAccelerators: ["filterAccelerators", sdk.FilterAcceleratorsRequest, sdk.FilterAcceleratorsResponse],
  ListAcceleratorModels: ["listAcceleratorModels", sdk.ListAcceleratorModelsRequest, sdk.ListAcceleratorModelsResponse],
  EstimateCapacity: ["estimateCapacity", sdk.EstimateCapacityRequest, sdk.EstimateCapacityResponse],
  EstimatePerformance: ["estimatePerformance", sdk.EstimatePerformanceRequest, sdk.EstimatePerformanceResponse],
  RankNodes: ["rankNodes", sdk.RankNodesRequest, sdk.RankNodesResponse],
  RightSize: ["rightSize", sdk.RightSizeRequest, sdk.RightSizeResponse],
};

function parseArgs(argv) {
  const out = { server: "", cases: "" };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf("=");
    const [key, val] = eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, argv[++i]];
    if (key === "--server") out.server = val;
    else if (key === "--cases") out.cases = val;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!out.server || !out.cases) throw new Error("usage: run.sh --server HOST:PORT --cases DIR");
  return out;
}

// ---- matching rules (tests/conformance/README.md) ----

const INT_RE = /^-?[0-9]+$/;

function lowerCamel(key) {
  const s = key.replace(/_+([A-Za-z0-9])/g, (_, c) => c.toUpperCase());
  return s.charAt(0).toLowerCase() + s.slice(1);
}

function isPlainObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function isProto3Default(v) {
  if (v === 0 || v === "0" || v === false || v === "") return true;
  if (Array.isArray(v)) return v.length === 0;
  if (isPlainObject(v)) return Object.keys(v).length === 0;
  return typeof v === "string" && v.endsWith("_UNSPECIFIED");
}

/** Exact decimal integer of v (digit string or integral JSON number), or null. */
function asBigInt(v) {
  if (typeof v === "string" && INT_RE.test(v)) return BigInt(v);
  if (typeof v === "number" && Number.isInteger(v)) return BigInt(v);
  return null;
}

function show(v) {
  return JSON.stringify(v);
}

/** Returns null when `actual` matches `expected`, else a reason naming the path. */
function match(expected, actual, tol, at) {
  const where = at || "response";
  if (isPlainObject(expected)) {
    if (!isPlainObject(actual)) return `${where}: expected object, got ${show(actual)}`;
    const byKey = new Map();
    for (const k of Object.keys(actual)) byKey.set(lowerCamel(k), actual[k]);
    for (const k of Object.keys(expected)) {
      const ck = lowerCamel(k);
      const sub = `${where}.${ck}`;
      if (!byKey.has(ck)) {
        if (isProto3Default(expected[k])) continue;
        return `${sub}: missing, expected ${show(expected[k])}`;
      }
      const why = match(expected[k], byKey.get(ck), tol, sub);
      if (why) return why;
    }
    return null;
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return `${where}: expected array, got ${show(actual)}`;
    if (expected.length !== actual.length) {
      return `${where}: expected ${expected.length} elements, got ${actual.length}`;
    }
    for (let i = 0; i < expected.length; i++) {
      const why = match(expected[i], actual[i], tol, `${where}[${i}]`);
      if (why) return why;
    }
    return null;
  }
  const intSide = (typeof expected === "string" && INT_RE.test(expected)) ||
    (typeof actual === "string" && INT_RE.test(actual));
  if (intSide) {
    const e = asBigInt(expected);
    const a = asBigInt(actual);
    if (e === null || a === null || e !== a) return `${where}: expected ${show(expected)}, got ${show(actual)}`;
    return null;
  }
  if (typeof expected === "number") {
    if (typeof actual !== "number") return `${where}: expected ${show(expected)}, got ${show(actual)}`;
    const ok = expected === 0 ? Math.abs(actual) <= tol : Math.abs(actual - expected) <= tol * Math.abs(expected);
    return ok ? null : `${where}: expected ${expected} (tolerance ${tol}), got ${actual}`;
  }
  // strings, booleans (and null)
  return expected === actual ? null : `${where}: expected ${show(expected)}, got ${show(actual)}`;
}

// ---- running ----

function loadCases(dir) {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith(".json")).sort();
  const cases = [];
  for (const f of files) {
    const doc = JSON.parse(fs.readFileSync(path.join(dir, f), "utf8"));
    for (const c of doc.cases || []) cases.push({ file: f, ...c });
  }
  return cases;
}

async function runCase(client, c) {
  const rpc = RPCS[c.rpc];
  if (!rpc) return `unknown rpc ${show(c.rpc)}`;
  const [method, Req, Res] = rpc;
  const expect = c.expect || {};
  const tol = typeof c.tolerance === "number" ? c.tolerance : 1e-9;
  let request;
  try {
    request = Req.fromJSON(c.request ?? {});
  } catch (e) {
    return `cannot parse request: ${e instanceof Error ? e.message : e}`;
  }
  let response;
  try {
    response = await client[method](request, { timeoutMs: CALL_TIMEOUT_MS });
  } catch (e) {
    if (!(e instanceof sdk.AccelplanError)) return `call failed: ${e instanceof Error ? e.message : e}`;
    if (!("code" in expect)) return `expected a response, got ${e.codeName}: ${e.details}`;
    if (e.codeName !== expect.code) return `expected ${expect.code}, got ${e.codeName}: ${e.details}`;
    if (Array.isArray(expect.fieldViolations)) {
      const want = [...new Set(expect.fieldViolations)].sort();
      const got = [...new Set(e.fieldViolations.map((v) => v.field))].sort();
      if (show(want) !== show(got)) return `expected field violations ${show(want)}, got ${show(got)}`;
    }
    return null;
  }
  if ("code" in expect) return `expected ${expect.code}, got a response`;
  if (!("response" in expect)) return "case has no expect.response or expect.code";
  return match(expect.response, Res.toJSON(response), tol, "");
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const cases = loadCases(args.cases);
  const client = sdk.createPlannerClient(args.server, { timeoutMs: CALL_TIMEOUT_MS });
  let passed = 0;
  let failed = 0;
  for (const c of cases) {
    let why;
    try {
      why = await runCase(client, c);
    } catch (e) {
      why = `runner error: ${e instanceof Error ? e.message : e}`;
    }
    if (why) {
      failed++;
      console.log(`FAIL ${c.name}: ${why}`);
    } else {
      passed++;
      console.log(`PASS ${c.name}`);
    }
  }
  client.close();
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed > 0 ? 1 : 0;
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(2);
});
