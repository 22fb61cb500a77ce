package accelplan_test

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"

	accelplan "github.com/accelplan/accelplan/client/go"
	accelplanv1 "github.com/accelplan/accelplan/client/go/accelplan/v1"
)

type countingPlanner struct {
	accelplanv1.UnimplementedPlannerServiceServer
	calls atomic.Int64
}

func (c *countingPlanner) ListQuantizationLevels(context.Context, *accelplanv1.ListQuantizationLevelsRequest,
) (*accelplanv1.ListQuantizationLevelsResponse, error) {
	c.calls.Add(1)
	return &accelplanv1.ListQuantizationLevelsResponse{}, nil
}

// Three loopback servers behind one "ipv4:" target: the default service config
// (round_robin) sends each a third of the calls; WithServiceConfig("") (grpc-go's
// pick_first) sends them all to one.
func TestDefaultChannelBalancesAnIPv4List(t *testing.T) {
	var servers []*countingPlanner
	var addrs []string
	for range 3 {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := grpc.NewServer()
		p := &countingPlanner{}
		accelplanv1.RegisterPlannerServiceServer(srv, p)
		go func() { _ = srv.Serve(lis) }()
		t.Cleanup(srv.Stop)
		servers = append(servers, p)
		addrs = append(addrs, lis.Addr().String())
	}
	target := "ipv4:" + strings.Join(addrs, ",")
	call := func(c *accelplan.Client, n int) {
		for range n {
			if _, err := c.ListQuantizationLevels(context.Background(), &accelplanv1.ListQuantizationLevelsRequest{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	counts := func() (out []int64) {
		for _, s := range servers {
			out = append(out, s.calls.Swap(0))
		}
		return out
	}

	c, err := accelplan.Dial(target)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// round_robin starts with the subchannels that are READY: warm them all up first.
	call(c, 30)
	counts()
	call(c, 90)
	for i, n := range counts() {
		if n < 25 {
			t.Errorf("server %d got %d of 90 calls with round_robin, want about 30", i, n)
		}
	}

	pf, err := accelplan.Dial(target, accelplan.WithServiceConfig(""))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	call(pf, 30)
	var busy int
	for _, n := range counts() {
		if n > 0 {
			busy++
		}
	}
	if busy != 1 {
		t.Errorf("pick_first spread calls over %d servers, want 1", busy)
	}
}
