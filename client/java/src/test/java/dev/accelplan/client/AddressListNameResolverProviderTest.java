package dev.accelplan.client;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;

import java.net.InetSocketAddress;
import java.util.List;
import org.junit.Test;

public class AddressListNameResolverProviderTest {
  @Test
  public void parsesIpv4AndIpv6Lists() {
    assertEquals(
        List.of(new InetSocketAddress("127.0.0.1", 1), new InetSocketAddress("127.0.0.1", 2)),
        AddressListNameResolverProvider.parse("127.0.0.1:1, 127.0.0.1:2"));
    assertEquals(
        List.of(new InetSocketAddress("::1", 50051)), AddressListNameResolverProvider.parse("[::1]:50051"));
  }

  @Test
  public void rejectsAnAddressWithoutPort() {
    assertThrows(IllegalArgumentException.class, () -> AddressListNameResolverProvider.parse("127.0.0.1"));
    assertThrows(IllegalArgumentException.class, () -> AddressListNameResolverProvider.parse(","));
  }
}
