// The address a rank's Gloo device binds to and advertises to every other rank. It must be one
// the peers can reach: loopback only works when the whole job is on one machine.
//   1. MFR_SOCKET_IFNAME, else GLOO_SOCKET_IFNAME (PyTorch's variable): that interface's address.
//   2. Else the local address the kernel picks to reach MASTER_ADDR. Every rank already reaches
//      the master (the rendezvous store lives there), so this is the interface and address that
//      face the job's network, even on machines whose hostname resolves to loopback or to an
//      interface the job does not use (PyTorch resolves the hostname instead).
// The route lookup is a UDP socket "connected" to the master: connect(2) on a datagram socket only
// picks the route and source address, it sends nothing. (A TCP connection to the store would
// tell the same, but c10d's store does not expose its socket.)
import os from "node:os";
import net from "node:net";
import { Worker } from "node:worker_threads";

const IFNAME_VARIABLES = ["MFR_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME"] as const;

export interface AddressChoice {
  address: string;
  /** Why this address, for messages. */
  reason: string;
}

export interface ChooseOptions {
  masterAddr: string;
  masterPort: number;
  env?: NodeJS.ProcessEnv;
  /** Default: os.networkInterfaces(). */
  interfaces?: NodeJS.Dict<os.NetworkInterfaceInfo[]>;
  /** Default: sourceAddressTo (the kernel's route lookup). */
  route?: (host: string, port: number) => string;
}

export function chooseAddress(o: ChooseOptions): AddressChoice {
  const env = o.env ?? process.env;
  for (const variable of IFNAME_VARIABLES) {
    const name = env[variable];
    if (name === undefined || name === "") continue;
    return {
      address: interfaceAddress(name, variable, o.interfaces ?? os.networkInterfaces()),
      reason: `${variable}=${name}`,
    };
  }
  if (isLoopback(o.masterAddr))
    return { address: "127.0.0.1", reason: "the master is this machine's loopback" };
  const address = (o.route ?? sourceAddressTo)(o.masterAddr, o.masterPort);
  return { address, reason: `the local address that reaches the master ${o.masterAddr}` };
}

function isLoopback(host: string): boolean {
  if (host === "localhost") return true;
  if (net.isIPv4(host)) return host.startsWith("127.");
  return net.isIPv6(host) && (host === "::1" || host.startsWith("::ffff:127."));
}

/** The address of interface `name` (IPv4 preferred; link-local IPv6 cannot be used without a scope). */
export function interfaceAddress(
  name: string,
  variable: string,
  interfaces: NodeJS.Dict<os.NetworkInterfaceInfo[]>,
): string {
  if (name.includes(",")) {
    throw new Error(`${variable}=${name}: mfr binds one interface per rank; name a single one`);
  }
  const infos = interfaces[name];
  if (!infos) {
    const known = Object.keys(interfaces).sort().join(", ");
    throw new Error(`${variable}=${name}: no such network interface on this machine (it has: ${known})`);
  }
  const usable = infos.filter((i) => i.family === "IPv4" || !i.address.toLowerCase().startsWith("fe80:"));
  const pick = usable.find((i) => i.family === "IPv4") ?? usable[0];
  if (!pick) throw new Error(`${variable}=${name}: the interface has no IPv4 or global IPv6 address`);
  return pick.address;
}

// Runs in a worker thread (plain JavaScript, no loader): resolves the host, "connects" a UDP
// socket to it and hands back the local address through shared memory.
const ROUTE_LOOKUP = `
const { workerData } = require("node:worker_threads");
const dns = require("node:dns");
const dgram = require("node:dgram");
const { host, port, shared } = workerData;
const head = new Int32Array(shared, 0, 2);
const text = new Uint8Array(shared, 8);
function done(ok, message) {
  const bytes = Buffer.from(String(message)).subarray(0, text.length);
  text.set(bytes);
  head[1] = ok ? bytes.length : -bytes.length - 1;
  Atomics.store(head, 0, 1);
  Atomics.notify(head, 0);
}
dns.lookup(host, (err, address, family) => {
  if (err) return done(false, err.message);
  const s = dgram.createSocket(family === 6 ? "udp6" : "udp4");
  s.on("error", (e) => { done(false, e.message); s.close(); });
  s.connect(port, address, () => { done(true, s.address().address); s.close(); });
});
`;

/**
 * The local address the kernel would send from to reach host:port (synchronous: process-group
 * setup is, and it runs once per rank).
 */
export function sourceAddressTo(host: string, port: number, timeoutMs = 10_000): string {
  const shared = new SharedArrayBuffer(8 + 512);
  const head = new Int32Array(shared, 0, 2);
  const worker = new Worker(ROUTE_LOOKUP, { eval: true, execArgv: [], workerData: { host, port, shared } });
  worker.unref();
  try {
    if (Atomics.wait(head, 0, 0, timeoutMs) === "timed-out") {
      throw new Error(
        `MASTER_ADDR=${host}: no route found within ${timeoutMs / 1000} s (DNS lookup hanging?)`,
      );
    }
  } finally {
    void worker.terminate();
  }
  const n = head[1]!;
  const message = Buffer.from(new Uint8Array(shared, 8, n >= 0 ? n : -n - 1)).toString();
  if (n < 0)
    throw new Error(`MASTER_ADDR=${host}: cannot find the local address that reaches it: ${message}`);
  return message;
}
