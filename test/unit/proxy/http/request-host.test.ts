// Which host a request is for, as a server reads it (RFC 9112 §3.2), shared
// by the sniffer and the relay.
import t from 'tap';
import { parseAuthority, requestHost } from '../../../../src/proxy/http/request-host.js';

t.test('authorities', async (t) => {
  t.same(parseAuthority('Example.COM.'), { host: 'example.com', text: 'example.com' });
  t.same(parseAuthority('a.example:8080'), { host: 'a.example', text: 'a.example:8080' });
  t.same(parseAuthority('a.example:'), { host: 'a.example', text: 'a.example' }, 'an empty port (RFC 3986 §3.2.3)');
  t.same(parseAuthority('[2001:DB8::1]:443'), { host: '2001:db8::1', text: '[2001:db8::1]:443' });
  t.same(parseAuthority('192.0.2.1'), { host: '192.0.2.1', text: '192.0.2.1' });
  for (const bad of ['', 'a..b', 'a.example:80:80', 'a.example:99999', 'a%2eexample', 'u@a.example', 'a example', '[::1', '[nope]', '2001:db8::1', 'a/b', 'a\tb']) {
    t.equal(parseAuthority(bad), null, JSON.stringify(bad));
  }
});

t.test('the request target wins over Host, Host is replaced; what is ambiguous is an error', async (t) => {
  t.same(requestHost('GET', '/x', ['a.example'], true), { ok: true, host: 'a.example', path: '/x' });
  t.same(requestHost('GET', 'HTTP://B.Example:81/y?z', ['a.example'], true), { ok: true, host: 'b.example', replaceHost: 'b.example:81', path: '/y?z' });
  t.same(requestHost('GET', 'ftp://b.example', ['a.example'], true), { ok: true, host: 'b.example', replaceHost: 'b.example', path: '/' }, 'any scheme, as nginx');
  t.same(requestHost('CONNECT', 'c.example:443', ['c.example:443'], true), { ok: true, host: 'c.example', path: 'c.example:443' });
  t.same(requestHost('GET', '/', [], false), { ok: true, path: '/' }, 'HTTP/1.0 without Host');
  t.same(requestHost('GET', 'http://b.example/', [], false), { ok: true, host: 'b.example', replaceHost: 'b.example', path: '/' });
  for (const [m, target, hosts, why] of [
    ['GET', '/', ['a.example', 'b.example'], /more than one Host/],
    ['GET', '/', [], /without Host/],
    ['GET', '/', ['a.example:80:80'], /not a host/],
    ['GET', 'http://u@b.example/', ['a.example'], /userinfo/],
    ['GET', 'http:///x', ['a.example'], /no valid authority/],
    ['CONNECT', '/', ['a.example'], /CONNECT target/],
  ] as const) {
    const r = requestHost(m, target, hosts, true);
    t.equal(r.ok, false, `${m} ${target} ${JSON.stringify(hosts)}`);
    if (!r.ok) t.match(r.reason, why);
  }
});
