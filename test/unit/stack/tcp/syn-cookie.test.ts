// The SYN cookie codec: roundtrip, what it rejects, key rotation, options in tsVal.
import t from 'tap';
import { COOKIE_MSS, SynCookies, decodeTsOptions, encodeTsOptions, mssIndex, newCookieDecoded } from '../../../../src/stack/tcp/syn-cookie.js';

const CLIENT = 0xc0000201; // 192.0.2.1
const SERVER = 0xc6336401; // 198.51.100.1

t.test('roundtrip: every MSS bucket, ISNs near 0 and the wrap, both tuple kinds', async (t) => {
  const sc = new SynCookies();
  for (const isn of [0, 1, 1000, 0x7fffffff, 0xffffffff]) {
    for (const mss of [-1, 100, 536, 1000, 1220, 1400, 1440, 1460, 1500, 9000, 16344, 65480, 65495]) {
      const now = 5_000 + (isn % 7);
      const iss = sc.make(sc.setV4(CLIENT, SERVER, 40000, 80), isn, mss, now);
      t.equal(sc.check(sc.setV4(CLIENT, SERVER, 40000, 80), isn, iss, now + 50), COOKIE_MSS[mssIndex(mss)]);
    }
  }
  const pkt = Buffer.alloc(40);
  pkt.write('20010db8000000000000000000000001', 8, 'hex');
  pkt.write('20010db8000000000000000000000002', 24, 'hex');
  const iss = sc.make(sc.setV6(pkt, 8, 24, 50000, 443), 77, 1440, 0);
  t.equal(sc.check(sc.setV6(pkt, 8, 24, 50000, 443), 77, iss, 10), 1440);
  pkt[39] = 3; // another server address
  t.equal(sc.check(sc.setV6(pkt, 8, 24, 50000, 443), 77, iss, 10), -1);
  t.same([mssIndex(-1), mssIndex(535), mssIndex(1460), mssIndex(1499), mssIndex(65480), mssIndex(65535)], [0, 0, 4, 4, 7, 7]);
});

t.test('a cookie for another tuple or client ISN is rejected', async (t) => {
  const sc = new SynCookies();
  const iss = sc.make(sc.setV4(CLIENT, SERVER, 40000, 80), 1234, 1460, 0);
  t.equal(sc.check(sc.setV4(CLIENT + 1, SERVER, 40000, 80), 1234, iss, 0), -1, 'client address');
  t.equal(sc.check(sc.setV4(CLIENT, SERVER ^ 0x100, 40000, 80), 1234, iss, 0), -1, 'server address');
  t.equal(sc.check(sc.setV4(CLIENT, SERVER, 40001, 80), 1234, iss, 0), -1, 'client port');
  t.equal(sc.check(sc.setV4(CLIENT, SERVER, 40000, 443), 1234, iss, 0), -1, 'server port');
  t.equal(sc.check(sc.setV4(CLIENT, SERVER, 40000, 80), 1235, iss, 0), -1, 'client ISN');
  // Bits 28-30 (the MSS index) are not authenticated, as in Linux: only someone who saw the
  // SYN-ACK can flip them, and then it names an MSS its own SYN could have named.
  for (const bit of [...Array(28).keys(), 31]) {
    if (sc.check(sc.setV4(CLIENT, SERVER, 40000, 80), 1234, (iss ^ (1 << bit)) >>> 0, 0) !== -1) t.fail(`bit ${bit} flipped still passes`);
  }
  t.equal(new SynCookies().check(sc.setV4(CLIENT, SERVER, 40000, 80), 1234, iss, 0), -1, 'another instance (key) rejects it');
});

t.test('periods: the previous key is still accepted, older counters are not', async (t) => {
  let keys = 0;
  const sc = new SynCookies({
    periodMs: 64_000,
    random: (k) => {
      k[0] = 0x9e3779b9 * ++keys;
      k[1] = keys;
    },
  });
  const w = () => sc.setV4(CLIENT, SERVER, 40000, 80);
  const early = sc.make(w(), 99, 1460, 1_000);
  const late = sc.make(w(), 99, 1460, 63_999);
  t.equal(keys, 1);
  t.equal(sc.check(w(), 99, late, 64_000), 1460, 'just after the rotation');
  t.equal(keys, 2, 'a new key for the new period');
  t.equal(sc.check(w(), 99, early, 127_999), 1460, 'a cookie from the previous period');
  t.equal(sc.check(w(), 99, early, 128_000), -1, 'two periods on: expired');
  t.equal(sc.check(w(), 99, late, 200_000), -1, 'long expired');
  const fresh = sc.make(w(), 99, 1460, 200_000);
  t.not(fresh, early, 'new key, new cookie');
  t.equal(sc.check(w(), 99, fresh, 200_001), 1460);
  // A clock jump of several periods leaves no stale key behind.
  t.equal(sc.check(w(), 99, fresh, 1_000_000), -1);
});

t.test('options ride in the low bits of tsVal and come back in tsEcr', async (t) => {
  const d = newCookieDecoded();
  for (const tsNow of [0, 63, 64, 1000, 0xffffffff, 0x80000000]) {
    for (const [ws, sack] of [
      [-1, false],
      [0, true],
      [7, false],
      [14, true],
      [-1, true],
    ] as [number, boolean][]) {
      const ts = encodeTsOptions(tsNow, ws, sack);
      t.ok(((ts - tsNow) | 0) <= 0 && ((tsNow - ts) | 0) < 128, `tsVal ${ts} not ahead of ${tsNow}, within 2^7`);
      t.ok(decodeTsOptions(ts, d));
      t.same([d.wscale, d.sackOk], [ws, sack]);
    }
  }
  t.notOk(decodeTsOptions(0x20, d), 'ECN bit: not ours');
  t.ok(decodeTsOptions(0x0f, d));
  t.equal(d.wscale, -1, 'shift 15 means none');
  const sc = new SynCookies();
  const w = sc.setV4(CLIENT, SERVER, 40000, 80);
  const iss = sc.make(w, 5000, 1460, 0);
  const tsVal = encodeTsOptions(123456, 9, true);
  t.ok(sc.checkAck(w, 5001, (iss + 1) >>> 0, 777, tsVal, 10, d));
  t.same(d, { mss: 1460, wscale: 9, sackOk: true, tsOk: true });
  t.ok(sc.checkAck(w, 5001, (iss + 1) >>> 0, -1, 0, 10, d), 'no timestamps on the ACK');
  t.same(d, { mss: 1460, wscale: -1, sackOk: false, tsOk: false }, 'then no wscale and no SACK');
  t.notOk(sc.checkAck(w, 5002, (iss + 1) >>> 0, -1, 0, 10, d), "seq - 1 is not the SYN's");
  t.notOk(sc.checkAck(w, 5001, iss, -1, 0, 10, d), 'ack - 1 is not the cookie');
});

t.test('1,000,000 random ACKs: none is taken for a cookie', async (t) => {
  const sc = new SynCookies();
  let x = 0x12345678;
  const rnd = () => (x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0);
  let accepted = 0;
  const w = sc.setV4(CLIENT, SERVER, 40000, 80);
  sc.make(w, 1, 1460, 0); // the current period has a key
  const start = performance.now();
  for (let i = 0; i < 1_000_000; i++) {
    if (sc.check(w, rnd(), rnd(), 30_000 + (i & 1023)) !== -1) accepted++;
  }
  const ms = performance.now() - start;
  t.equal(accepted, 0, `accepted ${accepted} (expected about 2^-28 per guess)`);
  t.comment(`1e6 checks in ${ms.toFixed(0)} ms (${((ms * 1000) / 1e6).toFixed(2)} us each, up to two hashes)`);
  // and a blind guess at a known tuple and ISN: the only unknown is the cookie
  let hit = 0;
  for (let i = 0; i < 1_000_000; i++) if (sc.check(w, 1, rnd(), 30_000) !== -1) hit++;
  t.equal(hit, 0, 'blind guesses at a known SYN');
});
