package dev.accelplan.client;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.BadRequest;
import io.grpc.Status;
import io.grpc.protobuf.StatusProto;
import java.util.ArrayList;
import java.util.List;

/**
 * A failed PlannerService call: its gRPC status code, message, and the {@link BadRequest.FieldViolation}s
 * decoded from the {@code grpc-status-details-bin} trailer ({@code google.rpc.Status -> details -> BadRequest}).
 */
public final class AccelplanException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final Status.Code code;
  private final String description;
  private final transient List<BadRequest.FieldViolation> fieldViolations;

  private AccelplanException(
      Status.Code code, String description, List<BadRequest.FieldViolation> fieldViolations, Throwable cause) {
    super(code + (description.isEmpty() ? "" : ": " + description), cause);
    this.code = code;
    this.description = description;
    this.fieldViolations = List.copyOf(fieldViolations);
  }

  /** Wraps any failure of a gRPC call (normally a {@link io.grpc.StatusRuntimeException}). */
  public static AccelplanException from(Throwable t) {
    if (t instanceof AccelplanException e) {
      return e;
    }
    Status status = Status.fromThrowable(t);
    String description = status.getDescription() == null ? "" : status.getDescription();
    return new AccelplanException(status.getCode(), description, fieldViolations(t), t);
  }

  /** The field violations carried by a failed call's status details; empty when there are none. */
  public static List<BadRequest.FieldViolation> fieldViolations(Throwable t) {
    if (t instanceof AccelplanException e) {
      return e.getFieldViolations();
    }
    com.google.rpc.Status details = StatusProto.fromThrowable(t);
    List<BadRequest.FieldViolation> out = new ArrayList<>();
    if (details == null) {
      return out;
    }
    for (Any any : details.getDetailsList()) {
      if (any.is(BadRequest.class)) {
        try {
          out.addAll(any.unpack(BadRequest.class).getFieldViolationsList());
        } catch (InvalidProtocolBufferException ignored) {
          // A malformed detail carries no usable violations.
        }
      }
    }
    return out;
  }

  /** The gRPC status code, e.g. {@link Status.Code#INVALID_ARGUMENT}. */
  public Status.Code getCode() {
    return code;
  }

  /** The server's status message; empty when it sent none. */
  public String getDescription() {
    return description;
  }

  /** The bad request fields (e.g. {@code model.parameter_count}) and why each is bad; may be empty. */
  public List<BadRequest.FieldViolation> getFieldViolations() {
    return fieldViolations;
  }

  /** Just the field paths of {@link #getFieldViolations()}. */
  public List<String> getViolatedFields() {
    return fieldViolations.stream().map(BadRequest.FieldViolation::getField).toList();
  }
}
