// Which address a rank advertises to Gloo: the named interface's, else the one that reaches the
// master, loopback for a loopback master.
import { test } from "node:test";
import assert from "node:assert/strict";
import os from "node:os";
import { chooseAddress, interfaceAddress, sourceAddressTo } from "../../src/distributed/address.ts";

const info = (address: string, family: "IPv4" | "IPv6"): os.NetworkInterfaceInfo =>
  ({ address, family, netmask: "", mac: "", internal: false, cidr: null }) as os.NetworkInterfaceInfo;

const interfaces = {
  lo: [info("127.0.0.1", "IPv4")],
  eth0: [info("fe80::1", "IPv6"), info("192.0.2.7", "IPv4")],
  ib0: [info("fe80::2", "IPv6"), info("2001:db8::5", "IPv6")],
  tun0: [info("fe80::3", "IPv6")],
};
const noRoute = (): string => {
  throw new Error("the route must not be looked up");
};
const master = { masterAddr: "10.1.2.3", masterPort: 29500, interfaces };

test("the interface named by MFR_SOCKET_IFNAME, else GLOO_SOCKET_IFNAME, gives the address", () => {
  const gloo = chooseAddress({ ...master, env: { GLOO_SOCKET_IFNAME: "eth0" }, route: noRoute });
  assert.deepEqual(gloo, { address: "192.0.2.7", reason: "GLOO_SOCKET_IFNAME=eth0" });
  const both = chooseAddress({
    ...master,
    env: { GLOO_SOCKET_IFNAME: "eth0", MFR_SOCKET_IFNAME: "ib0" },
    route: noRoute,
  });
  // IPv6 when the interface has no IPv4, never a link-local one
  assert.deepEqual(both, { address: "2001:db8::5", reason: "MFR_SOCKET_IFNAME=ib0" });
  // this machine's own interfaces by default
  const lo = chooseAddress({ masterAddr: "10.1.2.3", masterPort: 1, env: { MFR_SOCKET_IFNAME: "lo" } });
  assert.equal(lo.address, "127.0.0.1");
});

test("a bad interface name is an error naming the variable", () => {
  assert.throws(
    () => chooseAddress({ ...master, env: { GLOO_SOCKET_IFNAME: "eth9" }, route: noRoute }),
    /^Error: GLOO_SOCKET_IFNAME=eth9: no such network interface on this machine \(it has: eth0, ib0, lo, tun0\)$/,
  );
  assert.throws(
    () => interfaceAddress("tun0", "MFR_SOCKET_IFNAME", interfaces),
    /MFR_SOCKET_IFNAME=tun0: the interface has no IPv4 or global IPv6 address/,
  );
  assert.throws(
    () => interfaceAddress("eth0,ib0", "GLOO_SOCKET_IFNAME", interfaces),
    /GLOO_SOCKET_IFNAME=eth0,ib0: mfr binds one interface per rank/,
  );
});

test("without a name: loopback for a loopback master, else the address that reaches the master", () => {
  for (const masterAddr of ["127.0.0.1", "localhost", "::1", "127.0.1.1"]) {
    assert.equal(chooseAddress({ ...master, masterAddr, env: {}, route: noRoute }).address, "127.0.0.1");
  }
  const asked: [string, number][] = [];
  const choice = chooseAddress({
    ...master,
    env: { GLOO_SOCKET_IFNAME: "" },
    route: (host, port) => {
      asked.push([host, port]);
      return "10.1.2.9";
    },
  });
  assert.deepEqual(asked, [["10.1.2.3", 29500]]);
  assert.equal(choice.address, "10.1.2.9");
});

test("the kernel's route lookup: this machine's own addresses are reached from themselves", () => {
  assert.equal(sourceAddressTo("127.0.0.1", 29500), "127.0.0.1");
  const own = Object.values(os.networkInterfaces())
    .flat()
    .filter((i) => i && i.family === "IPv4" && !i.internal)
    .map((i) => i!.address);
  for (const a of own) assert.equal(sourceAddressTo(a, 29500), a);
});
