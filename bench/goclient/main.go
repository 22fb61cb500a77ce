// Command goclient times SchedulerService calls from a compiled client, as a Go scheduler
// plugin (Kueue, scheduler-plugins) would make them: bench.scheduler_bench --go-client runs it.
//
//	go run . -server 127.0.0.1:50051 -method RankNodes -requests reqs.bin -warm 3 -rounds 7 -out times.json
//
// -codec grpc-default marshals as grpc-go does by default (map fields in Go's random iteration
// order) instead of the client's deterministic codec.
//
// The requests file holds length-prefixed serialized requests (4-byte little-endian length, then
// the bytes); the first -warm are sent once, untimed. Every other request is sent -rounds times,
// round by round, and each call's time (marshal, the RPC, unmarshal of the answer) is written
// as {"seconds": [[request 0's rounds], [request 1's rounds], ...]}.
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

func main() {
	server := flag.String("server", accelplan.DefaultTarget, "server address (host:port)")
	method := flag.String("method", "RankNodes", "RankNodes or RightSize")
	requests := flag.String("requests", "", "file of length-prefixed serialized requests")
	warm := flag.Int("warm", 0, "how many leading requests are warm-ups (sent once, untimed)")
	rounds := flag.Int("rounds", 3, "times each timed request is sent")
	out := flag.String("out", "", "where to write the times (JSON)")
	codec := flag.String("codec", "sdk", "sdk (the client's deterministic marshalling) or grpc-default")
	flag.Parse()

	raws, err := readRequests(*requests)
	if err != nil {
		log.Fatal(err)
	}
	opts := []accelplan.Option{accelplan.WithTimeout(30 * time.Second)}
	switch *codec {
	case "sdk":
	case "grpc-default": // map fields in Go's iteration order, as grpc-go writes them by default
		opts = append(opts, accelplan.WithDialOptions(
			grpc.WithDefaultCallOptions(grpc.ForceCodecV2(encoding.GetCodecV2(protocodec.Name)))))
	default:
		log.Fatalf("unknown -codec %q", *codec)
	}
	client, err := accelplan.Dial(*server, opts...)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	big := grpc.MaxCallRecvMsgSize(64 << 20)

	var call func(ctx context.Context, raw []byte) (func() error, error)
	switch *method {
	case "RankNodes":
		call = func(ctx context.Context, raw []byte) (func() error, error) {
			req := &accelplanv1.RankNodesRequest{}
			if err := proto.Unmarshal(raw, req); err != nil {
				return nil, err
			}
			return func() error { _, err := client.RankNodes(ctx, req, big); return err }, nil
		}
	case "RightSize":
		call = func(ctx context.Context, raw []byte) (func() error, error) {
			req := &accelplanv1.RightSizeRequest{}
			if err := proto.Unmarshal(raw, req); err != nil {
				return nil, err
			}
			return func() error { _, err := client.RightSize(ctx, req, big); return err }, nil
		}
	default:
		log.Fatalf("unknown -method %q", *method)
	}

	ctx := context.Background()
	calls := make([]func() error, len(raws))
	for i, raw := range raws {
		if calls[i], err = call(ctx, raw); err != nil {
			log.Fatalf("request %d: %v", i, err)
		}
	}
	for _, c := range calls[:*warm] {
		if err := c(); err != nil {
			log.Fatalf("warm-up: %v", err)
		}
	}
	timed := calls[*warm:]
	seconds := make([][]float64, len(timed))
	for r := 0; r < *rounds; r++ {
		for i, c := range timed {
			start := time.Now()
			if err := c(); err != nil {
				log.Fatalf("request %d: %v", i, err)
			}
			seconds[i] = append(seconds[i], time.Since(start).Seconds())
		}
	}
	body, err := json.Marshal(map[string]any{"seconds": seconds})
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, body, 0o644); err != nil {
		log.Fatal(err)
	}
}
