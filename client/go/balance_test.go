package accelplan_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// startCounting starts three loopback servers.
func startCounting(t *testing.T) ([]*countingPlanner, []string, []*grpc.Server) {
	t.Helper()
	var planners []*countingPlanner
	var addrs []string
	var servers []*grpc.Server
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
		planners = append(planners, p)
		addrs = append(addrs, lis.Addr().String())
		servers = append(servers, srv)
	}
	return planners, addrs, servers
}

// Stopping one of three servers in the middle of a load loses no call: round_robin
// drops its address and the retry policy resends calls that failed with UNAVAILABLE.
func TestStoppingAReplicaUnderLoadLosesNoCall(t *testing.T) {
	planners, addrs, servers := startCounting(t)
	c, err := accelplan.Dial("ipv4:" + strings.Join(addrs, ","))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var failed atomic.Int64
	var done sync.WaitGroup
	for range 8 {
		done.Add(1)
		go func() {
			defer done.Done()
			for range 150 {
				if _, err := c.ListQuantizationLevels(context.Background(), &accelplanv1.ListQuantizationLevelsRequest{}); err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	for planners[0].calls.Load() < 50 {
		time.Sleep(time.Millisecond)
	}
	servers[0].Stop() // closes its connections and in-flight calls at once
	done.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of 1200 calls failed after a replica stopped", n)
	}
	if planners[1].calls.Load() == 0 || planners[2].calls.Load() == 0 {
		t.Fatal("the surviving replicas got no calls")
	}
}

// Three loopback servers behind one "ipv4:" target: the default service config
// (round_robin) sends each a third of the calls; WithServiceConfig("") (grpc-go's
// pick_first) sends them all to one.
func TestDefaultChannelBalancesAnIPv4List(t *testing.T) {
	servers, addrs, _ := startCounting(t)
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
