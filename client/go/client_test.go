package accelplan_test

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	accelplan "github.com/accelplan/accelplan/client/go"
	accelplanv1 "github.com/accelplan/accelplan/client/go/accelplan/v1"
)

// fakePlanner records what each call carried and fails EstimateMemory with a BadRequest.
type fakePlanner struct {
	accelplanv1.UnimplementedPlannerServiceServer
	auth     []string
	deadline time.Duration // remaining when the call arrived; 0 when none
}

func (f *fakePlanner) record(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.auth = md.Get("authorization")
	f.deadline = 0
	if d, ok := ctx.Deadline(); ok {
		f.deadline = time.Until(d)
	}
}

func (f *fakePlanner) ListQuantizationLevels(ctx context.Context, _ *accelplanv1.ListQuantizationLevelsRequest,
) (*accelplanv1.ListQuantizationLevelsResponse, error) {
	f.record(ctx)
	return &accelplanv1.ListQuantizationLevelsResponse{}, nil
}

func (f *fakePlanner) EstimateMemory(ctx context.Context, _ *accelplanv1.EstimateMemoryRequest,
) (*accelplanv1.MemoryEstimate, error) {
	f.record(ctx)
	st, err := status.New(codes.InvalidArgument, "bad model").WithDetails(&errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: "model.parameter_count", Description: "must be 1 to 10^15"},
		},
	})
	if err != nil {
		return nil, err
	}
	return nil, st.Err()
}

func dialFake(t *testing.T, opts ...accelplan.Option) (*accelplan.Client, *fakePlanner) {
	t.Helper()
	fake := &fakePlanner{}
	return dialServer(t, func(srv *grpc.Server) { accelplanv1.RegisterPlannerServiceServer(srv, fake) }, opts...), fake
}

// dialServer serves what register adds on an in-memory listener and dials it with opts.
func dialServer(t *testing.T, register func(*grpc.Server), opts ...accelplan.Option) *accelplan.Client {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	register(srv)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	dialer := func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }
	opts = append(opts, accelplan.WithDialOptions(grpc.WithContextDialer(dialer)))
	c, err := accelplan.Dial("passthrough:///bufnet", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestDefaults(t *testing.T) {
	c, fake := dialFake(t)
	if _, err := c.ListQuantizationLevels(context.Background(), &accelplanv1.ListQuantizationLevelsRequest{}); err != nil {
		t.Fatal(err)
	}
	if len(fake.auth) != 0 {
		t.Errorf("authorization sent without a token: %v", fake.auth)
	}
	if fake.deadline <= accelplan.DefaultTimeout-2*time.Second || fake.deadline > accelplan.DefaultTimeout {
		t.Errorf("deadline %v, want about %v", fake.deadline, accelplan.DefaultTimeout)
	}
}

func TestBearerTokenAndTimeout(t *testing.T) {
	c, fake := dialFake(t, accelplan.WithBearerToken("s3cret"), accelplan.WithTimeout(3*time.Second))
	if _, err := c.ListQuantizationLevels(context.Background(), &accelplanv1.ListQuantizationLevelsRequest{}); err != nil {
		t.Fatal(err)
	}
	if len(fake.auth) != 1 || fake.auth[0] != "Bearer s3cret" {
		t.Errorf("authorization = %v", fake.auth)
	}
	if fake.deadline <= time.Second || fake.deadline > 3*time.Second {
		t.Errorf("deadline %v, want about 3s", fake.deadline)
	}
}

func TestCallerDeadlineWins(t *testing.T) {
	c, fake := dialFake(t, accelplan.WithTimeout(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.ListQuantizationLevels(ctx, &accelplanv1.ListQuantizationLevelsRequest{}); err != nil {
		t.Fatal(err)
	}
	if fake.deadline <= 20*time.Second {
		t.Errorf("deadline %v, want the caller's 30s", fake.deadline)
	}
}

func TestNoTimeout(t *testing.T) {
	c, fake := dialFake(t, accelplan.WithTimeout(0))
	if _, err := c.ListQuantizationLevels(context.Background(), &accelplanv1.ListQuantizationLevelsRequest{}); err != nil {
		t.Fatal(err)
	}
	if fake.deadline != 0 {
		t.Errorf("deadline %v, want none", fake.deadline)
	}
}

func TestFieldViolations(t *testing.T) {
	c, _ := dialFake(t)
	_, err := c.EstimateMemory(context.Background(), &accelplanv1.EstimateMemoryRequest{})
	if got := accelplan.Code(err); got != codes.InvalidArgument {
		t.Fatalf("code %v, want InvalidArgument (err %v)", got, err)
	}
	v := accelplan.FieldViolations(err)
	if len(v) != 1 || v[0].GetField() != "model.parameter_count" {
		t.Errorf("violations %v", v)
	}
	if accelplan.FieldViolations(nil) != nil || accelplan.Code(nil) != codes.OK {
		t.Error("nil error should have no violations and code OK")
	}
}

func TestTLSFilesErrors(t *testing.T) {
	if _, err := accelplan.Dial("localhost:1", accelplan.WithTLSFiles("/nonexistent/ca.pem", "", "")); err == nil {
		t.Error("missing CA file: want an error")
	}
	if _, err := accelplan.Dial("localhost:1", accelplan.WithTLS(nil)); err != nil {
		t.Errorf("TLS with system roots: %v", err)
	}
}
