// Who the data plane becomes: a name, a uid or uid:gid, looked up in passwd.
import t from 'tap';
import { dataPlaneUser, resolveUser } from '../../../src/gateway/privileges.js';
import { ConfigError } from '../../../src/config/config-error.js';
import { thrown } from '../../helpers/thrown.js';

const PASSWD = [
  { user: 'root', uid: 0, gid: 0 },
  { user: 'nobody', uid: 65534, gid: 65534 },
  { user: 'svc', uid: 1001, gid: 1002 },
];

t.test('a name, a uid, a uid:gid', async (t) => {
  t.same(resolveUser('svc', PASSWD), { user: 'svc', uid: 1001, gid: 1002 });
  t.same(resolveUser('1001', PASSWD), { user: 'svc', uid: 1001, gid: 1002 }, 'a known uid takes its name and group');
  t.same(resolveUser('1001:7', PASSWD), { user: 'svc', uid: 1001, gid: 7 });
  t.same(resolveUser('4242', PASSWD), { user: '4242', uid: 4242, gid: 4242 }, 'an unknown uid is its own group');
  t.throws(() => resolveUser('nosuch', PASSWD), /--user: no user "nosuch"/);
});

t.test('dataPlaneUser: root keeps root; an unknown --user is a usage error (exit 2)', { skip: process.getuid?.() === 0 ? false : 'needs root' }, async (t) => {
  t.equal(dataPlaneUser({ user: 'root' }), null);
  t.equal(dataPlaneUser({ user: '0' }), null);
  t.ok(thrown(() => dataPlaneUser({ user: 'tunsteer-no-such-user' })) instanceof ConfigError, 'a ConfigError');
});
