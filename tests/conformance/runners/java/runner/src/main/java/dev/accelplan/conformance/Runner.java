package dev.accelplan.conformance;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import com.google.protobuf.Message;
import com.google.protobuf.util.JsonFormat;
import dev.accelplan.client.AccelplanClient;
import dev.accelplan.client.AccelplanException;
import dev.accelplan.v1.EstimateCapacityRequest;
import dev.accelplan.v1.EstimateMemoryRequest;
import dev.accelplan.v1.EstimatePerformanceRequest;
import dev.accelplan.v1.EstimateTrainingMemoryRequest;
import dev.accelplan.v1.FilterAcceleratorsRequest;
import dev.accelplan.v1.FindCompatibleModelsRequest;
import dev.accelplan.v1.GetModelRequest;
import dev.accelplan.v1.ListAcceleratorModelsRequest;
import dev.accelplan.v1.ListModelsRequest;
import dev.accelplan.v1.ListQuantizationLevelsRequest;
import dev.accelplan.v1.PlanShardingRequest;
import dev.accelplan.v1.RankNodesRequest;
import dev.accelplan.v1.RecommendInstancesRequest;
import dev.accelplan.v1.ResolveQuantizationLevelRequest;
import dev.accelplan.v1.RightSizeRequest;
import dev.accelplan.v1.SuggestQuantizationRequest;
import java.io.IOException;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.BiFunction;
import java.util.function.Supplier;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Conformance runner for the Java SDK (see tests/conformance/README.md).
 *
 * <p>Usage: {@code Runner --server HOST:PORT --cases DIR}. Prints {@code PASS name} or {@code FAIL name: why} per
 * case, then {@code N passed, M failed}; exits 1 when any case failed.
 */
public final class Runner {
  private static final Duration CALL_DEADLINE = Duration.ofSeconds(10);
  private static final double DEFAULT_TOLERANCE = 1e-9;
  private static final Pattern INT_RE = Pattern.compile("-?[0-9]+");

  /** One RPC: a fresh request builder and the client call. */
  private record Rpc(Supplier<Message.Builder> builder, BiFunction<AccelplanClient, Message, Message> call) {}

  private static final Map<String, Rpc> RPCS = new HashMap<>();

  static {
    RPCS.put("ListQuantizationLevels", new Rpc(ListQuantizationLevelsRequest::newBuilder,
        (c, r) -> c.listQuantizationLevels((ListQuantizationLevelsRequest) r, CALL_DEADLINE)));
    RPCS.put("ResolveQuantizationLevel", new Rpc(ResolveQuantizationLevelRequest::newBuilder,
        (c, r) -> c.resolveQuantizationLevel((ResolveQuantizationLevelRequest) r, CALL_DEADLINE)));
    RPCS.put("EstimateMemory", new Rpc(EstimateMemoryRequest::newBuilder,
        (c, r) -> c.estimateMemory((EstimateMemoryRequest) r, CALL_DEADLINE)));
    RPCS.put("SuggestQuantization", new Rpc(SuggestQuantizationRequest::newBuilder,
        (c, r) -> c.suggestQuantization((SuggestQuantizationRequest) r, CALL_DEADLINE)));
    RPCS.put("PlanSharding", new Rpc(PlanShardingRequest::newBuilder,
        (c, r) -> c.planSharding((PlanShardingRequest) r, CALL_DEADLINE)));
    RPCS.put("EstimateTrainingMemory", new Rpc(EstimateTrainingMemoryRequest::newBuilder,
        (c, r) -> c.estimateTrainingMemory((EstimateTrainingMemoryRequest) r, CALL_DEADLINE)));
    RPCS.put("RecommendInstances", new Rpc(RecommendInstancesRequest::newBuilder,
        (c, r) -> c.recommendInstances((RecommendInstancesRequest) r, CALL_DEADLINE)));
    RPCS.put("ListModels", new Rpc(ListModelsRequest::newBuilder,
        (c, r) -> c.listModels((ListModelsRequest) r, CALL_DEADLINE)));
    RPCS.put("GetModel", new Rpc(GetModelRequest::newBuilder,
        (c, r) -> c.getModel((GetModelRequest) r, CALL_DEADLINE)));
    RPCS.put("FindCompatibleModels", new Rpc(FindCompatibleModelsRequest::newBuilder,
        (c, r) -> c.findCompatibleModels((FindCompatibleModelsRequest) r, CALL_DEADLINE)));
    RPCS.put("FilterAccelerators", new Rpc(FilterAcceleratorsRequest::newBuilder,
        (c, r) -> c.filterAccelerators((FilterAcceleratorsRequest) r, CALL_DEADLINE)));
    RPCS.put("ListAcceleratorModels", new Rpc(ListAcceleratorModelsRequest::newBuilder,
        (c, r) -> c.listAcceleratorModels((ListAcceleratorModelsRequest) r, CALL_DEADLINE)));
    RPCS.put("EstimateCapacity", new Rpc(EstimateCapacityRequest::newBuilder,
        (c, r) -> c.estimateCapacity((EstimateCapacityRequest) r, CALL_DEADLINE)));
    RPCS.put("EstimatePerformance", new Rpc(EstimatePerformanceRequest::newBuilder,
        (c, r) -> c.estimatePerformance((EstimatePerformanceRequest) r, CALL_DEADLINE)));
    RPCS.put("RankNodes", new Rpc(RankNodesRequest::newBuilder,
        (c, r) -> c.rankNodes((RankNodesRequest) r, CALL_DEADLINE)));
    RPCS.put("RightSize", new Rpc(RightSizeRequest::newBuilder,
        (c, r) -> c.rightSize((RightSizeRequest) r, CALL_DEADLINE)));
  }

  private Runner() {}

  public static void main(String[] args) {
    String server = null;
    String casesDir = null;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      String key = a;
      String val;
      int eq = a.indexOf('=');
      if (eq > 0) {
        key = a.substring(0, eq);
        val = a.substring(eq + 1);
      } else {
        val = i + 1 < args.length ? args[++i] : null;
      }
      switch (key) {
        case "--server" -> server = val;
        case "--cases" -> casesDir = val;
        default -> usage("unknown argument " + a);
      }
    }
    if (server == null || server.isEmpty() || casesDir == null || casesDir.isEmpty()) {
      usage(null);
    }

    List<JsonObject> cases;
    try {
      cases = loadCases(Path.of(casesDir));
    } catch (IOException | RuntimeException e) {
      System.err.println("runner/java: cannot load cases from " + casesDir + ": " + e.getMessage());
      System.exit(2);
      return;
    }

    int passed = 0;
    int failed = 0;
    try (AccelplanClient client = AccelplanClient.newBuilder(server).defaultDeadline(CALL_DEADLINE).build()) {
      for (JsonObject c : cases) {
        String name = c.has("name") && c.get("name").isJsonPrimitive() ? c.get("name").getAsString() : "<unnamed>";
        String why;
        try {
          why = runCase(client, c);
        } catch (RuntimeException e) {
          why = "runner error: " + e;
        }
        if (why == null) {
          passed++;
          System.out.println("PASS " + name);
        } else {
          failed++;
          System.out.println("FAIL " + name + ": " + why);
        }
      }
    }
    System.out.println(passed + " passed, " + failed + " failed");
    System.out.flush();
    System.exit(failed > 0 ? 1 : 0);
  }

  private static void usage(String problem) {
    if (problem != null) {
      System.err.println("runner/java: " + problem);
    }
    System.err.println("usage: run.sh --server HOST:PORT --cases DIR");
    System.exit(2);
  }

  /** Every case of every *.json file, files in sorted name order, cases in file order. */
  static List<JsonObject> loadCases(Path dir) throws IOException {
    List<Path> files;
    try (Stream<Path> s = Files.list(dir)) {
      files = s.filter(p -> p.getFileName().toString().endsWith(".json") && Files.isRegularFile(p))
          .sorted((a, b) -> a.getFileName().toString().compareTo(b.getFileName().toString()))
          .toList();
    }
    List<JsonObject> out = new ArrayList<>();
    for (Path f : files) {
      JsonElement doc = JsonParser.parseString(Files.readString(f, StandardCharsets.UTF_8));
      if (!doc.isJsonObject() || !doc.getAsJsonObject().has("cases")) {
        throw new IllegalArgumentException(f.getFileName() + ": expected {\"cases\": [...]}");
      }
      for (JsonElement c : doc.getAsJsonObject().getAsJsonArray("cases")) {
        out.add(c.getAsJsonObject());
      }
    }
    return out;
  }

  /** Runs one case; null when it passed, else why it failed. */
  static String runCase(AccelplanClient client, JsonObject c) {
    String rpcName = c.has("rpc") ? c.get("rpc").getAsString() : "";
    Rpc rpc = RPCS.get(rpcName);
    if (rpc == null) {
      return "unknown rpc " + show(c.get("rpc"));
    }
    JsonObject expect = c.has("expect") && c.get("expect").isJsonObject() ? c.getAsJsonObject("expect") : null;
    if (expect == null || expect.has("response") == expect.has("code")) {
      return "bad case: expect must hold exactly one of response or code";
    }
    double tol = c.has("tolerance") ? c.get("tolerance").getAsDouble() : DEFAULT_TOLERANCE;

    Message.Builder b = rpc.builder().get();
    try {
      JsonElement req = c.has("request") ? c.get("request") : new JsonObject();
      JsonFormat.parser().merge(req.toString(), b);
    } catch (IOException | RuntimeException e) {
      return "cannot parse request: " + e.getMessage();
    }

    Message response;
    try {
      response = rpc.call().apply(client, b.build());
    } catch (AccelplanException e) {
      if (expect.has("response")) {
        return "expected success, got " + e.getCode() + ": " + e.getDescription();
      }
      String wantCode = expect.get("code").getAsString();
      if (!wantCode.equals(e.getCode().name())) {
        return "expected " + wantCode + ", got " + e.getCode() + ": " + e.getDescription();
      }
      if (expect.has("fieldViolations")) {
        Set<String> want = new TreeSet<>();
        for (JsonElement f : expect.getAsJsonArray("fieldViolations")) {
          want.add(f.getAsString());
        }
        Set<String> got = new TreeSet<>(e.getViolatedFields());
        if (!want.equals(got)) {
          return "expected field violations " + want + ", got " + got;
        }
      }
      return null;
    }

    if (expect.has("code")) {
      return "expected " + expect.get("code").getAsString() + ", got a response";
    }
    JsonElement actual;
    try {
      actual = JsonParser.parseString(JsonFormat.printer().print(response));
    } catch (IOException e) {
      return "cannot print response: " + e.getMessage();
    }
    return match(expect.get("response"), actual, tol, "response");
  }

  // ---- matching rules (tests/conformance/README.md) ----

  static String lowerCamel(String key) {
    StringBuilder sb = new StringBuilder(key.length());
    boolean upper = false;
    for (int i = 0; i < key.length(); i++) {
      char ch = key.charAt(i);
      if (ch == '_') {
        upper = sb.length() > 0 || upper;
        continue;
      }
      sb.append(upper ? Character.toUpperCase(ch) : ch);
      upper = false;
    }
    if (sb.length() > 0) {
      sb.setCharAt(0, Character.toLowerCase(sb.charAt(0)));
    }
    return sb.toString();
  }

  static boolean isProto3Default(JsonElement v) {
    if (v.isJsonArray()) {
      return v.getAsJsonArray().isEmpty();
    }
    if (v.isJsonObject()) {
      return v.getAsJsonObject().isEmpty();
    }
    if (!v.isJsonPrimitive()) {
      return false;
    }
    JsonPrimitive p = v.getAsJsonPrimitive();
    if (p.isBoolean()) {
      return !p.getAsBoolean();
    }
    if (p.isNumber()) {
      return new BigDecimal(p.getAsString()).signum() == 0;
    }
    String s = p.getAsString();
    return s.equals("0") || s.isEmpty() || s.endsWith("_UNSPECIFIED");
  }

  /** The exact integer value of a digit string or an integral JSON number, else null. */
  static BigInteger asBigInteger(JsonElement v) {
    if (v == null || !v.isJsonPrimitive()) {
      return null;
    }
    JsonPrimitive p = v.getAsJsonPrimitive();
    if (p.isString()) {
      return INT_RE.matcher(p.getAsString()).matches() ? new BigInteger(p.getAsString()) : null;
    }
    if (p.isNumber()) {
      try {
        return new BigDecimal(p.getAsString()).toBigIntegerExact();
      } catch (ArithmeticException | NumberFormatException e) {
        return null;
      }
    }
    return null;
  }

  private static boolean isDigitString(JsonElement v) {
    return v != null && v.isJsonPrimitive() && v.getAsJsonPrimitive().isString()
        && INT_RE.matcher(v.getAsString()).matches();
  }

  private static String show(JsonElement v) {
    return v == null ? "nothing" : v.toString();
  }

  /** Null when {@code actual} matches {@code expected}, else a reason naming the path. */
  static String match(JsonElement expected, JsonElement actual, double tol, String where) {
    if (expected.isJsonObject()) {
      if (actual == null || !actual.isJsonObject()) {
        return where + ": expected object, got " + show(actual);
      }
      Map<String, JsonElement> byKey = new LinkedHashMap<>();
      for (Map.Entry<String, JsonElement> e : actual.getAsJsonObject().entrySet()) {
        byKey.put(lowerCamel(e.getKey()), e.getValue());
      }
      for (Map.Entry<String, JsonElement> e : expected.getAsJsonObject().entrySet()) {
        String key = lowerCamel(e.getKey());
        String sub = where + "." + key;
        if (!byKey.containsKey(key)) {
          if (isProto3Default(e.getValue())) {
            continue;
          }
          return sub + ": missing, expected " + show(e.getValue());
        }
        String why = match(e.getValue(), byKey.get(key), tol, sub);
        if (why != null) {
          return why;
        }
      }
      return null;
    }
    if (expected.isJsonArray()) {
      if (actual == null || !actual.isJsonArray()) {
        return where + ": expected array, got " + show(actual);
      }
      JsonArray e = expected.getAsJsonArray();
      JsonArray a = actual.getAsJsonArray();
      if (e.size() != a.size()) {
        return where + ": expected " + e.size() + " elements, got " + a.size();
      }
      for (int i = 0; i < e.size(); i++) {
        String why = match(e.get(i), a.get(i), tol, where + "[" + i + "]");
        if (why != null) {
          return why;
        }
      }
      return null;
    }
    if (isDigitString(expected) || isDigitString(actual)) {
      BigInteger e = asBigInteger(expected);
      BigInteger a = asBigInteger(actual);
      if (e == null || a == null || !e.equals(a)) {
        return where + ": expected " + show(expected) + ", got " + show(actual);
      }
      return null;
    }
    if (expected.isJsonPrimitive() && expected.getAsJsonPrimitive().isNumber()) {
      if (actual == null || !actual.isJsonPrimitive() || !actual.getAsJsonPrimitive().isNumber()) {
        return where + ": expected " + show(expected) + ", got " + show(actual);
      }
      double e = expected.getAsDouble();
      double a = actual.getAsDouble();
      boolean ok = e == 0 ? Math.abs(a) <= tol : Math.abs(a - e) <= tol * Math.abs(e);
      return ok ? null : where + ": expected " + show(expected) + " (tolerance " + tol + "), got " + show(actual);
    }
    // Strings, booleans (and null).
    return expected.equals(actual) ? null : where + ": expected " + show(expected) + ", got " + show(actual);
  }
}
