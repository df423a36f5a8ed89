import t from 'tap';
import { concernsUplink, parseNetlink, TABLE_MAIN } from '../../../src/routing/netlink-messages.js';

/** One nlmsghdr + body + rtattrs, little-endian as the kernel sends them. */
function msg(type: number, body: Buffer, attrs: [number, Buffer][] = []): Buffer {
  const parts = attrs.map(([t, v]) => {
    const len = 4 + v.length;
    const a = Buffer.alloc((len + 3) & ~3);
    a.writeUInt16LE(len, 0);
    a.writeUInt16LE(t, 2);
    v.copy(a, 4);
    return a;
  });
  const payload = Buffer.concat([body, ...parts]);
  const h = Buffer.alloc(16);
  h.writeUInt32LE(16 + payload.length, 0);
  h.writeUInt16LE(type, 4);
  return Buffer.concat([h, payload]);
}
const v4 = (a: string) => Buffer.from(a.split('.').map(Number));
const v6 = (groups: number[]) => {
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(g, i * 2));
  return b;
};
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

function rtmsg(family: number, dstLen: number, table: number): Buffer {
  const b = Buffer.alloc(12);
  b[0] = family;
  b[1] = dstLen;
  b[4] = table;
  b[7] = 1; // RTN_UNICAST
  return b;
}

t.test('a default route, an address and a link in one read', async (t) => {
  const link = Buffer.alloc(16);
  link.writeInt32LE(2, 4);
  link.writeUInt32LE(0x41, 8); // IFF_UP | IFF_RUNNING
  const addr = Buffer.from([2, 24, 0, 0, 2, 0, 0, 0]);
  const bytes = Buffer.concat([
    msg(24, rtmsg(2, 0, TABLE_MAIN), [
      [5, v4('192.0.2.2')],
      [4, u32(2)],
      [15, u32(TABLE_MAIN)],
    ]),
    msg(21, addr, [
      [1, v4('192.0.2.1')],
      [2, v4('192.0.2.1')],
    ]),
    msg(16, link, [[3, Buffer.from('eth0\0')]]),
  ]);
  t.same(parseNetlink(bytes), [
    { kind: 'route', op: 'new', family: 4, table: TABLE_MAIN, dstLen: 0, gateway: '192.0.2.2', oif: 2, type: 1 },
    { kind: 'addr', op: 'del', family: 4, index: 2, address: '192.0.2.1', prefixlen: 24 },
    { kind: 'link', op: 'new', index: 2, name: 'eth0', up: true },
  ]);
});

t.test('IPv6 addresses are written as RFC 5952 says', async (t) => {
  const addr = Buffer.from([10, 64, 0, 0, 3, 0, 0, 0]);
  const [e] = parseNetlink(msg(20, addr, [[1, v6([0x2001, 0xdb8, 0, 0, 1, 0, 0, 5])]]));
  t.same(e, { kind: 'addr', op: 'new', family: 6, index: 3, address: '2001:db8::1:0:0:5', prefixlen: 64 });
  const [r] = parseNetlink(msg(25, rtmsg(10, 0, TABLE_MAIN), [[5, v6([0xfe80, 0, 0, 0, 0, 0, 0, 1])]]));
  t.match(r, { kind: 'route', op: 'del', family: 6, gateway: 'fe80::1' });
});

t.test('RTA_TABLE overrides the 8-bit rtm_table (tables above 255)', async (t) => {
  const [r] = parseNetlink(msg(24, rtmsg(2, 0, 252), [[15, u32(2022)]]));
  t.match(r, { table: 2022 });
});

t.test('malformed input is skipped, never thrown', async (t) => {
  t.same(parseNetlink(Buffer.alloc(8)), []);
  const bad = msg(24, rtmsg(2, 0, TABLE_MAIN));
  bad.writeUInt32LE(9999, 0); // longer than the read
  t.same(parseNetlink(bad), []);
  t.same(parseNetlink(msg(24, Buffer.alloc(4))), [], 'a body too short for its header');
  const attr = msg(20, Buffer.from([2, 24, 0, 0, 2, 0, 0, 0]), [[1, Buffer.from([1, 2])]]);
  t.same(parseNetlink(attr), [{ kind: 'addr', op: 'new', family: 4, index: 2, prefixlen: 24 }], 'an address of the wrong size is left out');
  for (let i = 0; i < 2000; i++) {
    const b = Buffer.from(Array.from({ length: 64 }, (_, k) => (i * 31 + k * 17) & 0xff));
    parseNetlink(b);
  }
  t.pass('2000 noise buffers parsed without a throw');
});

t.test('what concerns the uplink: main default routes, addresses, links; not the TUN, nor other tables', async (t) => {
  const tun = { index: 9, name: 'tsg0' };
  const route = (table: number, dstLen: number, oif = 2) => ({ kind: 'route' as const, op: 'new' as const, family: 4 as const, table, dstLen, oif, type: 1 });
  t.ok(concernsUplink(route(TABLE_MAIN, 0), tun));
  t.notOk(concernsUplink(route(2022, 0, 9), tun), "the gateway's own table");
  t.notOk(concernsUplink(route(TABLE_MAIN, 15, 9), tun), 'the fake pool route');
  t.notOk(concernsUplink(route(TABLE_MAIN, 24), tun), 'an on-link subnet (its address event says it)');
  t.ok(concernsUplink({ kind: 'addr', op: 'del', family: 4, index: 2, prefixlen: 24 }, tun));
  t.notOk(concernsUplink({ kind: 'addr', op: 'new', family: 6, index: 9, prefixlen: 64 }, tun));
  t.ok(concernsUplink({ kind: 'link', op: 'new', index: 2, up: false }, tun));
  t.notOk(concernsUplink({ kind: 'link', op: 'new', index: 9, up: true }, tun));
  t.notOk(concernsUplink({ kind: 'link', op: 'new', index: 0, name: 'tsg0', up: true }, { name: 'tsg0' }), 'by name while the index is unknown');
});
