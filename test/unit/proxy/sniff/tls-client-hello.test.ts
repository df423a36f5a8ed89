import t from 'tap';
import { sniffTlsClientHello, type TlsSniff } from '../../../../src/proxy/sniff/tls-client-hello.js';
import { captureClientHello, prng, randInt, randomBytes } from '../../../helpers/sniff-capture.js';

// ---- helpers -------------------------------------------------------------

const u8 = (n: number) => Buffer.from([n & 0xff]);
const u16 = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
const u24 = (n: number) => Buffer.from([(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
const vec8 = (b: Buffer) => Buffer.concat([u8(b.length), b]);
const vec16 = (b: Buffer) => Buffer.concat([u16(b.length), b]);
const ext = (type: number, body: Buffer) => Buffer.concat([u16(type), vec16(body)]);
const sniExt = (name: string | Buffer) => ext(0, vec16(Buffer.concat([u8(0), vec16(typeof name === 'string' ? Buffer.from(name, 'latin1') : name)])));
const alpnExt = (protos: (string | Buffer)[]) => ext(16, vec16(Buffer.concat(protos.map((p) => vec8(typeof p === 'string' ? Buffer.from(p, 'latin1') : p)))));

/** A ClientHello body with the given extensions (null: no extensions block at all). */
function helloBody(exts: Buffer[] | null): Buffer {
  return Buffer.concat([
    u16(0x0303),
    Buffer.alloc(32, 0xab), // random
    vec8(Buffer.alloc(32, 0xcd)), // session id
    vec16(Buffer.from([0x13, 0x01, 0x13, 0x02, 0xc0, 0x2f])),
    vec8(Buffer.from([0])),
    exts === null ? Buffer.alloc(0) : vec16(Buffer.concat(exts)),
  ]);
}
const handshake = (body: Buffer, type = 1) => Buffer.concat([u8(type), u24(body.length), body]);
const record = (fragment: Buffer, type = 22, version = 0x0301) => Buffer.concat([u8(type), u16(version), u16(fragment.length), fragment]);
/** The handshake bytes cut into records of the given fragment sizes (the rest in the last). */
function records(hs: Buffer, sizes: number[] = []): Buffer {
  const out: Buffer[] = [];
  let off = 0;
  for (const n of sizes) {
    out.push(record(hs.subarray(off, off + n)));
    off += n;
  }
  if (off < hs.length) out.push(record(hs.subarray(off)));
  return Buffer.concat(out);
}
const helloRecord = (exts: Buffer[] | null) => records(handshake(helloBody(exts)));

/** Handshake bytes of a single-record hello (what Node sends). */
const fragmentOf = (rec: Buffer) => rec.subarray(5, 5 + rec.readUInt16BE(3));

/** Offsets and widths of every length field in a single-record ClientHello. */
function lengthFields(rec: Buffer): { off: number; width: 1 | 2 | 3 }[] {
  const f: { off: number; width: 1 | 2 | 3 }[] = [
    { off: 3, width: 2 },
    { off: 6, width: 3 },
  ];
  let p = 5 + 4 + 34;
  f.push({ off: p, width: 1 });
  p += 1 + rec[p];
  f.push({ off: p, width: 2 });
  p += 2 + rec.readUInt16BE(p);
  f.push({ off: p, width: 1 });
  p += 1 + rec[p];
  f.push({ off: p, width: 2 });
  const end = p + 2 + rec.readUInt16BE(p);
  p += 2;
  while (p < end) {
    const type = rec.readUInt16BE(p);
    const len = rec.readUInt16BE(p + 2);
    f.push({ off: p + 2, width: 2 });
    const body = p + 4;
    if (type === 0) {
      f.push({ off: body, width: 2 }, { off: body + 3, width: 2 });
    } else if (type === 16) {
      f.push({ off: body, width: 2 });
      for (let q = body + 2; q < body + len; q += 1 + rec[q]) f.push({ off: q, width: 1 });
    }
    p = body + len;
  }
  return f;
}
/** Extension types of a single-record ClientHello, in order. */
function extensionTypes(rec: Buffer): number[] {
  const extLenAt = lengthFields(rec)[5].off;
  const end = extLenAt + 2 + rec.readUInt16BE(extLenAt);
  const types: number[] = [];
  for (let p = extLenAt + 2; p < end; p += 4 + rec.readUInt16BE(p + 2)) types.push(rec.readUInt16BE(p));
  return types;
}

const KINDS = new Set(['tls', 'need-more', 'not-tls', 'unreadable']);
const HOST_RE = /^[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*$/;
/** Why a result is not well-formed, or '' when it is. */
function shapeError(r: TlsSniff): string {
  if (!KINDS.has(r.kind)) return `kind ${String(r.kind)}`;
  const keys = Object.keys(r);
  if (r.kind === 'unreadable') return keys.length === 2 && typeof r.reason === 'string' ? '' : `bad unreadable ${keys}`;
  if (r.kind !== 'tls') return keys.length === 1 ? '' : `extra keys ${keys}`;
  if (keys.some((k) => k !== 'kind' && k !== 'sni' && k !== 'alpn' && k !== 'ech')) return `extra keys ${keys}`;
  if (r.sni !== undefined && (!HOST_RE.test(r.sni) || r.sni.length > 253)) return `bad sni ${JSON.stringify(r.sni)}`;
  if (r.alpn !== undefined) {
    if (!Array.isArray(r.alpn) || r.alpn.length === 0) return 'empty alpn';
    if (r.alpn.some((p) => typeof p !== 'string' || !/^[\x21-\x7e]+$/.test(p))) return `bad alpn ${JSON.stringify(r.alpn)}`;
  }
  return '';
}

// ---- real ClientHellos from Node's TLS client ------------------------------

const real = {
  apiH2: await captureClientHello({ servername: 'api.example.com', ALPNProtocols: ['h2', 'http/1.1'] }),
  ip: await captureClientHello({ host: '192.0.2.1', port: 443 }),
  tls12: await captureClientHello({ servername: 'legacy.example.net', maxVersion: 'TLSv1.2', ALPNProtocols: ['http/1.1'] }),
};

t.test('captured hellos are single handshake records (sanity of the fixtures)', async (t) => {
  for (const [name, rec] of Object.entries(real)) {
    t.equal(rec[0], 22, `${name}: handshake record`);
    t.equal(rec.length, 5 + rec.readUInt16BE(3), `${name}: exactly one record`);
    t.equal(rec[5], 1, `${name}: ClientHello`);
  }
  // a TLS 1.2-only client does not offer supported_versions (43)
  t.ok(extensionTypes(real.apiH2).includes(43), 'TLS 1.3 hello offers supported_versions');
  t.notOk(extensionTypes(real.tls12).includes(43), 'TLS 1.2-only hello does not');
  t.ok(extensionTypes(real.apiH2).includes(0) && extensionTypes(real.apiH2).includes(16), 'named hello has SNI and ALPN');
  t.notOk(extensionTypes(real.ip).includes(0), 'IP hello has no SNI');
});

t.test('SNI and ALPN from real hellos', async (t) => {
  t.strictSame(sniffTlsClientHello(real.apiH2), { kind: 'tls', sni: 'api.example.com', alpn: ['h2', 'http/1.1'] });
  t.strictSame(sniffTlsClientHello(real.ip), { kind: 'tls' }, 'an IP address is not sent as SNI');
  t.strictSame(sniffTlsClientHello(real.tls12), { kind: 'tls', sni: 'legacy.example.net', alpn: ['http/1.1'] });
});

t.test('every proper prefix of a real hello needs more', async (t) => {
  for (const [name, rec] of Object.entries(real)) {
    const bad: number[] = [];
    for (let n = 0; n < rec.length; n++) {
      if (sniffTlsClientHello(rec.subarray(0, n)).kind !== 'need-more') bad.push(n);
    }
    t.strictSame(bad, [], `${name}: prefixes 0..${rec.length - 1}`);
    t.equal(sniffTlsClientHello(rec).kind, 'tls', `${name}: complete`);
  }
  // the same, fed through a copy that ends exactly at the prefix (no shared memory beyond it)
  const rec = real.apiH2;
  t.equal(sniffTlsClientHello(Buffer.from(rec.subarray(0, rec.length - 1))).kind, 'need-more');
});

t.test('a hello split over several handshake records', async (t) => {
  const hs = fragmentOf(real.apiH2);
  const want = { kind: 'tls', sni: 'api.example.com', alpn: ['h2', 'http/1.1'] };
  const wrong: number[] = [];
  for (let cut = 1; cut < hs.length; cut++) {
    if (JSON.stringify(sniffTlsClientHello(records(hs, [cut]))) !== JSON.stringify(want)) wrong.push(cut);
  }
  t.strictSame(wrong, [], 'every cut point of two records, including inside the handshake header');

  const two = records(hs, [100]);
  t.equal(two.length, real.apiH2.length + 5);
  const early: number[] = [];
  for (let n = 0; n < two.length; n++) if (sniffTlsClientHello(two.subarray(0, n)).kind !== 'need-more') early.push(n);
  t.strictSame(early, [], 'prefixes of the two-record form need more');

  const tiny = records(
    hs,
    Array.from({ length: Math.floor(hs.length / 7) }, () => 7),
  );
  t.strictSame(sniffTlsClientHello(tiny), want, '7-byte records');
  const ones = records(
    hs,
    Array.from({ length: hs.length - 1 }, () => 1),
  );
  t.strictSame(sniffTlsClientHello(ones), want, '1-byte records');
  t.equal(sniffTlsClientHello(ones.subarray(0, ones.length - 1)).kind, 'need-more');
});

t.test('what OpenSSL (nginx) takes, tried with raw bytes, is read the same', async (t) => {
  // each of these got a ServerHello from nginx (see test/e2e/evasion.test.ts); before, each was "not TLS" here and passed opaque
  const want = { kind: 'tls', sni: 'api.example.com', alpn: ['h2', 'http/1.1'] };
  const mut = (f: (c: Buffer) => void) => {
    const c = Buffer.from(real.apiH2);
    f(c);
    return c;
  };
  const hs = fragmentOf(real.apiH2);
  const cases: [string, Buffer][] = [
    ['record version 3.0', mut((c) => (c[2] = 0))],
    ['record version 3.9', mut((c) => (c[2] = 9))],
    ['legacy_version 3.9', mut((c) => (c[10] = 9))],
    ['legacy_version 4.3', mut((c) => ((c[9] = 4), (c[10] = 3)))],
    ['an empty handshake record first', Buffer.concat([record(Buffer.alloc(0)), real.apiH2])],
    ['three records', records(hs, [50, 50])],
    ['three records, split inside the SNI', records(hs, [hs.indexOf(Buffer.from('api.example')) + 3, 7])],
  ];
  for (const [name, b] of cases) t.strictSame(sniffTlsClientHello(b), want, name);
  const upper = await captureClientHello({ servername: 'API.EXAMPLE.COM.' });
  t.match(sniffTlsClientHello(upper), { kind: 'tls', sni: 'api.example.com' }, 'upper case and a trailing dot: the same name');
});

t.test('bytes after the hello do not matter', async (t) => {
  const want = sniffTlsClientHello(real.apiH2);
  // middlebox-compat ChangeCipherSpec and 0-RTT application data may follow at once
  const ccs = record(Buffer.from([1]), 20, 0x0303);
  const early = record(Buffer.alloc(40, 0x55), 23, 0x0303);
  t.strictSame(sniffTlsClientHello(Buffer.concat([real.apiH2, ccs, early])), want);
  t.strictSame(sniffTlsClientHello(Buffer.concat([real.apiH2, Buffer.from([0xff, 0xff])])), want);
  // another handshake message in the same record
  const hs = Buffer.concat([fragmentOf(real.apiH2), handshake(Buffer.alloc(10), 11)]);
  t.strictSame(sniffTlsClientHello(records(hs)), want);
});

t.test('record header and first bytes', async (t) => {
  const cases: [string, number[], TlsSniff['kind']][] = [
    ['empty', [], 'need-more'],
    ['content type only', [0x16], 'need-more'],
    ['major version', [0x16, 0x03], 'need-more'],
    ['minor version', [0x16, 0x03, 0x01], 'need-more'],
    ['length high byte', [0x16, 0x03, 0x01, 0x02], 'need-more'],
    ['full header', [0x16, 0x03, 0x01, 0x02, 0x00], 'need-more'],
    ['handshake type', [0x16, 0x03, 0x01, 0x02, 0x00, 0x01], 'need-more'],
    ['application data record', [0x17, 0x03, 0x03, 0x00, 0x10], 'not-tls'],
    ['alert record', [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28], 'not-tls'],
    ['SSL 2 hello', [0x80, 0x2e, 0x01, 0x03, 0x01], 'not-tls'],
    ['major 2', [0x16, 0x02], 'not-tls'],
    // OpenSSL (nginx) answers these with a ServerHello: any record minor version, any legacy_version
    ['record version 3.0', [0x16, 0x03, 0x00], 'need-more'],
    ['record version 3.5', [0x16, 0x03, 0x05], 'need-more'],
    ['length over 2^14 (high byte)', [0x16, 0x03, 0x01, 0x41], 'not-tls'],
    ['length 2^14 + 1', [0x16, 0x03, 0x01, 0x40, 0x01], 'not-tls'],
    ['length 2^14', [0x16, 0x03, 0x01, 0x40, 0x00], 'need-more'],
    ['empty record (OpenSSL skips it)', [0x16, 0x03, 0x01, 0x00, 0x00], 'need-more'],
    ['ServerHello', [0x16, 0x03, 0x03, 0x00, 0x40, 0x02], 'not-tls'],
    ['legacy_version 2.0', [0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c, 0x02], 'need-more'],
    ['legacy_version 3.9', [0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c, 0x03, 0x09], 'need-more'],
    ['legacy_version 3.3', [0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c, 0x03, 0x03], 'need-more'],
    // a hello length too short for its own fields can never be read
    ['hello too short for its fields', [0x16, 0x03, 0x01, 0x01, 0x15, 0x01, 0x00, 0x00, 0x16], 'unreadable'],
    ['hello larger than 16 KiB', [0x16, 0x03, 0x01, 0x01, 0x15, 0x01, 0x00, 0x40, 0x01], 'unreadable'],
  ];
  for (const [name, bytes, kind] of cases) t.equal(sniffTlsClientHello(Buffer.from(bytes)).kind, kind, name);
  t.equal(sniffTlsClientHello(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n')).kind, 'not-tls', 'HTTP');
  t.equal(sniffTlsClientHello(Buffer.from('SSH-2.0-OpenSSH_9.6\r\n')).kind, 'not-tls', 'SSH banner');
});

t.test('server_name', async (t) => {
  const sni = (name: string | Buffer) => sniffTlsClientHello(helloRecord([sniExt(name), alpnExt(['h2'])]));
  t.strictSame(sni('API.Example.COM'), { kind: 'tls', sni: 'api.example.com', alpn: ['h2'] }, 'lower-cased');
  t.strictSame(sni('example.com.'), { kind: 'tls', sni: 'example.com', alpn: ['h2'] }, 'trailing dot dropped');
  t.strictSame(sni('_dmarc.my-host.example'), { kind: 'tls', sni: '_dmarc.my-host.example', alpn: ['h2'] });
  t.strictSame(sni('a'.repeat(63) + '.com'), { kind: 'tls', sni: 'a'.repeat(63) + '.com', alpn: ['h2'] }, '63-byte label');
  const invalid: [string, string | Buffer][] = [
    ['empty', ''],
    ['just a dot', '.'],
    ['space', 'exa mple.com'],
    ['NUL', 'example.com\0'],
    ['control byte', 'exa\x07mple.com'],
    ['high byte', Buffer.from('b\xfccher.de', 'latin1')],
    ['UTF-8', Buffer.from('bücher.de', 'utf8')],
    ['empty label', 'a..b'],
    ['leading dot', '.example.com'],
    ['two trailing dots', 'example.com..'],
    ['64-byte label', 'a'.repeat(64) + '.com'],
    [
      '254 bytes',
      Array.from({ length: 51 }, () => 'abcd')
        .join('.')
        .slice(0, 254),
    ],
    ['IPv6 literal', '2001:db8::1'],
    ['slash', 'example.com/x'],
  ];
  // a name no rule could match is not "no name": the hello is unreadable, and rules can refuse unknown traffic
  for (const [name, value] of invalid) t.equal(sni(value).kind, 'unreadable', `${name}: unreadable`);

  // other name types are skipped, the host_name entry is used (as Go does)
  const mixed = ext(0, vec16(Buffer.concat([u8(7), vec16(Buffer.from('zzz')), u8(0), vec16(Buffer.from('b.example'))])));
  t.strictSame(sniffTlsClientHello(helloRecord([mixed])), { kind: 'tls', sni: 'b.example' });
  // two server_name extensions, or two host names: servers refuse them, and which one counts is anyone's guess
  t.equal(sniffTlsClientHello(helloRecord([sniExt('one.example'), sniExt('two.example')])).kind, 'unreadable');
  t.equal(sniffTlsClientHello(helloRecord([sniExt('bad name'), sniExt('two.example')])).kind, 'unreadable');
  const twoNames = ext(0, vec16(Buffer.concat([u8(0), vec16(Buffer.from('a.example')), u8(0), vec16(Buffer.from('b.example'))])));
  t.equal(sniffTlsClientHello(helloRecord([twoNames])).kind, 'unreadable');
  // a name length past the list
  const over = ext(0, Buffer.concat([u16(14), u8(0), u16(200), Buffer.from('a.example.c')]));
  t.equal(sniffTlsClientHello(helloRecord([over, alpnExt(['h2'])])).kind, 'unreadable');
  // Encrypted Client Hello: the SNI is the outer, public name; said so
  t.strictSame(sniffTlsClientHello(helloRecord([sniExt('public.example'), ext(0xfe0d, Buffer.alloc(20))])), { kind: 'tls', sni: 'public.example', ech: true });
});

t.test('ALPN', async (t) => {
  const alpn = (e: Buffer) => sniffTlsClientHello(helloRecord([sniExt('x.example'), e]));
  t.strictSame(alpn(alpnExt(['h2', 'http/1.1', 'acme-tls/1'])), { kind: 'tls', sni: 'x.example', alpn: ['h2', 'http/1.1', 'acme-tls/1'] });
  t.strictSame(alpn(alpnExt(['h2', Buffer.from([0x0a, 0x0a]), 'h3'])), { kind: 'tls', sni: 'x.example', alpn: ['h2', 'h3'] }, 'non-printable names skipped');
  t.strictSame(alpn(ext(16, Buffer.alloc(0))), { kind: 'tls', sni: 'x.example' }, 'empty body');
  t.strictSame(alpn(ext(16, vec16(Buffer.alloc(0)))), { kind: 'tls', sni: 'x.example' }, 'empty list');
  // an empty name ends the list: RFC 7301 forbids it
  t.strictSame(alpn(ext(16, vec16(Buffer.from([2, 0x68, 0x32, 0, 2, 0x68, 0x33])))), { kind: 'tls', sni: 'x.example', alpn: ['h2'] });
  // a name running past the list keeps the ones before it
  t.strictSame(alpn(ext(16, vec16(Buffer.from([2, 0x68, 0x32, 9, 0x68, 0x33])))), { kind: 'tls', sni: 'x.example', alpn: ['h2'] });
});

t.test('length fields that point past the data', async (t) => {
  // extensions block: one SNI then an ALPN extension whose length runs past the message
  // a malformed hello is refused by servers; its name, even if one was seen, cannot be relied on
  const good = sniExt('found.example');
  const broken = Buffer.concat([u16(16), u16(500), Buffer.from([0, 3, 2, 0x68, 0x32])]);
  const hs = handshake(helloBody([good, broken]));
  t.equal(sniffTlsClientHello(records(hs)).kind, 'unreadable', 'extension length past the hello');

  // extensions block length other than the rest of the message (OpenSSL refuses it)
  const body = helloBody([sniExt('fits.example')]);
  const extLenAt = body.length - sniExt('fits.example').length - 2;
  body.writeUInt16BE(60000, extLenAt);
  t.equal(sniffTlsClientHello(records(handshake(body))).kind, 'unreadable');

  // session id / cipher suites / compression lengths past the message
  for (const [name, at] of [
    ['session id', 34],
    ['cipher suites', 34 + 33],
    ['compression', 34 + 33 + 8],
  ] as const) {
    const b = helloBody([sniExt('never.example')]);
    if (name === 'cipher suites') b.writeUInt16BE(0xfff0, at);
    else b[at] = 0xff;
    t.equal(sniffTlsClientHello(records(handshake(b))).kind, 'unreadable', name);
  }

  // handshake length shorter than the body: the hello ends early, inside the extensions
  const short = handshake(helloBody([sniExt('cut.example')]));
  short.writeUIntBE(short.length - 4 - 5, 1, 3);
  t.equal(sniffTlsClientHello(records(short)).kind, 'unreadable', 'hello shorter than its extensions');

  // handshake length longer than what the record carries, and the next record is not handshake
  const long = fragmentOf(real.apiH2);
  const cut = records(long.subarray(0, 200));
  const next = record(Buffer.from([1]), 20);
  t.equal(sniffTlsClientHello(cut).kind, 'need-more', 'the rest may still come');
  t.equal(sniffTlsClientHello(Buffer.concat([cut, next])).kind, 'unreadable', 'then a non-handshake record: the name can never be read');
  t.equal(sniffTlsClientHello(Buffer.concat([cut, Buffer.from([0x16, 0x02])])).kind, 'unreadable', 'a bad record header after the first');

  // a hello that ends after the compression methods has no extensions: that is fine
  t.strictSame(sniffTlsClientHello(helloRecord(null)), { kind: 'tls' });
  // a truncated 2-byte extensions length inside a complete record
  const trunc = handshake(Buffer.concat([helloBody(null), Buffer.from([0x00])]));
  t.equal(sniffTlsClientHello(records(trunc)).kind, 'unreadable');
});

t.test('a hello larger than the 16 KiB bound', async (t) => {
  const padding = ext(21, Buffer.alloc(17000));
  const hs = handshake(helloBody([padding, sniExt('late.example')]));
  t.ok(hs.length > 16 * 1024);
  const all = records(hs, [16384]);
  t.equal(sniffTlsClientHello(all).kind, 'unreadable', 'complete: TLS whose name is past the bound (padding can push it there)');
  t.equal(sniffTlsClientHello(all.subarray(0, 5 + 4)).kind, 'unreadable', 'decided from the handshake length alone');
  t.equal(sniffTlsClientHello(all.subarray(0, 5 + 3)).kind, 'need-more', 'not before it');
  // exactly at the bound is still reassembled
  const body = helloBody([sniExt('edge.example')]);
  const fill = 16 * 1024 - 4 - body.length - 4;
  const edge = handshake(helloBody([sniExt('edge.example'), ext(21, Buffer.alloc(fill))]));
  t.equal(edge.length, 16 * 1024);
  const edgeRecs = records(edge, [10000]);
  t.strictSame(sniffTlsClientHello(edgeRecs), { kind: 'tls', sni: 'edge.example' });
  t.equal(sniffTlsClientHello(edgeRecs.subarray(0, edgeRecs.length - 1)).kind, 'need-more');
});

t.test('does not read past the given length', async (t) => {
  const rec = real.apiH2;
  const wrong: number[] = [];
  for (let n = 0; n <= rec.length; n += 3) {
    // a view followed by more valid bytes must behave like a standalone copy
    const view = rec.subarray(0, n);
    const copy = Buffer.from(view);
    if (JSON.stringify(sniffTlsClientHello(view)) !== JSON.stringify(sniffTlsClientHello(copy))) wrong.push(n);
  }
  t.strictSame(wrong, []);
});

// ---- fuzz ----------------------------------------------------------------

t.test('100,000 random buffers', async (t) => {
  const rnd = prng(0x5eed1);
  let thrown = 0;
  const malformed: string[] = [];
  const kinds: Record<string, number> = { tls: 0, 'need-more': 0, 'not-tls': 0, unreadable: 0 };
  for (let i = 0; i < 100_000; i++) {
    const b = randomBytes(rnd, randInt(rnd, 0, 600));
    // most buffers get a plausible start so the parser's inner paths are reached
    const style = i % 4;
    if (style >= 1 && b.length >= 3) b.set([0x16, 0x03, randInt(rnd, 1, 4)]);
    if (style >= 2 && b.length >= 6) {
      b.writeUInt16BE(randInt(rnd, 1, b.length + 20), 3);
      b[5] = 1;
    }
    if (style === 3 && b.length >= 11) {
      b.writeUIntBE(randInt(rnd, 0, b.length), 6, 3);
      b.set([0x03, 0x03], 9);
    }
    try {
      const r = sniffTlsClientHello(b);
      kinds[r.kind]++;
      const e = shapeError(r);
      if (e && malformed.length < 5) malformed.push(e);
    } catch {
      thrown++;
    }
  }
  t.equal(thrown, 0, 'never throws');
  t.strictSame(malformed, [], 'always a well-formed answer');
  t.ok(kinds.unreadable > 0 && kinds['need-more'] > 0 && kinds['not-tls'] > 0, `all kinds seen: ${JSON.stringify(kinds)}`);
});

t.test('20,000 mutations of real hellos', async (t) => {
  const rnd = prng(0xc0ffee);
  const bases = Object.values(real);
  const fields = bases.map(lengthFields);
  let thrown = 0;
  const malformed: string[] = [];
  const unstable: string[] = [];
  const kinds: Record<string, number> = { tls: 0, 'need-more': 0, 'not-tls': 0, unreadable: 0 };
  let withSni = 0;
  for (let i = 0; i < 20_000; i++) {
    const which = i % bases.length;
    const base = bases[which];
    // room after the hello so a truncation is a view into a longer buffer
    const wide = Buffer.concat([base, randomBytes(rnd, 64)]);
    const m: Buffer = Buffer.from(wide);
    let len = base.length;
    const op = randInt(rnd, 0, 4);
    if (op === 0 || op === 4) {
      for (let k = randInt(rnd, 1, 8); k > 0; k--) m[randInt(rnd, 0, len - 1)] ^= randInt(rnd, 1, 255);
    }
    if (op === 1 || op === 3 || op === 4) {
      const f = fields[which][randInt(rnd, 0, fields[which].length - 1)];
      const max = 2 ** (8 * f.width) - 1;
      const old = m.readUIntBE(f.off, f.width);
      const grown = rnd() < 0.2 ? max : Math.min(max, old + randInt(rnd, 1, 300));
      m.writeUIntBE(rnd() < 0.1 ? randInt(rnd, 0, old) : grown, f.off, f.width);
    }
    if (op === 2 || op === 3) len = randInt(rnd, 0, len);
    if (op === 4 && rnd() < 0.5) len = randInt(rnd, len, m.length);
    const buf = m.subarray(0, len);
    try {
      const r = sniffTlsClientHello(buf);
      kinds[r.kind]++;
      if (r.kind === 'tls' && r.sni) withSni++;
      const e = shapeError(r);
      if (e && malformed.length < 5) malformed.push(e);
      // a verdict on a prefix must not change when more bytes arrive
      const cut = randInt(rnd, 0, len);
      const p = sniffTlsClientHello(m.subarray(0, cut));
      if (p.kind !== 'need-more' && JSON.stringify(p) !== JSON.stringify(r) && unstable.length < 5) {
        unstable.push(`#${i} prefix ${cut}/${len}: ${JSON.stringify(p)} then ${JSON.stringify(r)}`);
      }
    } catch {
      thrown++;
    }
  }
  t.equal(thrown, 0, 'never throws');
  t.strictSame(malformed, [], 'always a well-formed answer');
  t.strictSame(unstable, [], 'verdicts are stable as data arrives');
  t.ok(kinds.tls > 1000 && kinds['need-more'] > 1000 && kinds['not-tls'] > 100 && kinds.unreadable > 100, `all kinds seen: ${JSON.stringify(kinds)}`);
  t.ok(withSni > 1000, `many mutants still yield a name (${withSni})`);
});
