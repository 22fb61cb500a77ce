package accelplan

import (
	"bytes"
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	accelplanv1 "github.com/accelplan/accelplan/client/go/accelplan/v1"
)

// Nodes with equal labels must serialize to equal bytes whatever order Go's maps iterate in:
// the server groups nodes of one shape by their bytes.
func TestCodecWritesMapsInKeyOrder(t *testing.T) {
	labels := map[string]string{}
	for i := 0; i < 32; i++ {
		labels[fmt.Sprintf("example.com/label-%02d", i)] = fmt.Sprint(i)
	}
	node := func() *accelplanv1.NodeInventory {
		copied := map[string]string{}
		for k, v := range labels {
			copied[k] = v
		}
		return &accelplanv1.NodeInventory{Labels: copied}
	}
	want, err := proto.MarshalOptions{Deterministic: true}.Marshal(node())
	if err != nil {
		t.Fatal(err)
	}
	codec := deterministicCodec{}
	for i := 0; i < 20; i++ {
		data, err := codec.Marshal(node())
		if err != nil {
			t.Fatal(err)
		}
		if got := data.Materialize(); !bytes.Equal(got, want) {
			t.Fatalf("marshal %d differs from the key-ordered bytes", i)
		}
		back := &accelplanv1.NodeInventory{}
		if err := codec.Unmarshal(data, back); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(back, node()) {
			t.Fatalf("round trip %d changed the message", i)
		}
	}
	if _, err := codec.Marshal("not a message"); err == nil {
		t.Fatal("marshalling a non-message should fail")
	}
}
