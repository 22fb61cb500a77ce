package accelplan_test

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	accelplan "github.com/accelplan/accelplan/client/go"
	accelplanv1 "github.com/accelplan/accelplan/client/go/accelplan/v1"
)

// echoScheduler answers RankNodes with the request it parsed, for comparison.
type echoScheduler struct {
	accelplanv1.UnimplementedSchedulerServiceServer
	got []*accelplanv1.RankNodesRequest
}

func (e *echoScheduler) RankNodes(_ context.Context, req *accelplanv1.RankNodesRequest,
) (*accelplanv1.RankNodesResponse, error) {
	e.got = append(e.got, req)
	return &accelplanv1.RankNodesResponse{FeasibleCount: uint32(len(req.GetNodes()))}, nil
}

func model(id string) *accelplanv1.ModelSpec {
	return &accelplanv1.ModelSpec{Source: &accelplanv1.ModelSpec_ModelId{ModelId: id}}
}

func nodes(n int) []*accelplanv1.NodeInventory {
	out := make([]*accelplanv1.NodeInventory, n)
	for i := range out {
		out[i] = &accelplanv1.NodeInventory{
			Name: fmt.Sprintf("node-%d", i),
			Labels: map[string]string{
				"nvidia.com/gpu.product": "NVIDIA-L4", "nvidia.com/gpu.count": fmt.Sprint(1 + i%4), "zone": "a",
			},
		}
	}
	return out
}

func TestRankPreparedSendsTheRequestRankNodesWould(t *testing.T) {
	echo := &echoScheduler{}
	c := dialServer(t, func(srv *grpc.Server) { accelplanv1.RegisterSchedulerServiceServer(srv, echo) })

	base := &accelplanv1.RankNodesRequest{
		Workload:      &accelplanv1.Workload{Model: model("ignored")},
		Nodes:         nodes(300),
		Policy:        accelplanv1.PlacementPolicy_PLACEMENT_POLICY_FASTEST,
		TopK:          7,
		VerdictLayout: accelplanv1.VerdictLayout_VERDICT_LAYOUT_GROUPED,
	}
	prepared, err := accelplan.PrepareNodes(base)
	if err != nil {
		t.Fatal(err)
	}
	if base.GetWorkload().GetModel().GetModelId() != "ignored" {
		t.Fatal("PrepareNodes changed the caller's request")
	}
	for _, w := range []*accelplanv1.Workload{
		{Model: model("llama-3.1-70b"), ContextLength: 8192, Concurrency: 4},
		{Model: model("qwen2.5-32b"), Quantization: accelplanv1.QuantizationLevel_QUANTIZATION_LEVEL_INT4},
		nil,
	} {
		resp, err := c.RankPrepared(context.Background(), w, prepared)
		if err != nil {
			t.Fatal(err)
		}
		want := proto.Clone(base).(*accelplanv1.RankNodesRequest)
		want.Workload = w
		got := echo.got[len(echo.got)-1]
		if !proto.Equal(got, want) {
			t.Fatalf("server read %v, want %v", got.GetWorkload(), want.GetWorkload())
		}
		if resp.GetFeasibleCount() != 300 {
			t.Fatalf("answer %v", resp)
		}
	}
}
