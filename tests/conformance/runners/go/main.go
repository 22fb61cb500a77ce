// Command conformance-go runs tests/conformance/cases through the Go SDK.
//
//	conformance-go --server localhost:PORT --cases tests/conformance/cases
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	accelplan "github.com/accelplan/accelplan/client/go"
	accelplanv1 "github.com/accelplan/accelplan/client/go/accelplan/v1"
)

// rpcFunc parses a request in proto3 JSON and makes the call.
type rpcFunc func(ctx context.Context, c *accelplan.Client, request []byte) (proto.Message, error)

func unary[Req, Resp proto.Message](newReq func() Req,
	method func(accelplanv1.PlannerServiceClient) func(context.Context, Req, ...grpc.CallOption) (Resp, error),
) rpcFunc {
	return func(ctx context.Context, c *accelplan.Client, request []byte) (proto.Message, error) {
		req := newReq()
		if err := protojson.Unmarshal(request, req); err != nil {
			return nil, fmt.Errorf("cannot parse request: %w", err)
		}
		resp, err := method(c)(ctx, req)
		if err != nil {
			return nil, err
		}
		return resp, nil
	}
}

type client = accelplanv1.PlannerServiceClient

// scheduled is unary for SchedulerService methods.
func scheduled[Req, Resp proto.Message](newReq func() Req,
	method func(accelplanv1.SchedulerServiceClient) func(context.Context, Req, ...grpc.CallOption) (Resp, error),
) rpcFunc {
	return func(ctx context.Context, c *accelplan.Client, request []byte) (proto.Message, error) {
		req := newReq()
		if err := protojson.Unmarshal(request, req); err != nil {
			return nil, fmt.Errorf("cannot parse request: %w", err)
		}
		resp, err := method(c.SchedulerServiceClient)(ctx, req)
		if err != nil {
			return nil, err
		}
		return resp, nil
	}
}

var rpcs = map[string]rpcFunc{
	"ListQuantizationLevels": unary(func() *accelplanv1.ListQuantizationLevelsRequest { return &accelplanv1.ListQuantizationLevelsRequest{} }, func(c client) func(context.Context, *accelplanv1.ListQuantizationLevelsRequest, ...grpc.CallOption) (*accelplanv1.ListQuantizationLevelsResponse, error) {
		return c.ListQuantizationLevels
	}),
	"ResolveQuantizationLevel": unary(func() *accelplanv1.ResolveQuantizationLevelRequest {
		return &accelplanv1.ResolveQuantizationLevelRequest{}
	}, func(c client) func(context.Context, *accelplanv1.ResolveQuantizationLevelRequest, ...grpc.CallOption) (*accelplanv1.QuantizationLevelInfo, error) {
		return c.ResolveQuantizationLevel
	}),
	"EstimateMemory": unary(func() *accelplanv1.EstimateMemoryRequest { return &accelplanv1.EstimateMemoryRequest{} }, func(c client) func(context.Context, *accelplanv1.EstimateMemoryRequest, ...grpc.CallOption) (*accelplanv1.MemoryEstimate, error) {
		return c.EstimateMemory
	}),
	"SuggestQuantization": unary(func() *accelplanv1.SuggestQuantizationRequest { return &accelplanv1.SuggestQuantizationRequest{} }, func(c client) func(context.Context, *accelplanv1.SuggestQuantizationRequest, ...grpc.CallOption) (*accelplanv1.SuggestQuantizationResponse, error) {
		return c.SuggestQuantization
	}),
	"PlanSharding": unary(func() *accelplanv1.PlanShardingRequest { return &accelplanv1.PlanShardingRequest{} }, func(c client) func(context.Context, *accelplanv1.PlanShardingRequest, ...grpc.CallOption) (*accelplanv1.ShardingPlan, error) {
		return c.PlanSharding
	}),
	"EstimateTrainingMemory": unary(func() *accelplanv1.EstimateTrainingMemoryRequest { return &accelplanv1.EstimateTrainingMemoryRequest{} }, func(c client) func(context.Context, *accelplanv1.EstimateTrainingMemoryRequest, ...grpc.CallOption) (*accelplanv1.EstimateTrainingMemoryResponse, error) {
		return c.EstimateTrainingMemory
	}),
	"RecommendInstances": unary(func() *accelplanv1.RecommendInstancesRequest { return &accelplanv1.RecommendInstancesRequest{} }, func(c client) func(context.Context, *accelplanv1.RecommendInstancesRequest, ...grpc.CallOption) (*accelplanv1.RecommendInstancesResponse, error) {
		return c.RecommendInstances
	}),
	"ListModels": unary(func() *accelplanv1.ListModelsRequest { return &accelplanv1.ListModelsRequest{} }, func(c client) func(context.Context, *accelplanv1.ListModelsRequest, ...grpc.CallOption) (*accelplanv1.ListModelsResponse, error) {
		return c.ListModels
	}),
	"GetModel": unary(func() *accelplanv1.GetModelRequest { return &accelplanv1.GetModelRequest{} }, func(c client) func(context.Context, *accelplanv1.GetModelRequest, ...grpc.CallOption) (*accelplanv1.GetModelResponse, error) {
		return c.GetModel
	}),
	"FindCompatibleModels": unary(func() *accelplanv1.FindCompatibleModelsRequest { return &accelplanv1.FindCompatibleModelsRequest{} }, func(c client) func(context.Context, *accelplanv1.FindCompatibleModelsRequest, ...grpc.CallOption) (*accelplanv1.FindCompatibleModelsResponse, error) {
		return c.FindCompatibleModels
	}),
	"FilterAccelerators": unary(func() *accelplanv1.FilterAcceleratorsRequest { return &accelplanv1.FilterAcceleratorsRequest{} }, func(c client) func(context.Context, *accelplanv1.FilterAcceleratorsRequest, ...grpc.CallOption) (*accelplanv1.FilterAcceleratorsResponse, error) {
		return c.FilterAccelerators
	}),
	"ListAcceleratorModels": unary(func() *accelplanv1.ListAcceleratorModelsRequest { return &accelplanv1.ListAcceleratorModelsRequest{} }, func(c client) func(context.Context, *accelplanv1.ListAcceleratorModelsRequest, ...grpc.CallOption) (*accelplanv1.ListAcceleratorModelsResponse, error) {
		return c.ListAcceleratorModels
	}),
	"EstimateCapacity": unary(func() *accelplanv1.EstimateCapacityRequest { return &accelplanv1.EstimateCapacityRequest{} }, func(c client) func(context.Context, *accelplanv1.EstimateCapacityRequest, ...grpc.CallOption) (*accelplanv1.EstimateCapacityResponse, error) {
		return c.EstimateCapacity
	}),
	"EstimatePerformance": unary(func() *accelplanv1.EstimatePerformanceRequest { return &accelplanv1.EstimatePerformanceRequest{} }, func(c client) func(context.Context, *accelplanv1.EstimatePerformanceRequest, ...grpc.CallOption) (*accelplanv1.EstimatePerformanceResponse, error) {
		return c.EstimatePerformance
	}),
	"RankNodes": scheduled(func() *accelplanv1.RankNodesRequest { return &accelplanv1.RankNodesRequest{} }, func(c accelplanv1.SchedulerServiceClient) func(context.Context, *accelplanv1.RankNodesRequest, ...grpc.CallOption) (*accelplanv1.RankNodesResponse, error) {
		return c.RankNodes
	}),
	"RightSize": scheduled(func() *accelplanv1.RightSizeRequest { return &accelplanv1.RightSizeRequest{} }, func(c accelplanv1.SchedulerServiceClient) func(context.Context, *accelplanv1.RightSizeRequest, ...grpc.CallOption) (*accelplanv1.RightSizeResponse, error) {
		return c.RightSize
	}),
}

// codeNames are the canonical status code names that cases use.
var codeNames = map[codes.Code]string{
	codes.OK: "OK", codes.Canceled: "CANCELLED", codes.Unknown: "UNKNOWN",
	codes.InvalidArgument: "INVALID_ARGUMENT", codes.DeadlineExceeded: "DEADLINE_EXCEEDED",
	codes.NotFound: "NOT_FOUND", codes.AlreadyExists: "ALREADY_EXISTS",
	codes.PermissionDenied: "PERMISSION_DENIED", codes.ResourceExhausted: "RESOURCE_EXHAUSTED",
	codes.FailedPrecondition: "FAILED_PRECONDITION", codes.Aborted: "ABORTED",
	codes.OutOfRange: "OUT_OF_RANGE", codes.Unimplemented: "UNIMPLEMENTED", codes.Internal: "INTERNAL",
	codes.Unavailable: "UNAVAILABLE", codes.DataLoss: "DATA_LOSS", codes.Unauthenticated: "UNAUTHENTICATED",
}

func codeName(c codes.Code) string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("CODE_%d", uint32(c))
}

type testCase struct {
	Name      string          `json:"name"`
	RPC       string          `json:"rpc"`
	Request   json.RawMessage `json:"request"`
	Expect    json.RawMessage `json:"expect"`
	Tolerance *float64        `json:"tolerance"`
}

type expectation struct {
	Response        any       `json:"response"`
	Code            *string   `json:"code"`
	FieldViolations *[]string `json:"fieldViolations"`
}

func decodeNumbers(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after JSON value")
	}
	return nil
}

// run returns "" when the case passes, else why it failed.
func run(c *accelplan.Client, tc testCase) string {
	call, ok := rpcs[tc.RPC]
	if !ok {
		return fmt.Sprintf("unknown rpc %q", tc.RPC)
	}
	var exp expectation
	var expKeys map[string]json.RawMessage
	if err := decodeNumbers(tc.Expect, &expKeys); err != nil {
		return fmt.Sprintf("bad expect: %v", err)
	}
	if err := decodeNumbers(tc.Expect, &exp); err != nil {
		return fmt.Sprintf("bad expect: %v", err)
	}
	_, wantResponse := expKeys["response"]
	if wantResponse == (exp.Code != nil) {
		return "bad expect: needs exactly one of response and code"
	}
	tolerance := 1e-9
	if tc.Tolerance != nil {
		tolerance = *tc.Tolerance
	}
	request := []byte(tc.Request)
	if len(bytes.TrimSpace(request)) == 0 || string(bytes.TrimSpace(request)) == "null" {
		request = []byte("{}")
	}

	// The client's default deadline (10 s) applies: the context has none.
	resp, err := call(context.Background(), c, request)
	if err != nil && strings.HasPrefix(err.Error(), "cannot parse request") {
		return err.Error()
	}
	if wantResponse {
		if err != nil {
			return fmt.Sprintf("call failed: %s: %s", codeName(accelplan.Code(err)), err)
		}
		printed, merr := protojson.MarshalOptions{}.Marshal(resp)
		if merr != nil {
			return fmt.Sprintf("cannot print response: %v", merr)
		}
		var actual any
		if derr := decodeNumbers(printed, &actual); derr != nil {
			return fmt.Sprintf("cannot read printed response: %v", derr)
		}
		if why := match(exp.Response, actual, tolerance, "response"); why != "" {
			return why
		}
		return ""
	}
	if err == nil {
		return fmt.Sprintf("expected %s, call succeeded", *exp.Code)
	}
	if got := codeName(accelplan.Code(err)); got != *exp.Code {
		return fmt.Sprintf("expected %s, got %s: %s", *exp.Code, got, err)
	}
	if exp.FieldViolations != nil {
		want := map[string]bool{}
		for _, f := range *exp.FieldViolations {
			want[f] = true
		}
		got := map[string]bool{}
		for _, v := range accelplan.FieldViolations(err) {
			got[v.GetField()] = true
		}
		if !sameSet(want, got) {
			return fmt.Sprintf("expected field violations %v, got %v", keys(want), keys(got))
		}
	}
	return ""
}

func sameSet(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func main() {
	server := flag.String("server", "", "server address, HOST:PORT")
	casesDir := flag.String("cases", "", "folder of *.json case files")
	flag.Parse()
	if *server == "" || *casesDir == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: run.sh --server HOST:PORT --cases DIR")
		os.Exit(2)
	}
	files, err := filepath.Glob(filepath.Join(*casesDir, "*.json"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	sort.Strings(files)

	c, err := accelplan.Dial(*server, accelplan.WithTimeout(10*time.Second))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer c.Close()

	passed, failed := 0, 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		var doc struct {
			Cases []testCase `json:"cases"`
		}
		if err == nil {
			err = json.Unmarshal(data, &doc)
		}
		if err != nil {
			fmt.Printf("FAIL %s: cannot read case file: %v\n", filepath.Base(file), err)
			failed++
			continue
		}
		for _, tc := range doc.Cases {
			if why := run(c, tc); why != "" {
				fmt.Printf("FAIL %s: %s\n", tc.Name, why)
				failed++
			} else {
				fmt.Printf("PASS %s\n", tc.Name)
				passed++
			}
		}
	}
	fmt.Printf("%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		c.Close()
		os.Exit(1)
	}
}
