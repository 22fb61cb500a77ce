package dev.accelplan.client;

import dev.accelplan.v1.EstimateCapacityRequest;
import dev.accelplan.v1.EstimateCapacityResponse;
import dev.accelplan.v1.EstimateMemoryRequest;
import dev.accelplan.v1.EstimatePerformanceRequest;
import dev.accelplan.v1.EstimatePerformanceResponse;
import dev.accelplan.v1.EstimateTrainingMemoryRequest;
import dev.accelplan.v1.EstimateTrainingMemoryResponse;
import dev.accelplan.v1.FilterAcceleratorsRequest;
import dev.accelplan.v1.FilterAcceleratorsResponse;
import dev.accelplan.v1.FindCompatibleModelsRequest;
import dev.accelplan.v1.FindCompatibleModelsResponse;
import dev.accelplan.v1.GetModelRequest;
import dev.accelplan.v1.GetModelResponse;
import dev.accelplan.v1.ListAcceleratorModelsRequest;
import dev.accelplan.v1.ListAcceleratorModelsResponse;
import dev.accelplan.v1.ListModelsRequest;
import dev.accelplan.v1.ListModelsResponse;
import dev.accelplan.v1.ListQuantizationLevelsRequest;
import dev.accelplan.v1.ListQuantizationLevelsResponse;
import dev.accelplan.v1.MemoryEstimate;
import dev.accelplan.v1.PlanShardingRequest;
import dev.accelplan.v1.PlannerServiceGrpc;
import dev.accelplan.v1.QuantizationLevelInfo;
import dev.accelplan.v1.RankNodesRequest;
import dev.accelplan.v1.RankNodesResponse;
import dev.accelplan.v1.RecommendInstancesRequest;
import dev.accelplan.v1.RecommendInstancesResponse;
import dev.accelplan.v1.ResolveQuantizationLevelRequest;
import dev.accelplan.v1.RightSizeRequest;
import dev.accelplan.v1.RightSizeResponse;
import dev.accelplan.v1.SchedulerServiceGrpc;
import dev.accelplan.v1.ShardingPlan;
import dev.accelplan.v1.SuggestQuantizationRequest;
import dev.accelplan.v1.SuggestQuantizationResponse;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ChannelCredentials;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ForwardingClientCall;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * A client for {@code accelplan.v1.PlannerService} that hides channel set-up.
 *
 * <pre>{@code
 * try (AccelplanClient client = AccelplanClient.newBuilder("localhost:50051")
 *     .defaultDeadline(Duration.ofSeconds(10)).build()) {
 *   ShardingPlan plan = client.planSharding(request);      // throws AccelplanException on failure
 *   ShardingPlan raw = client.stub().planSharding(request); // plain stub, throws StatusRuntimeException
 * }
 * }</pre>
 *
 * <p>Plaintext by default; {@link Builder#useTls} (with an optional custom CA and a client key pair for mutual
 * TLS) secures the channel, and {@link Builder#bearerToken} sends {@code authorization: Bearer <token>} on every
 * call. Every call gets the default deadline unless one is given.
 */
public final class AccelplanClient implements AutoCloseable {
  /** The target used when none is given. */
  public static final String DEFAULT_TARGET = "localhost:50051";
  /** The per-call deadline used when none is given. */
  public static final Duration DEFAULT_DEADLINE = Duration.ofSeconds(10);

  /**
   * The gRPC service config every built channel starts from: {@code round_robin} over every address the target
   * resolves to (a headless Service's pod IPs, or {@code "ipv4:10.0.0.1:50051,10.0.0.2:50051"}), so calls spread
   * across replicas instead of riding one HTTP/2 connection to one of them, and up to 3 attempts of a
   * PlannerService call that fails with UNAVAILABLE (every RPC is a side-effect-free computation, so retrying is
   * safe). {@link Builder#serviceConfig} replaces it.
   */
  public static Map<String, Object> defaultServiceConfig() {
    Map<String, Object> retry = Map.of(
        "maxAttempts", 3.0,
        "initialBackoff", "0.05s",
        "maxBackoff", "1s",
        "backoffMultiplier", 2.0,
        "retryableStatusCodes", List.of("UNAVAILABLE"));
    Map<String, Object> method = Map.of(
        "name", List.of(Map.of("service", "accelplan.v1.PlannerService"), Map.of("service", "accelplan.v1.SchedulerService")),
        "retryPolicy", retry);
    return Map.of(
        "loadBalancingConfig", List.of(Map.of("round_robin", Map.of())),
        "methodConfig", List.of(method));
  }

  static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  private final ManagedChannel channel;
  private final boolean ownsChannel;
  private final PlannerServiceGrpc.PlannerServiceBlockingStub baseStub;
  private final SchedulerServiceGrpc.SchedulerServiceBlockingStub baseSchedulerStub;
  private final Duration defaultDeadline;

  private AccelplanClient(ManagedChannel channel, boolean ownsChannel, String bearerToken, Duration defaultDeadline) {
    this.channel = channel;
    this.ownsChannel = ownsChannel;
    this.defaultDeadline = defaultDeadline;
    PlannerServiceGrpc.PlannerServiceBlockingStub stub = PlannerServiceGrpc.newBlockingStub(channel);
    if (bearerToken != null && !bearerToken.isEmpty()) {
      stub = stub.withInterceptors(new BearerTokenInterceptor(bearerToken));
    }
    this.baseStub = stub;
    SchedulerServiceGrpc.SchedulerServiceBlockingStub scheduler = SchedulerServiceGrpc.newBlockingStub(channel);
    if (bearerToken != null && !bearerToken.isEmpty()) {
      scheduler = scheduler.withInterceptors(new BearerTokenInterceptor(bearerToken));
    }
    this.baseSchedulerStub = scheduler;
  }

  /** A builder for a client of {@code target} ({@code host:port} or any gRPC target URI). */
  public static Builder newBuilder(String target) {
    return new Builder(target);
  }

  /** A builder for a client of {@link #DEFAULT_TARGET}. */
  public static Builder newBuilder() {
    return new Builder(DEFAULT_TARGET);
  }

  /**
   * The blocking stub with the default deadline starting now. A deadline is a point in time, so take a fresh
   * stub for each call (or chain of calls that shares one deadline).
   */
  public PlannerServiceGrpc.PlannerServiceBlockingStub stub() {
    return stub(defaultDeadline);
  }

  /** The blocking stub with a deadline of {@code timeout} from now. */
  public PlannerServiceGrpc.PlannerServiceBlockingStub stub(Duration timeout) {
    return baseStub.withDeadlineAfter(timeout.toNanos(), TimeUnit.NANOSECONDS);
  }

  /** The per-call deadline applied by {@link #stub()} and the call methods. */
  public Duration defaultDeadline() {
    return defaultDeadline;
  }

  /** The underlying channel. */
  public ManagedChannel channel() {
    return channel;
  }

  private <R> R call(Duration timeout, Function<PlannerServiceGrpc.PlannerServiceBlockingStub, R> rpc) {
    try {
      return rpc.apply(stub(timeout));
    } catch (StatusRuntimeException e) {
      throw AccelplanException.from(e);
    }
  }

  /** Every quantization level. */
  public ListQuantizationLevelsResponse listQuantizationLevels(ListQuantizationLevelsRequest request) {
    return listQuantizationLevels(request, defaultDeadline);
  }

  public ListQuantizationLevelsResponse listQuantizationLevels(ListQuantizationLevelsRequest request, Duration timeout) {
    return call(timeout, s -> s.listQuantizationLevels(request));
  }

  /** A level given by value, bit width or name. */
  public QuantizationLevelInfo resolveQuantizationLevel(ResolveQuantizationLevelRequest request) {
    return resolveQuantizationLevel(request, defaultDeadline);
  }

  public QuantizationLevelInfo resolveQuantizationLevel(ResolveQuantizationLevelRequest request, Duration timeout) {
    return call(timeout, s -> s.resolveQuantizationLevel(request));
  }

  /** The memory a model needs for inference at a precision. */
  public MemoryEstimate estimateMemory(EstimateMemoryRequest request) {
    return estimateMemory(request, defaultDeadline);
  }

  public MemoryEstimate estimateMemory(EstimateMemoryRequest request, Duration timeout) {
    return call(timeout, s -> s.estimateMemory(request));
  }

  /** The precision that best fits a model on a fleet. */
  public SuggestQuantizationResponse suggestQuantization(SuggestQuantizationRequest request) {
    return suggestQuantization(request, defaultDeadline);
  }

  public SuggestQuantizationResponse suggestQuantization(SuggestQuantizationRequest request, Duration timeout) {
    return call(timeout, s -> s.suggestQuantization(request));
  }

  /** How to split a model across a fleet, with an estimated decode speed. */
  public ShardingPlan planSharding(PlanShardingRequest request) {
    return planSharding(request, defaultDeadline);
  }

  public ShardingPlan planSharding(PlanShardingRequest request, Duration timeout) {
    return call(timeout, s -> s.planSharding(request));
  }

  /** The memory a fine-tuning job needs. */
  public EstimateTrainingMemoryResponse estimateTrainingMemory(EstimateTrainingMemoryRequest request) {
    return estimateTrainingMemory(request, defaultDeadline);
  }

  public EstimateTrainingMemoryResponse estimateTrainingMemory(
      EstimateTrainingMemoryRequest request, Duration timeout) {
    return call(timeout, s -> s.estimateTrainingMemory(request));
  }

  /** Cloud instances that can serve a model, cheapest first. */
  public RecommendInstancesResponse recommendInstances(RecommendInstancesRequest request) {
    return recommendInstances(request, defaultDeadline);
  }

  public RecommendInstancesResponse recommendInstances(RecommendInstancesRequest request, Duration timeout) {
    return call(timeout, s -> s.recommendInstances(request));
  }

  /** One page of the built-in model catalogue. */
  public ListModelsResponse listModels(ListModelsRequest request) {
    return listModels(request, defaultDeadline);
  }

  public ListModelsResponse listModels(ListModelsRequest request, Duration timeout) {
    return call(timeout, s -> s.listModels(request));
  }

  /** One catalogue model. */
  public GetModelResponse getModel(GetModelRequest request) {
    return getModel(request, defaultDeadline);
  }

  public GetModelResponse getModel(GetModelRequest request, Duration timeout) {
    return call(timeout, s -> s.getModel(request));
  }

  /** Catalogue models that fit a memory budget, largest first. */
  public FindCompatibleModelsResponse findCompatibleModels(FindCompatibleModelsRequest request) {
    return findCompatibleModels(request, defaultDeadline);
  }

  public FindCompatibleModelsResponse findCompatibleModels(FindCompatibleModelsRequest request, Duration timeout) {
    return call(timeout, s -> s.findCompatibleModels(request));
  }

  /** The fleet's available devices that meet a requirement, with their capabilities. */
  public FilterAcceleratorsResponse filterAccelerators(FilterAcceleratorsRequest request) {
    return filterAccelerators(request, defaultDeadline);
  }

  public FilterAcceleratorsResponse filterAccelerators(FilterAcceleratorsRequest request, Duration timeout) {
    return call(timeout, s -> s.filterAccelerators(request));
  }

  /** One page of the hardware catalogue: named accelerators with memory, bandwidth and peak FLOPS. */
  public ListAcceleratorModelsResponse listAcceleratorModels(ListAcceleratorModelsRequest request) {
    return listAcceleratorModels(request, defaultDeadline);
  }

  public ListAcceleratorModelsResponse listAcceleratorModels(
      ListAcceleratorModelsRequest request, Duration timeout) {
    return call(timeout, s -> s.listAcceleratorModels(request));
  }

  /** The inverse memory questions: the longest context or the most sequences that fit. */
  public EstimateCapacityResponse estimateCapacity(EstimateCapacityRequest request) {
    return estimateCapacity(request, defaultDeadline);
  }

  public EstimateCapacityResponse estimateCapacity(EstimateCapacityRequest request, Duration timeout) {
    return call(timeout, s -> s.estimateCapacity(request));
  }

  /** Time to first token and decode speed, predicted from a roofline model. */
  public EstimatePerformanceResponse estimatePerformance(EstimatePerformanceRequest request) {
    return estimatePerformance(request, defaultDeadline);
  }

  public EstimatePerformanceResponse estimatePerformance(EstimatePerformanceRequest request, Duration timeout) {
    return call(timeout, s -> s.estimatePerformance(request));
  }

  /** The SchedulerService blocking stub with a deadline of {@code timeout} from now. */
  public SchedulerServiceGrpc.SchedulerServiceBlockingStub schedulerStub(Duration timeout) {
    return baseSchedulerStub.withDeadlineAfter(timeout.toNanos(), TimeUnit.NANOSECONDS);
  }

  private <R> R callScheduler(Duration timeout, Function<SchedulerServiceGrpc.SchedulerServiceBlockingStub, R> rpc) {
    try {
      return rpc.apply(schedulerStub(timeout));
    } catch (StatusRuntimeException e) {
      throw AccelplanException.from(e);
    }
  }

  /** SchedulerService.RankNodes: which nodes can serve a workload, best first. */
  public RankNodesResponse rankNodes(RankNodesRequest request) {
    return rankNodes(request, defaultDeadline);
  }

  public RankNodesResponse rankNodes(RankNodesRequest request, Duration timeout) {
    return callScheduler(timeout, s -> s.rankNodes(request));
  }

  /** SchedulerService.RightSize: devices, counts and precisions that serve a workload, with artifacts. */
  public RightSizeResponse rightSize(RightSizeRequest request) {
    return rightSize(request, defaultDeadline);
  }

  public RightSizeResponse rightSize(RightSizeRequest request, Duration timeout) {
    return callScheduler(timeout, s -> s.rightSize(request));
  }

  /** Shuts the channel down (when this client created it) and waits up to 5 s for calls in flight. */
  @Override
  public void close() {
    if (!ownsChannel) {
      return;
    }
    channel.shutdown();
    try {
      if (!channel.awaitTermination(5, TimeUnit.SECONDS)) {
        channel.shutdownNow();
      }
    } catch (InterruptedException e) {
      channel.shutdownNow();
      Thread.currentThread().interrupt();
    }
  }

  /** Adds {@code authorization: Bearer <token>} to every call's metadata. */
  static final class BearerTokenInterceptor implements ClientInterceptor {
    private final String value;

    BearerTokenInterceptor(String token) {
      this.value = "Bearer " + token;
    }

    @Override
    public <ReqT, RespT> ClientCall<ReqT, RespT> interceptCall(
        MethodDescriptor<ReqT, RespT> method, CallOptions callOptions, Channel next) {
      return new ForwardingClientCall.SimpleForwardingClientCall<>(next.newCall(method, callOptions)) {
        @Override
        public void start(Listener<RespT> responseListener, Metadata headers) {
          headers.put(AUTHORIZATION, value);
          super.start(responseListener, headers);
        }
      };
    }
  }

  /** Configures an {@link AccelplanClient}. */
  public static final class Builder {
    private final String target;
    private boolean useTls;
    private File trustCertFile;
    private InputStream trustCertStream;
    private File certChainFile;
    private File privateKeyFile;
    private InputStream certChainStream;
    private InputStream privateKeyStream;
    private String bearerToken;
    private String authority;
    private Duration defaultDeadline = DEFAULT_DEADLINE;
    private ManagedChannel channel;
    private Map<String, ?> serviceConfig = defaultServiceConfig();

    private Builder(String target) {
      this.target = Objects.requireNonNull(target, "target");
    }

    /** Use TLS (default false: plaintext). Implied by the trust and key options below. */
    public Builder useTls(boolean useTls) {
      this.useTls = useTls;
      return this;
    }

    /** Trust these PEM CA certificates instead of the system roots; implies TLS. */
    public Builder trustCertCollection(File caPem) {
      this.trustCertFile = caPem;
      this.useTls = true;
      return this;
    }

    /** Trust these PEM CA certificates instead of the system roots; implies TLS. */
    public Builder trustCertCollection(InputStream caPem) {
      this.trustCertStream = caPem;
      this.useTls = true;
      return this;
    }

    /** Present this PEM client certificate chain and PKCS#8 key (mutual TLS); implies TLS. */
    public Builder keyManager(File certChainPem, File privateKeyPem) {
      this.certChainFile = certChainPem;
      this.privateKeyFile = privateKeyPem;
      this.useTls = true;
      return this;
    }

    /** Present this PEM client certificate chain and PKCS#8 key (mutual TLS); implies TLS. */
    public Builder keyManager(InputStream certChainPem, InputStream privateKeyPem) {
      this.certChainStream = certChainPem;
      this.privateKeyStream = privateKeyPem;
      this.useTls = true;
      return this;
    }

    /** Check the server's certificate against (and send as :authority) this name instead of the target's host. */
    public Builder overrideAuthority(String authority) {
      this.authority = authority;
      return this;
    }

    /** Send {@code authorization: Bearer <token>} with every call (null or empty: none). */
    public Builder bearerToken(String token) {
      this.bearerToken = token;
      return this;
    }

    /** The deadline of each call that is not given its own (default 10 s). */
    public Builder defaultDeadline(Duration deadline) {
      if (deadline == null || deadline.isNegative() || deadline.isZero()) {
        throw new IllegalArgumentException("defaultDeadline must be positive");
      }
      this.defaultDeadline = deadline;
      return this;
    }

    /**
     * The gRPC service config (load balancing, retries) instead of {@link #defaultServiceConfig()}; {@code null}
     * sends none (grpc-java's pick_first, no retry policy). Numbers must be {@code Double}s, as in parsed JSON.
     */
    public Builder serviceConfig(Map<String, ?> serviceConfig) {
      this.serviceConfig = serviceConfig;
      return this;
    }

    /**
     * Use a channel built elsewhere instead (the target and TLS options are then ignored, and {@link #close()}
     * leaves the channel open).
     */
    public Builder channel(ManagedChannel channel) {
      this.channel = channel;
      return this;
    }

    public AccelplanClient build() {
      if (channel != null) {
        return new AccelplanClient(channel, false, bearerToken, defaultDeadline);
      }
      AddressListNameResolverProvider.registerDefaults(); // ipv4:a:p,b:p and ipv6:... targets
      ManagedChannelBuilder<?> builder = Grpc.newChannelBuilder(target, credentials());
      if (authority != null) {
        builder.overrideAuthority(authority);
      }
      if (serviceConfig != null) {
        builder.defaultServiceConfig(serviceConfig).enableRetry();
      }
      return new AccelplanClient(builder.build(), true, bearerToken, defaultDeadline);
    }

    private ChannelCredentials credentials() {
      if (!useTls) {
        return InsecureChannelCredentials.create();
      }
      try {
        TlsChannelCredentials.Builder tls = TlsChannelCredentials.newBuilder();
        if (trustCertFile != null) {
          tls.trustManager(trustCertFile);
        } else if (trustCertStream != null) {
          tls.trustManager(trustCertStream);
        }
        if (certChainFile != null) {
          tls.keyManager(certChainFile, privateKeyFile);
        } else if (certChainStream != null) {
          tls.keyManager(certChainStream, privateKeyStream);
        }
        return tls.build();
      } catch (IOException e) {
        throw new UncheckedIOException("cannot read TLS certificates or key", e);
      }
    }
  }
}
