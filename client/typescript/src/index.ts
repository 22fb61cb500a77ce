/**
 * @accelplan/client: a small promise-based client for accelplan.v1.PlannerService.
 *
 * `createPlannerClient` hides channel set-up (plaintext or TLS/mTLS, bearer
 * token, default deadline); every method returns a promise that rejects with
 * an {@link AccelplanError} carrying the gRPC status code and the
 * google.rpc.BadRequest field violations sent in the grpc-status-details-bin
 * trailer. The generated message types (ts-proto, with fromJSON/toJSON for
 * proto3 JSON and 64-bit integers as decimal strings) are re-exported.
 */
import * as grpc from "@grpc/grpc-js";

import {
  RecommendInstancesRequest,
  RecommendInstancesResponse,
} from "./gen/accelplan/v1/cost";
import {
  FilterAcceleratorsRequest,
  FilterAcceleratorsResponse,
  ListAcceleratorModelsRequest,
  ListAcceleratorModelsResponse,
} from "./gen/accelplan/v1/hardware";
import {
  FindCompatibleModelsRequest,
  FindCompatibleModelsResponse,
  GetModelRequest,
  GetModelResponse,
  ListModelsRequest,
  ListModelsResponse,
} from "./gen/accelplan/v1/models";
import { PlannerServiceClient } from "./gen/accelplan/v1/planner_service";
import { SchedulerServiceClient } from "./gen/accelplan/v1/scheduler_service";
import {
  RankNodesRequest,
  RankNodesResponse,
  RightSizeRequest,
  RightSizeResponse,
} from "./gen/accelplan/v1/scheduling";
import {
  EstimateCapacityRequest,
  EstimateCapacityResponse,
  EstimateMemoryRequest,
  EstimatePerformanceRequest,
  EstimatePerformanceResponse,
  MemoryEstimate,
  PlanShardingRequest,
  ShardingPlan,
  SuggestQuantizationRequest,
  SuggestQuantizationResponse,
} from "./gen/accelplan/v1/planning";
import {
  ListQuantizationLevelsRequest,
  ListQuantizationLevelsResponse,
  QuantizationLevelInfo,
  ResolveQuantizationLevelRequest,
} from "./gen/accelplan/v1/quantization";
import { EstimateTrainingMemoryRequest, EstimateTrainingMemoryResponse } from "./gen/accelplan/v1/training";
import { BadRequest } from "./gen/google/rpc/error_details";
import { Status } from "./gen/google/rpc/status";

export * from "./gen/accelplan/v1/cost";
export * from "./gen/accelplan/v1/hardware";
export * from "./gen/accelplan/v1/models";
export * from "./gen/accelplan/v1/planner_service";
export * from "./gen/accelplan/v1/planning";
export * from "./gen/accelplan/v1/quantization";
export * from "./gen/accelplan/v1/scheduler_service";
export * from "./gen/accelplan/v1/scheduling";
export * from "./gen/accelplan/v1/training";
export { Status as RpcStatus } from "./gen/google/rpc/status";
export { BadRequest, BadRequest_FieldViolation } from "./gen/google/rpc/error_details";

/** Deadline applied to every call unless the client or the call sets another. */
export const DEFAULT_TIMEOUT_MS = 10_000;

const STATUS_DETAILS_KEY = "grpc-status-details-bin";
const BAD_REQUEST_TYPE_URL = "type.googleapis.com/google.rpc.BadRequest";

/** Every field optional, recursively: what `X.fromPartial` accepts. */
export type DeepPartial<T> = T extends string | number | boolean | undefined
  ? T
  : T extends Array<infer U>
    ? Array<DeepPartial<U>>
    : T extends object
      ? { [K in keyof T]?: DeepPartial<T[K]> }
      : Partial<T>;

/** TLS settings. PEM-encoded; omit rootCerts to use the system roots. */
export interface TlsOptions {
  /** CA certificate(s) the server's certificate must chain to. */
  rootCerts?: Buffer | string;
  /** Client private key, for mutual TLS (with certChain). */
  privateKey?: Buffer | string;
  /** Client certificate chain, for mutual TLS (with privateKey). */
  certChain?: Buffer | string;
}

export interface PlannerClientOptions {
  /** Use TLS: `true` (system roots) or custom CA / client certificate. Plaintext when omitted. */
  tls?: TlsOptions | boolean;
  /** Bearer token, sent as `authorization: Bearer <token>` on every call. */
  token?: string;
  /** Default per-call deadline in milliseconds (default 10 000). */
  timeoutMs?: number;
  /**
   * gRPC service config (load balancing, retries); default DEFAULT_SERVICE_CONFIG.
   * `null` sends none (grpc-js's pick_first, no retries).
   */
  serviceConfig?: object | null;
  /** Extra @grpc/grpc-js channel options (they win over the ones derived above). */
  channelOptions?: Partial<grpc.ClientOptions>;
}

/**
 * The service config every client starts from: round_robin over every address
 * the target resolves to (a headless Service's pod IPs, or
 * "ipv4:10.0.0.1:50051,10.0.0.2:50051"), so calls spread across replicas
 * instead of riding one HTTP/2 connection to one of them, and up to 3 attempts
 * of a PlannerService call that fails with UNAVAILABLE (every RPC is a
 * side-effect-free computation, so retrying is safe).
 */
export const DEFAULT_SERVICE_CONFIG = {
  loadBalancingConfig: [{ round_robin: {} }],
  methodConfig: [
    {
      name: [{ service: "accelplan.v1.PlannerService" }, { service: "accelplan.v1.SchedulerService" }],
      retryPolicy: {
        maxAttempts: 3,
        initialBackoff: "0.05s",
        maxBackoff: "1s",
        backoffMultiplier: 2,
        retryableStatusCodes: ["UNAVAILABLE"],
      },
    },
  ],
};

/** Per-call overrides. */
export interface CallOptions {
  /** Deadline for this call in milliseconds, instead of the client's default. */
  timeoutMs?: number;
  /** Extra request metadata. */
  metadata?: grpc.Metadata;
}

/** One bad request field named by the server's google.rpc.BadRequest. */
export interface FieldViolation {
  /** Proto field path, e.g. "model.parameter_count". */
  field: string;
  description: string;
  reason: string;
}

/** A failed call: gRPC status code, message and decoded field violations. */
export class AccelplanError extends Error {
  /** Numeric gRPC status code (`grpc.status`). */
  readonly code: grpc.status;
  /** Status code name, e.g. "INVALID_ARGUMENT". */
  readonly codeName: string;
  /** The server's status message. */
  readonly details: string;
  /** Field violations from google.rpc.BadRequest in grpc-status-details-bin; empty when none. */
  readonly fieldViolations: FieldViolation[];
  /** Response trailers, when the error came from the server. */
  readonly metadata?: grpc.Metadata;

  constructor(code: grpc.status, details: string, fieldViolations: FieldViolation[] = [], metadata?: grpc.Metadata) {
    const codeName = statusName(code);
    super(`${codeName}: ${details}`);
    this.name = "AccelplanError";
    this.code = code;
    this.codeName = codeName;
    this.details = details;
    this.fieldViolations = fieldViolations;
    this.metadata = metadata;
  }

  /** Builds an AccelplanError from a @grpc/grpc-js ServiceError, decoding its status details. */
  static fromServiceError(err: grpc.ServiceError): AccelplanError {
    let violations: FieldViolation[] = [];
    const bin = err.metadata?.get(STATUS_DETAILS_KEY)[0];
    if (bin !== undefined && typeof bin !== "string") {
      try {
        violations = decodeFieldViolations(bin);
      } catch {
        violations = []; // malformed details: keep the code and message
      }
    }
    return new AccelplanError(err.code ?? grpc.status.UNKNOWN, err.details ?? err.message, violations, err.metadata);
  }
}

/** The name of a gRPC status code, e.g. 3 -> "INVALID_ARGUMENT". */
export function statusName(code: grpc.status): string {
  return grpc.status[code] ?? `CODE_${code}`;
}

/** Decodes a grpc-status-details-bin value (google.rpc.Status) into its BadRequest field violations. */
export function decodeFieldViolations(statusDetailsBin: Uint8Array): FieldViolation[] {
  const status = Status.decode(statusDetailsBin);
  const out: FieldViolation[] = [];
  for (const any of status.details) {
    if (any.typeUrl === BAD_REQUEST_TYPE_URL || any.typeUrl.endsWith("/google.rpc.BadRequest")) {
      for (const v of BadRequest.decode(any.value).fieldViolations) {
        out.push({ field: v.field, description: v.description, reason: v.reason });
      }
    }
  }
  return out;
}

interface Codec<T> {
  fromPartial(object: any): T;
}

type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: grpc.Metadata,
  options: Partial<grpc.CallOptions>,
  callback: (error: grpc.ServiceError | null, response: Res) => void,
) => grpc.ClientUnaryCall;

/** The promise-based client returned by {@link createPlannerClient}. */
export interface PlannerClient {
  /** The underlying generated @grpc/grpc-js client. */
  readonly raw: PlannerServiceClient;
  listQuantizationLevels(
    req?: DeepPartial<ListQuantizationLevelsRequest>,
    opts?: CallOptions,
  ): Promise<ListQuantizationLevelsResponse>;
  resolveQuantizationLevel(
    req: DeepPartial<ResolveQuantizationLevelRequest>,
    opts?: CallOptions,
  ): Promise<QuantizationLevelInfo>;
  estimateMemory(req: DeepPartial<EstimateMemoryRequest>, opts?: CallOptions): Promise<MemoryEstimate>;
  suggestQuantization(
    req: DeepPartial<SuggestQuantizationRequest>,
    opts?: CallOptions,
  ): Promise<SuggestQuantizationResponse>;
  planSharding(req: DeepPartial<PlanShardingRequest>, opts?: CallOptions): Promise<ShardingPlan>;
  estimateTrainingMemory(
    req: DeepPartial<EstimateTrainingMemoryRequest>,
    opts?: CallOptions,
  ): Promise<EstimateTrainingMemoryResponse>;
  recommendInstances(
    req: DeepPartial<RecommendInstancesRequest>,
    opts?: CallOptions,
  ): Promise<RecommendInstancesResponse>;
  listModels(req?: DeepPartial<ListModelsRequest>, opts?: CallOptions): Promise<ListModelsResponse>;
  getModel(req: DeepPartial<GetModelRequest>, opts?: CallOptions): Promise<GetModelResponse>;
  findCompatibleModels(
    req: DeepPartial<FindCompatibleModelsRequest>,
    opts?: CallOptions,
  ): Promise<FindCompatibleModelsResponse>;
  filterAccelerators(
    req: DeepPartial<FilterAcceleratorsRequest>,
    opts?: CallOptions,
  ): Promise<FilterAcceleratorsResponse>;
  listAcceleratorModels(
    req?: DeepPartial<ListAcceleratorModelsRequest>,
    opts?: CallOptions,
  ): Promise<ListAcceleratorModelsResponse>;
  estimateCapacity(
    req: DeepPartial<EstimateCapacityRequest>,
    opts?: CallOptions,
  ): Promise<EstimateCapacityResponse>;
  estimatePerformance(
    req: DeepPartial<EstimatePerformanceRequest>,
    opts?: CallOptions,
  ): Promise<EstimatePerformanceResponse>;
  /** Closes the channel. */
  /** SchedulerService.RankNodes: which nodes can serve a workload, best first. */
  rankNodes(req: DeepPartial<RankNodesRequest>, opts?: CallOptions): Promise<RankNodesResponse>;
  /** SchedulerService.RightSize: devices, counts and precisions that serve a workload, with artifacts. */
  rightSize(req: DeepPartial<RightSizeRequest>, opts?: CallOptions): Promise<RightSizeResponse>;
  /** The generated SchedulerService stub. */
  readonly rawScheduler: SchedulerServiceClient;
  close(): void;
}

function toBuffer(v: Buffer | string | undefined): Buffer | null {
  if (v === undefined) return null;
  return typeof v === "string" ? Buffer.from(v) : v;
}

function channelCredentials(tls: TlsOptions | boolean | undefined): grpc.ChannelCredentials {
  if (!tls) return grpc.credentials.createInsecure();
  const t: TlsOptions = tls === true ? {} : tls;
  return grpc.credentials.createSsl(toBuffer(t.rootCerts), toBuffer(t.privateKey), toBuffer(t.certChain));
}

/**
 * Connects to a PlannerService at `target` ("host:port").
 *
 * Plaintext unless `tls` is given; `token` adds `authorization: Bearer <token>`
 * to every call; `timeoutMs` is the default deadline (10 s).
 */
export function createPlannerClient(target: string, options: PlannerClientOptions = {}): PlannerClient {
  const serviceConfig = options.serviceConfig === undefined ? DEFAULT_SERVICE_CONFIG : options.serviceConfig;
  const channelOptions: Partial<grpc.ClientOptions> = {
    ...(serviceConfig === null ? {} : { "grpc.service_config": JSON.stringify(serviceConfig) }),
    ...options.channelOptions,
  };
  const raw = new PlannerServiceClient(target, channelCredentials(options.tls), channelOptions);
  const rawScheduler = new SchedulerServiceClient(target, channelCredentials(options.tls), channelOptions);
  const defaultTimeout = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const token = options.token;

  function unary<Req, Res>(method: UnaryMethod<Req, Res>, codec: Codec<Req>, owner: grpc.Client = raw) {
    const bound = method.bind(owner);
    return (req: DeepPartial<Req> = {} as DeepPartial<Req>, opts: CallOptions = {}): Promise<Res> => {
      const metadata = opts.metadata ? opts.metadata.clone() : new grpc.Metadata();
      if (token) metadata.set("authorization", `Bearer ${token}`);
      const deadline = Date.now() + (opts.timeoutMs ?? defaultTimeout);
      let message: Req;
      try {
        message = codec.fromPartial(req);
      } catch (e) {
        return Promise.reject(e);
      }
      return new Promise<Res>((resolve, reject) => {
        bound(message, metadata, { deadline }, (err, res) => {
          if (err) reject(AccelplanError.fromServiceError(err));
          else resolve(res);
        });
      });
    };
  }

  return {
    raw,
    listQuantizationLevels: unary(raw.listQuantizationLevels as UnaryMethod<ListQuantizationLevelsRequest, ListQuantizationLevelsResponse>, ListQuantizationLevelsRequest),
    resolveQuantizationLevel: unary(raw.resolveQuantizationLevel as UnaryMethod<ResolveQuantizationLevelRequest, QuantizationLevelInfo>, ResolveQuantizationLevelRequest),
    estimateMemory: unary(raw.estimateMemory as UnaryMethod<EstimateMemoryRequest, MemoryEstimate>, EstimateMemoryRequest),
    suggestQuantization: unary(raw.suggestQuantization as UnaryMethod<SuggestQuantizationRequest, SuggestQuantizationResponse>, SuggestQuantizationRequest),
    planSharding: unary(raw.planSharding as UnaryMethod<PlanShardingRequest, ShardingPlan>, PlanShardingRequest),
    estimateTrainingMemory: unary(raw.estimateTrainingMemory as UnaryMethod<EstimateTrainingMemoryRequest, EstimateTrainingMemoryResponse>, EstimateTrainingMemoryRequest),
    recommendInstances: unary(raw.recommendInstances as UnaryMethod<RecommendInstancesRequest, RecommendInstancesResponse>, RecommendInstancesRequest),
    listModels: unary(raw.listModels as UnaryMethod<ListModelsRequest, ListModelsResponse>, ListModelsRequest),
    getModel: unary(raw.getModel as UnaryMethod<GetModelRequest, GetModelResponse>, GetModelRequest),
    findCompatibleModels: unary(raw.findCompatibleModels as UnaryMethod<FindCompatibleModelsRequest, FindCompatibleModelsResponse>, FindCompatibleModelsRequest),
    filterAccelerators: unary(raw.filterAccelerators as UnaryMethod<FilterAcceleratorsRequest, FilterAcceleratorsResponse>, FilterAcceleratorsRequest),
    listAcceleratorModels: unary(raw.listAcceleratorModels as UnaryMethod<ListAcceleratorModelsRequest, ListAcceleratorModelsResponse>, ListAcceleratorModelsRequest),
    estimateCapacity: unary(raw.estimateCapacity as UnaryMethod<EstimateCapacityRequest, EstimateCapacityResponse>, EstimateCapacityRequest),
    estimatePerformance: unary(raw.estimatePerformance as UnaryMethod<EstimatePerformanceRequest, EstimatePerformanceResponse>, EstimatePerformanceRequest),
    rankNodes: unary(rawScheduler.rankNodes as UnaryMethod<RankNodesRequest, RankNodesResponse>, RankNodesRequest, rawScheduler),
    rightSize: unary(rawScheduler.rightSize as UnaryMethod<RightSizeRequest, RightSizeResponse>, RightSizeRequest, rawScheduler),
    rawScheduler,
    close: () => {
      raw.close();
      rawScheduler.close();
    },
  };
}
