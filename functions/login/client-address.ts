import { BlockList, isIP } from 'node:net';

/**
 * Which address a login is counted against.
 *
 * `none`: the socket's peer. Right when clients connect directly; behind Knative it is the
 * queue-proxy (127.0.0.1) for everyone.
 *
 * `private`: X-Forwarded-For read from the right, skipping private-network hops (the ingress
 * gateway, activator and queue-proxy each append the address they were reached from; the
 * activator is only sometimes in the path, so a fixed hop count would be wrong). The first
 * public address is the one the ingress saw. Its leftmost entry, the "first hop", is whatever
 * the client sent, since Envoy-based ingresses append to it: trusting it would let an attacker
 * take a fresh address for every guess. A client that itself has a private address cannot be
 * told apart from a forged entry; then the leftmost private hop is used.
 */
export type TrustProxy = 'none' | 'private';
export const trustProxyModes: TrustProxy[] = ['none', 'private'];

const privateNetworks = new BlockList();
for (const [net, bits] of [['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16]] as const) {
  privateNetworks.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [['::1', 128], ['fc00::', 7], ['fe80::', 10]] as const) privateNetworks.addSubnet(net, bits, 'ipv6');

export function clientAddress(trust: TrustProxy, forwardedFor: string | undefined, socketAddress: string | undefined): string {
  const socket = parse(socketAddress ?? '');
  let trusted = socket ? counted(socket) : 'unknown';
  if (trust === 'none' || !forwardedFor) return trusted;
  for (const hop of forwardedFor.split(',').reverse()) {
    const address = parse(hop.trim());
    if (!address) break; // not written by a proxy of ours: the chain we can trust ends here
    if (!isPrivate(address)) return counted(address);
    trusted = counted(address);
  }
  return trusted;
}

/** A bare IP address (IPv4-mapped IPv6 as IPv4), or undefined for anything else. */
function parse(text: string): string | undefined {
  const bare = text.replace(/^\[(.*)\]$/, '$1').replace(/%.*$/, '').toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(bare);
  if (mapped) return mapped[1];
  return isIP(bare) ? bare : undefined;
}

function isPrivate(address: string): boolean {
  return privateNetworks.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
}

/** IPv4 as is; IPv6 as its /64, which one host usually has whole, so that it cannot count as 2^64 clients. */
export function counted(address: string): string {
  if (isIP(address) !== 6 || address.includes('.')) return address;
  const [head, tail] = address.split('::') as [string, string?];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/** The address of a request served by `@hono/node-server` (its bindings carry the socket). */
export function requestAddress(trust: TrustProxy) {
  return (c: { req: { header(name: string): string | undefined }; env: unknown }): string => {
    const socket = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming?.socket?.remoteAddress;
    return clientAddress(trust, c.req.header('x-forwarded-for'), socket);
  };
}
