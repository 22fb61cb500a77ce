// Command plan asks an accelplan server how to shard a model over a fleet.
//
//	go run ./examples/plan -server localhost:50051 -params 70000000000
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	accelplan "github.com/accelplan/accelplan/client/go"
	accelplanv1 "github.com/accelplan/accelplan/client/go/accelplan/v1"
)

func main() {
	server := flag.String("server", accelplan.DefaultTarget, "server address (host:port)")
	params := flag.Uint64("params", 70_000_000_000, "model parameter count")
	useTLS := flag.Bool("tls", false, "use TLS (system roots unless -ca)")
	ca := flag.String("ca", "", "PEM CA certificate for TLS")
	token := flag.String("token", os.Getenv("ACCELPLAN_TOKEN"), "bearer token")
	flag.Parse()

	opts := []accelplan.Option{accelplan.WithTimeout(10 * time.Second)}
	if *useTLS || *ca != "" {
		opts = append(opts, accelplan.WithTLSFiles(*ca, "", ""))
	}
	if *token != "" {
		opts = append(opts, accelplan.WithBearerToken(*token))
	}
	client, err := accelplan.Dial(*server, opts...)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	plan, err := client.PlanSharding(ctx, &accelplanv1.PlanShardingRequest{
		Model:        &accelplanv1.ModelSpec{Source: &accelplanv1.ModelSpec_ParameterCount{ParameterCount: *params}},
		Quantization: accelplanv1.QuantizationLevel_QUANTIZATION_LEVEL_BFLOAT16,
		Fleet: &accelplanv1.Fleet{Accelerators: []*accelplanv1.Accelerator{
			{Type: accelplanv1.AcceleratorType_ACCELERATOR_TYPE_CUDA_GPU, DeviceId: 0, MemoryBytes: 80 << 30},
			{Type: accelplanv1.AcceleratorType_ACCELERATOR_TYPE_CUDA_GPU, DeviceId: 1, MemoryBytes: 80 << 30},
		}},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "PlanSharding failed: %v (code %s)\n", err, accelplan.Code(err))
		for _, v := range accelplan.FieldViolations(err) {
			fmt.Fprintf(os.Stderr, "  %s: %s\n", v.GetField(), v.GetDescription())
		}
		os.Exit(1)
	}
	fmt.Printf("%s over %d device(s), fits: %v\n", plan.GetStrategy(), plan.GetDeviceCount(), plan.GetFitsInMemory())
	fmt.Println(protojson.MarshalOptions{Multiline: true}.Format(plan))
}
