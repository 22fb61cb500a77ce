package accelplan

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	accelplanv1 "github.com/accelplan/accelplan/client/go/accelplan/v1"
)

// PreparedNodes is a RankNodes request without its workload, marshalled once.
//
// A scheduler ranks the same nodes for pod after pod. RankPrepared sends each pod's Workload in
// front of these bytes, so a call marshals one small message instead of every node (Go marshals
// 5,000 labelled NodeInventory messages in ~8 ms), and the server, which keeps node sets by the
// bytes after the workload field, reads the nodes once. Prepare again when the nodes change.
type PreparedNodes struct {
	rest []byte
}

// PrepareNodes marshals req's fields but its Workload (which is left out when set), deterministically.
func PrepareNodes(req *accelplanv1.RankNodesRequest) (*PreparedNodes, error) {
	rest := proto.Clone(req).(*accelplanv1.RankNodesRequest)
	rest.Workload = nil
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(rest)
	if err != nil {
		return nil, fmt.Errorf("accelplan: prepare nodes: %w", err)
	}
	return &PreparedNodes{rest: b}, nil
}

// Size is the prepared bytes' length.
func (p *PreparedNodes) Size() int { return len(p.rest) }

// preparedRequest is a RankNodesRequest already on the wire; deterministicCodec sends it as is.
type preparedRequest []byte

// RankPrepared is RankNodes for workload over prepared nodes: the request the server reads is
// nodes' request with workload set.
func (c *Client) RankPrepared(
	ctx context.Context, workload *accelplanv1.Workload, nodes *PreparedNodes, opts ...grpc.CallOption,
) (*accelplanv1.RankNodesResponse, error) {
	var body []byte
	if workload != nil {
		w, err := proto.MarshalOptions{Deterministic: true}.Marshal(workload)
		if err != nil {
			return nil, fmt.Errorf("accelplan: marshal workload: %w", err)
		}
		// Field 1 (RankNodesRequest.workload), length-delimited, first: where the server looks for it.
		body = make([]byte, 0, 1+protowire.SizeVarint(uint64(len(w)))+len(w)+len(nodes.rest))
		body = protowire.AppendTag(body, 1, protowire.BytesType)
		body = protowire.AppendBytes(body, w)
	}
	body = append(body, nodes.rest...)
	out := new(accelplanv1.RankNodesResponse)
	if err := c.conn.Invoke(ctx, accelplanv1.SchedulerService_RankNodes_FullMethodName, preparedRequest(body), out, opts...); err != nil {
		return nil, err
	}
	return out, nil
}
