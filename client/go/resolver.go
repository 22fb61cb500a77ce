package accelplan

import (
	"fmt"
	"strings"

	"google.golang.org/grpc/resolver"
)

// grpc-go resolves "dns:///name:port" (every A/AAAA record, which round_robin then
// uses) but, unlike gRPC C-core and grpc-java, has no resolver for gRPC's
// "ipv4:a:port,b:port" and "ipv6:[a]:port,..." address lists. This package
// registers one for each scheme (unless the program already has one), so the
// same multi-address target works in every accelplan SDK.
func init() {
	for _, scheme := range []string{"ipv4", "ipv6"} {
		if resolver.Get(scheme) == nil {
			resolver.Register(addressListBuilder{scheme: scheme})
		}
	}
}

type addressListBuilder struct{ scheme string }

func (b addressListBuilder) Scheme() string { return b.scheme }

func (b addressListBuilder) Build(target resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	list := target.URL.Opaque
	if list == "" { // "ipv4:///a:1,b:2" puts the list in the path
		list = strings.TrimPrefix(target.URL.Path, "/")
	}
	var addrs []resolver.Address
	for _, a := range strings.Split(list, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, resolver.Address{Addr: a})
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("accelplan: no address in %s target %q", b.scheme, target.URL.String())
	}
	if err := cc.UpdateState(resolver.State{Addresses: addrs}); err != nil {
		return nil, err
	}
	return nopResolver{}, nil
}

type nopResolver struct{}

func (nopResolver) ResolveNow(resolver.ResolveNowOptions) {}
func (nopResolver) Close()                                {}
