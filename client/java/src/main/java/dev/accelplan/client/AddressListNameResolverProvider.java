package dev.accelplan.client;

import io.grpc.EquivalentAddressGroup;
import io.grpc.NameResolver;
import io.grpc.NameResolverProvider;
import io.grpc.NameResolverRegistry;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.URI;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.List;

/**
 * Resolves gRPC's address-list targets, {@code ipv4:10.0.0.1:50051,10.0.0.2:50051} and
 * {@code ipv6:[::1]:50051,[::2]:50051}, to every listed address, as gRPC C-core does; grpc-java has no
 * resolver for these schemes. With the default service config's {@code round_robin} the client spreads calls
 * over all of them. {@link AccelplanClient} registers it (once, unless the scheme already has a provider).
 */
public final class AddressListNameResolverProvider extends NameResolverProvider {
  private final String scheme;

  AddressListNameResolverProvider(String scheme) {
    this.scheme = scheme;
  }

  private static boolean registered;

  /**
   * Registers providers for {@code ipv4} and {@code ipv6} in the default registry, once. The registry picks the
   * highest-priority provider per scheme, so one a program registers with a higher priority still wins.
   */
  static synchronized void registerDefaults() {
    if (!registered) {
      NameResolverRegistry.getDefaultRegistry().register(new AddressListNameResolverProvider("ipv4"));
      NameResolverRegistry.getDefaultRegistry().register(new AddressListNameResolverProvider("ipv6"));
      registered = true;
    }
  }

  /** The addresses of an {@code ipv4:}/{@code ipv6:} target's scheme-specific part. */
  static List<InetSocketAddress> parse(String list) {
    List<InetSocketAddress> out = new ArrayList<>();
    for (String part : list.split(",")) {
      String a = part.trim();
      if (a.isEmpty()) {
        continue;
      }
      int colon = a.lastIndexOf(':');
      if (colon <= 0 || colon == a.length() - 1) {
        throw new IllegalArgumentException("address without a port: " + a);
      }
      String host = a.substring(0, colon);
      if (host.startsWith("[") && host.endsWith("]")) {
        host = host.substring(1, host.length() - 1);
      }
      out.add(new InetSocketAddress(host, Integer.parseInt(a.substring(colon + 1))));
    }
    if (out.isEmpty()) {
      throw new IllegalArgumentException("no address in " + list);
    }
    return out;
  }

  @Override
  public NameResolver newNameResolver(URI targetUri, NameResolver.Args args) {
    if (!scheme.equals(targetUri.getScheme())) {
      return null;
    }
    String ssp = targetUri.getSchemeSpecificPart();
    List<InetSocketAddress> addresses = parse(ssp.startsWith("//") ? ssp.replaceFirst("^//[^/]*/", "") : ssp);
    String authority = addresses.get(0).getHostString() + ":" + addresses.get(0).getPort();
    return new NameResolver() {
      @Override
      public String getServiceAuthority() {
        return authority;
      }

      @Override
      public void start(Listener2 listener) {
        List<EquivalentAddressGroup> groups = new ArrayList<>();
        for (InetSocketAddress a : addresses) {
          groups.add(new EquivalentAddressGroup(a));
        }
        listener.onResult(ResolutionResult.newBuilder().setAddresses(groups).build());
      }

      @Override
      public void refresh() {}

      @Override
      public void shutdown() {}
    };
  }

  @Override
  public String getDefaultScheme() {
    return scheme;
  }

  @Override
  protected boolean isAvailable() {
    return true;
  }

  @Override
  protected int priority() {
    return 5;
  }

  @Override
  public Collection<Class<? extends SocketAddress>> getProducedSocketAddressTypes() {
    return Collections.singleton(InetSocketAddress.class);
  }
}
