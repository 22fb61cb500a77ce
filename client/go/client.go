// Package accelplan is the Go client for accelplan.v1.PlannerService.
//
// Dial hides the channel set-up (plaintext or TLS, optional mutual TLS, a
// bearer token, a default per-call deadline); the returned Client embeds the
// generated accelplanv1.PlannerServiceClient, so every RPC is a method on it:
//
//	c, err := accelplan.Dial("localhost:50051", accelplan.WithTimeout(5*time.Second))
//	if err != nil { ... }
//	defer c.Close()
//	plan, err := c.PlanSharding(ctx, &accelplanv1.PlanShardingRequest{...})
//
// Failed calls return gRPC status errors: Code gives their code and
// FieldViolations the fields the server's google.rpc.BadRequest names.
package accelplan

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	accelplanv1 "github.com/accelplan/accelplan/client/go/accelplan/v1"
)

// DefaultTarget is the address `accelplan serve` listens on by default.
const DefaultTarget = "localhost:50051"

// DefaultTimeout is the deadline given to calls whose context has none.
const DefaultTimeout = 10 * time.Second

// Version is this module's release; it matches the repository's VERSION file
// and the client/go/vX.Y.Z tag the module is published under.
const Version = "0.1.0"

// DefaultServiceConfig is the gRPC service config every Dial starts from:
// round_robin over all addresses the target resolves to (a headless Service's
// pod IPs, or "ipv4:10.0.0.1:50051,10.0.0.2:50051"), so calls spread across
// replicas instead of pinning one HTTP/2 connection to one of them, and up to
// 3 attempts of any PlannerService or SchedulerService call that fails with UNAVAILABLE (every
// RPC is a read-only computation, so retrying is safe). WithServiceConfig
// replaces it; a service config the name resolver returns takes precedence.
const DefaultServiceConfig = `{
  "loadBalancingConfig": [{"round_robin": {}}],
  "methodConfig": [{
    "name": [{"service": "accelplan.v1.PlannerService"}, {"service": "accelplan.v1.SchedulerService"}],
    "retryPolicy": {
      "maxAttempts": 3,
      "initialBackoff": "0.05s",
      "maxBackoff": "1s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}`

// Client calls PlannerService and SchedulerService over one gRPC connection.
// It is safe for concurrent use; Close it when done.
type Client struct {
	accelplanv1.PlannerServiceClient
	accelplanv1.SchedulerServiceClient
	conn *grpc.ClientConn
}

// Conn returns the underlying connection, e.g. to build other stubs on it.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

type config struct {
	tls           *tls.Config
	caFile        string
	certFile      string
	keyFile       string
	token         string
	timeout       time.Duration
	serviceConfig string
	dialOptions   []grpc.DialOption
}

// Option configures Dial.
type Option func(*config)

// WithInsecure uses a plaintext connection. This is the default.
func WithInsecure() Option {
	return func(c *config) { c.tls, c.caFile, c.certFile, c.keyFile = nil, "", "", "" }
}

// WithTLS uses TLS with the given configuration; nil means the system's root
// CAs and no client certificate. Set RootCAs for a custom CA and Certificates
// for mutual TLS, or use WithTLSFiles.
func WithTLS(conf *tls.Config) Option {
	return func(c *config) {
		if conf == nil {
			conf = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		c.tls = conf
	}
}

// WithTLSFiles uses TLS with PEM files read when Dial runs: caFile (empty for
// the system's roots) verifies the server, and certFile with keyFile (both
// empty for none) is the client certificate for mutual TLS.
func WithTLSFiles(caFile, certFile, keyFile string) Option {
	return func(c *config) {
		if c.tls == nil {
			c.tls = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		c.caFile, c.certFile, c.keyFile = caFile, certFile, keyFile
	}
}

// WithBearerToken sends "authorization: Bearer <token>" with every call. Like
// the Python client it is sent over plaintext connections too; use TLS
// whenever the token matters.
func WithBearerToken(token string) Option {
	return func(c *config) { c.token = token }
}

// WithTimeout sets the deadline given to calls whose context has none
// (DefaultTimeout unless set); zero or less leaves such calls without one.
func WithTimeout(d time.Duration) Option {
	return func(c *config) { c.timeout = d }
}

// WithDialOptions passes extra options to grpc.NewClient.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(c *config) { c.dialOptions = append(c.dialOptions, opts...) }
}

// WithServiceConfig replaces DefaultServiceConfig (load balancing policy,
// retries) with another gRPC service config in JSON; "" sends none, leaving
// grpc-go's pick_first without retries.
func WithServiceConfig(json string) Option {
	return func(c *config) { c.serviceConfig = json }
}

// Dial creates a client for target ("host:port" or any gRPC target string).
// Like grpc.NewClient it does not wait for the connection: the first call does.
func Dial(target string, opts ...Option) (*Client, error) {
	cfg := config{timeout: DefaultTimeout, serviceConfig: DefaultServiceConfig}
	for _, o := range opts {
		o(&cfg)
	}
	// Requests are marshalled deterministically (map fields in key order): see deterministicCodec.
	dialOpts := []grpc.DialOption{grpc.WithDefaultCallOptions(grpc.ForceCodecV2(deterministicCodec{}))}
	if cfg.serviceConfig != "" {
		dialOpts = append(dialOpts, grpc.WithDefaultServiceConfig(cfg.serviceConfig))
	}
	if cfg.tls != nil {
		tlsConfig, err := cfg.tlsConfig()
		if err != nil {
			return nil, err
		}
		dialOpts = append(dialOpts, grpc.WithTransportCredentials(credentials.NewTLS(tlsConfig)))
	} else {
		dialOpts = append(dialOpts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if cfg.token != "" {
		dialOpts = append(dialOpts, grpc.WithPerRPCCredentials(bearerToken(cfg.token)))
	}
	if cfg.timeout > 0 {
		dialOpts = append(dialOpts, grpc.WithChainUnaryInterceptor(defaultDeadline(cfg.timeout)))
	}
	dialOpts = append(dialOpts, cfg.dialOptions...)
	conn, err := grpc.NewClient(target, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("accelplan: dial %s: %w", target, err)
	}
	return &Client{
		PlannerServiceClient:   accelplanv1.NewPlannerServiceClient(conn),
		SchedulerServiceClient: accelplanv1.NewSchedulerServiceClient(conn),
		conn:                   conn,
	}, nil
}

func (c *config) tlsConfig() (*tls.Config, error) {
	t := c.tls.Clone()
	if c.caFile != "" {
		pem, err := os.ReadFile(c.caFile)
		if err != nil {
			return nil, fmt.Errorf("accelplan: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("accelplan: CA file %s: no PEM certificates", c.caFile)
		}
		t.RootCAs = pool
	}
	if c.certFile != "" || c.keyFile != "" {
		pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
		if err != nil {
			return nil, fmt.Errorf("accelplan: client certificate: %w", err)
		}
		t.Certificates = append(t.Certificates, pair)
	}
	return t, nil
}

type bearerToken string

func (t bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

// RequireTransportSecurity is false so that plaintext connections (local
// servers, TLS-terminating proxies) can carry the token, as in the Python client.
func (bearerToken) RequireTransportSecurity() bool { return false }

func defaultDeadline(d time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
		invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// Code is the gRPC status code of err: codes.OK for nil, codes.Unknown for an
// error that carries no status.
func Code(err error) codes.Code { return status.Code(err) }

// FieldViolations returns the field violations of every google.rpc.BadRequest
// in err's status details (the grpc-status-details-bin trailer), or nil.
func FieldViolations(err error) []*errdetails.BadRequest_FieldViolation {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return nil
	}
	var out []*errdetails.BadRequest_FieldViolation
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			out = append(out, br.GetFieldViolations()...)
		}
	}
	return out
}
