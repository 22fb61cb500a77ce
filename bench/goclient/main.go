// Command goclient times SchedulerService calls from a compiled client, as a Go scheduler
// plugin (Kueue, scheduler-plugins) would make them: bench.scheduler_bench --own-process runs it.
//
//	go run . -server 127.0.0.1:50051 -method RankNodes -requests reqs.bin -warm 3 -rounds 7 -out times.json
//
// The requests file holds length-prefixed serialized requests (4-byte little-endian length, then
// the bytes); the first -warm are sent once, untimed. Every other request is sent -rounds times,
// round by round, and each call's time (marshal, the RPC, unmarshal of the answer) is written as
// {"<codec>": [[request 0's rounds], [request 1's rounds], ...]}.
//
// -codec picks how requests are marshalled: sdk (the Go client's deterministic codec: map fields
// in key order), grpc-default (grpc-go's default: map fields in Go's random iteration order),
// prepared (RankNodes only: the nodes marshalled once with accelplan.PrepareNodes, untimed, as a
// scheduler does when its node list changes; each call marshals its Workload, RankPrepared), or
// both (sdk and grpc-default: two connections, each call made on one then the other, so both see
// the same server state).
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/protobuf/proto"

	accelplan "github.com/accelplan/accelplan/client/go"
	accelplanv1 "github.com/accelplan/accelplan/client/go/accelplan/v1"
)

func readRequests(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for len(data) > 0 {
		if len(data) < 4 {
			return nil, fmt.Errorf("%s: truncated length prefix", path)
		}
		n := binary.LittleEndian.Uint32(data)
		if uint64(len(data)-4) < uint64(n) {
			return nil, fmt.Errorf("%s: truncated request", path)
		}
		out = append(out, data[4:4+n])
		data = data[4+n:]
	}
	return out, nil
}

// dial connects with the named codec.
func dial(server, codec string) *accelplan.Client {
	opts := []accelplan.Option{accelplan.WithTimeout(30 * time.Second)}
	if codec == "grpc-default" {
		opts = append(opts, accelplan.WithDialOptions(
			grpc.WithDefaultCallOptions(grpc.ForceCodecV2(encoding.GetCodecV2(protocodec.Name)))))
	}
	client, err := accelplan.Dial(server, opts...)
	if err != nil {
		log.Fatal(err)
	}
	return client
}

// calls turns each serialized request into a call on client (RankPrepared over its prepared nodes when prepared).
func calls(client *accelplan.Client, method string, raws [][]byte, prepared bool) []func() error {
	ctx := context.Background()
	big := grpc.MaxCallRecvMsgSize(64 << 20)
	out := make([]func() error, len(raws))
	for i, raw := range raws {
		switch method {
		case "RankNodes":
			req := &accelplanv1.RankNodesRequest{}
			if err := proto.Unmarshal(raw, req); err != nil {
				log.Fatalf("request %d: %v", i, err)
			}
			if prepared {
				nodes, err := accelplan.PrepareNodes(req)
				if err != nil {
					log.Fatalf("request %d: %v", i, err)
				}
				workload := req.GetWorkload()
				out[i] = func() error { _, err := client.RankPrepared(ctx, workload, nodes, big); return err }
				continue
			}
			out[i] = func() error { _, err := client.RankNodes(ctx, req, big); return err }
		case "RightSize":
			req := &accelplanv1.RightSizeRequest{}
			if err := proto.Unmarshal(raw, req); err != nil {
				log.Fatalf("request %d: %v", i, err)
			}
			out[i] = func() error { _, err := client.RightSize(ctx, req, big); return err }
		default:
			log.Fatalf("unknown -method %q", method)
		}
	}
	return out
}

func main() {
	server := flag.String("server", accelplan.DefaultTarget, "server address (host:port)")
	method := flag.String("method", "RankNodes", "RankNodes or RightSize")
	requests := flag.String("requests", "", "file of length-prefixed serialized requests")
	warm := flag.Int("warm", 0, "how many leading requests are warm-ups (sent once, untimed)")
	rounds := flag.Int("rounds", 3, "times each timed request is sent")
	out := flag.String("out", "", "where to write the times (JSON)")
	codec := flag.String("codec", "sdk", "sdk, grpc-default, prepared or both")
	flag.Parse()

	codecs := []string{*codec}
	switch *codec {
	case "sdk", "grpc-default", "prepared":
	case "both":
		codecs = []string{"sdk", "grpc-default"}
	default:
		log.Fatalf("unknown -codec %q", *codec)
	}
	raws, err := readRequests(*requests)
	if err != nil {
		log.Fatal(err)
	}
	made := make([][]func() error, len(codecs))
	for k, name := range codecs {
		client := dial(*server, name)
		defer client.Close()
		made[k] = calls(client, *method, raws, name == "prepared")
		for i, c := range made[k][:*warm] {
			if err := c(); err != nil {
				log.Fatalf("warm-up %d: %v", i, err)
			}
		}
	}
	seconds := make([][][]float64, len(codecs))
	for k := range codecs {
		seconds[k] = make([][]float64, len(raws)-*warm)
	}
	for r := 0; r < *rounds; r++ {
		for i := range seconds[0] {
			for k := range codecs {
				start := time.Now()
				if err := made[k][*warm+i](); err != nil {
					log.Fatalf("request %d: %v", i, err)
				}
				seconds[k][i] = append(seconds[k][i], time.Since(start).Seconds())
			}
		}
	}
	result := map[string][][]float64{}
	for k, name := range codecs {
		result[name] = seconds[k]
	}
	body, err := json.Marshal(result)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, body, 0o644); err != nil {
		log.Fatal(err)
	}
}
