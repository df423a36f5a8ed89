import t from 'tap';
import { DestinationCheck } from '../../../src/proxy/destination-check.js';

t.test('learned answers count until their TTL; a miss asks the resolvers once', async (t) => {
  let now = 1_000_000;
  const asked: string[] = [];
  const answers: Record<string, { address: string; ttl: number }[]> = {
    'a.example': [
      { address: '2001:DB8:0::7', ttl: 30 },
      { address: '203.0.113.7', ttl: 30 },
    ],
  };
  const d = new DestinationCheck(
    async (n) => (asked.push(n), answers[n] ?? []),
    100,
    () => now,
  );
  d.learn('B.Example.', ['203.0.113.9'], 10);
  t.equal(d.verify('b.example', '203.0.113.9'), true, "learned from the gateway's own DNS answer: at once");
  t.equal(d.verify('b.example', '::ffff:203.0.113.9'), true, 'an IPv4-mapped address is the same');
  now += 11_000;
  t.equal(await d.verify('b.example', '203.0.113.9'), false, 'expired, and the resolvers do not know it');
  t.same(asked, ['b.example']);
  t.equal(d.verify('b.example', '203.0.113.9'), false, 'not asked again within 5 s');
  t.equal(await d.verify('a.example', '2001:db8::7'), true, 'asked: IPv6 in any spelling');
  t.equal(d.verify('a.example', '203.0.113.7'), true, 'and cached');
  t.equal(d.verify('a.example', 'not-an-address'), false);
  const none = new DestinationCheck(null);
  t.equal(none.verify('a.example', '203.0.113.7'), false, 'no resolver: only learned answers count');
});
