package dev.accelplan.client;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import com.google.protobuf.Any;
import com.google.rpc.BadRequest;
import com.google.rpc.Code;
import dev.accelplan.v1.EstimateMemoryRequest;
import dev.accelplan.v1.MemoryEstimate;
import dev.accelplan.v1.ModelSpec;
import dev.accelplan.v1.PlannerServiceGrpc;
import dev.accelplan.v1.QuantizationLevel;
import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.TlsServerCredentials;
import io.grpc.protobuf.StatusProto;
import io.grpc.stub.StreamObserver;
import io.grpc.testing.TlsTesting;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.After;
import org.junit.Before;
import org.junit.Test;

/** The client against an in-test mutual-TLS server: bearer token, deadline, and error decoding. */
public class AccelplanClientTest {
  private static final Context.Key<String> AUTH = Context.key("authorization");

  private Server server;
  private final AtomicReference<String> seenAuth = new AtomicReference<>();
  private final AtomicLong seenDeadlineMs = new AtomicLong(-1);

  @Before
  public void startServer() throws Exception {
    PlannerServiceGrpc.PlannerServiceImplBase impl = new PlannerServiceGrpc.PlannerServiceImplBase() {
      @Override
      public void estimateMemory(EstimateMemoryRequest req, StreamObserver<MemoryEstimate> out) {
        seenAuth.set(AUTH.get());
        if (Context.current().getDeadline() != null) {
          seenDeadlineMs.set(Context.current().getDeadline().timeRemaining(java.util.concurrent.TimeUnit.MILLISECONDS));
        }
        if (req.getModel().getParameterCount() == 0) {
          com.google.rpc.Status st = com.google.rpc.Status.newBuilder()
              .setCode(Code.INVALID_ARGUMENT_VALUE)
              .setMessage("model.parameter_count: must be at least 1")
              .addDetails(Any.pack(BadRequest.newBuilder()
                  .addFieldViolations(BadRequest.FieldViolation.newBuilder()
                      .setField("model.parameter_count").setDescription("must be at least 1"))
                  .build()))
              .build();
          out.onError(StatusProto.toStatusRuntimeException(st));
          return;
        }
        out.onNext(MemoryEstimate.newBuilder().setParameterCount(req.getModel().getParameterCount()).build());
        out.onCompleted();
      }
    };
    ServerInterceptor captureAuth = new ServerInterceptor() {
      @Override
      public <ReqT, RespT> ServerCall.Listener<ReqT> interceptCall(
          ServerCall<ReqT, RespT> call, Metadata headers, ServerCallHandler<ReqT, RespT> next) {
        Context ctx = Context.current().withValue(AUTH, headers.get(AccelplanClient.AUTHORIZATION));
        return Contexts.interceptCall(ctx, call, headers, next);
      }
    };
    TlsServerCredentials.Builder creds = TlsServerCredentials.newBuilder()
        .keyManager(TlsTesting.loadCert("server1.pem"), TlsTesting.loadCert("server1.key"))
        .trustManager(TlsTesting.loadCert("ca.pem"))
        .clientAuth(TlsServerCredentials.ClientAuth.REQUIRE);
    server = Grpc.newServerBuilderForPort(0, creds.build())
        .addService(ServerInterceptors.intercept(impl, captureAuth))
        .build()
        .start();
  }

  @After
  public void stopServer() {
    server.shutdownNow();
  }

  private AccelplanClient.Builder mtlsClient() throws Exception {
    return AccelplanClient.newBuilder("localhost:" + server.getPort())
        .trustCertCollection(TlsTesting.loadCert("ca.pem"))
        .keyManager(TlsTesting.loadCert("client.pem"), TlsTesting.loadCert("client.key"))
        .overrideAuthority("foo.test.google.fr");
  }

  private static EstimateMemoryRequest request(long params) {
    return EstimateMemoryRequest.newBuilder()
        .setModel(ModelSpec.newBuilder().setParameterCount(params))
        .setQuantization(QuantizationLevel.QUANTIZATION_LEVEL_INT4)
        .build();
  }

  @Test
  public void mutualTlsBearerTokenAndDeadline() throws Exception {
    try (AccelplanClient client = mtlsClient().bearerToken("s3cret").defaultDeadline(Duration.ofSeconds(7)).build()) {
      // 2^53 + 1 must survive as a uint64.
      assertEquals(9007199254740993L, client.estimateMemory(request(9007199254740993L)).getParameterCount());
      assertEquals("Bearer s3cret", seenAuth.get());
      assertTrue("deadline " + seenDeadlineMs.get(), seenDeadlineMs.get() > 5000 && seenDeadlineMs.get() <= 7000);
      client.stub(Duration.ofSeconds(2)).estimateMemory(request(1));
      assertTrue("deadline " + seenDeadlineMs.get(), seenDeadlineMs.get() > 0 && seenDeadlineMs.get() <= 2000);
    }
  }

  @Test
  public void noTokenSendsNoAuthorization() throws Exception {
    try (AccelplanClient client = mtlsClient().build()) {
      client.estimateMemory(request(1));
      assertEquals(null, seenAuth.get());
    }
  }

  @Test
  public void errorsCarryCodeAndFieldViolations() throws Exception {
    try (AccelplanClient client = mtlsClient().build()) {
      client.estimateMemory(request(0));
      fail("expected AccelplanException");
    } catch (AccelplanException e) {
      assertEquals(Status.Code.INVALID_ARGUMENT, e.getCode());
      assertEquals(List.of("model.parameter_count"), e.getViolatedFields());
      assertEquals("must be at least 1", e.getFieldViolations().get(0).getDescription());
    }
  }

  @Test
  public void plaintextClientCannotReachTlsServer() {
    try (AccelplanClient client = AccelplanClient.newBuilder("localhost:" + server.getPort())
        .defaultDeadline(Duration.ofSeconds(5)).build()) {
      client.estimateMemory(request(1));
      fail("expected AccelplanException");
    } catch (AccelplanException e) {
      assertEquals(Status.Code.UNAVAILABLE, e.getCode());
      assertTrue(e.getFieldViolations().isEmpty());
    }
  }
}
