// The verdict on each HTTP request of a connection: its own rule, held to
// what the connection is (its fake IP's name, its route), and a secret header
// only where the connection really goes to the name.
import t from 'tap';
import { Policy } from '../../../src/proxy/policy.js';
import { DestinationCheck } from '../../../src/proxy/destination-check.js';
import { requestDecider, type RequestContext } from '../../../src/proxy/request-policy.js';
import type { Rule } from '../../../src/proxy/rules/rule-types.js';
import type { RequestVerdict } from '../../../src/proxy/http/http-forward.js';
import { cidrMatch } from '../../../src/proxy/rules/cidr-match.js';

const rules: Rule[] = [
  { index: 0, match: { domain: ['blocked.example'] }, action: { type: 'reject' } },
  { index: 1, match: { domain: ['app.example'] }, action: { type: 'set-header', header: 'Authorization', value: { env: 'TOK' } } },
  { index: 2, match: { domain: ['corp.example'] }, action: { type: 'proxy', upstream: 'corp' } },
  { index: 3, match: { cidr: [cidrMatch('203.0.113.99/32')!] }, action: { type: 'set-header', header: 'X-Key', value: { env: 'K' } } },
];
const policy = new Policy(
  rules,
  new Map([['corp', { name: 'corp', type: 'socks5', host: '127.0.0.1', port: 1080 }]]),
  new Map([
    [1, 'Bearer s3cret'],
    [3, 'k'],
  ]),
);

let asked = 0;
const destinations = new DestinationCheck(async (name) => {
  asked++;
  return name === 'app.example' ? [{ address: '203.0.113.7', ttl: 60 }] : [];
});

const ctx = (over: Partial<RequestContext> = {}): RequestContext => ({
  policy,
  destinations,
  input: { protocol: 'tcp', dstAddress: '203.0.113.7', dstPort: 80, srcAddress: '192.0.2.1' },
  decision: policy.peek({ protocol: 'http', dstAddress: '203.0.113.7', dstPort: 80, srcAddress: '192.0.2.1' }),
  dialled: { address: '203.0.113.7' },
  onRefused: () => {},
  ...over,
});
const req = (host?: string) => ({ method: 'GET', path: '/', ...(host ? { host } : {}) });
const verdict = async (c: RequestContext, host?: string): Promise<RequestVerdict> => requestDecider(c)(req(host));

t.test('a secret goes only to an address the gateway resolved for the name', async (t) => {
  const ok = await verdict(ctx(), 'app.example');
  t.same(ok.edits, [{ op: 'set', name: 'Authorization', value: 'Bearer s3cret' }], "the name's own address: added");
  const refused: string[] = [];
  const other = await verdict(
    ctx({
      input: { protocol: 'tcp', dstAddress: '203.0.113.8', dstPort: 80, srcAddress: '192.0.2.1' },
      dialled: { address: '203.0.113.8' },
      onRefused: (why) => refused.push(why),
    }),
    'app.example',
  );
  t.equal(other.refuse?.status, 403, 'another address: refused, not passed with the secret');
  t.same(other.edits, [], 'and no header');
  t.match(other.refuse?.body, /203\.0\.113\.8 is not one of its addresses/);
  t.same(refused, ['secret-withheld'], 'told (for the log line)');
  const byName = await verdict(ctx({ dialled: { name: 'app.example' } }), 'app.example');
  t.equal(byName.edits.length, 1, 'dialled by the name itself (a fake IP, an explicit-proxy name): added');
  const cidr = await verdict(
    ctx({ input: { protocol: 'tcp', dstAddress: '203.0.113.99', dstPort: 80, srcAddress: '192.0.2.1' }, dialled: { address: '203.0.113.99' } }),
    'anything.example',
  );
  t.equal(cidr.edits.length, 1, 'a rule on the address itself needs no name check');
  const before = asked;
  await verdict(ctx({ dialled: { address: '203.0.113.8' } }), 'app.example');
  t.equal(asked, before, 'a miss is not asked again at once');
});

t.test('a fake IP stands for one name; a request for another is 421', async (t) => {
  const c = ctx({
    fakeName: 'app.example',
    dialled: { name: 'app.example' },
    input: { protocol: 'tcp', hostname: 'app.example', dstAddress: '198.18.0.4', dstPort: 80, srcAddress: '192.0.2.1' },
  });
  t.equal((await verdict(c, 'app.example')).edits.length, 1);
  t.equal((await verdict(c)).edits.length, 1, "no Host (HTTP/1.0): the mapping's name");
  t.equal((await verdict(c, '198.18.0.4')).refuse, undefined, 'the fake address itself as Host');
  const wrong = await verdict(c, 'n11.example');
  t.equal(wrong.refuse?.status, 421);
  t.match(wrong.refuse?.body, /app\.example's, not n11\.example's/);
});

t.test('rules per request: 403 for a reject, 421 for another route', async (t) => {
  t.equal((await verdict(ctx(), 'blocked.example')).refuse?.status, 403);
  const viaProxy = await verdict(ctx(), 'corp.example');
  t.equal(viaProxy.refuse?.status, 421, 'the connection goes direct; this name goes through corp');
  t.match(viaProxy.refuse?.body, /retry on a new connection/);
  t.same(await verdict(ctx(), 'plain.example'), { rule: 'default', action: 'direct', edits: [] });
});
