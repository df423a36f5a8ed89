// The differential harness with UDP scenarios (datagrams up to 64 KB on a
// connected socket, each echoed; a closed port) through route-all at TUN MTU
// 1500 and 65520, and through tproxy (redirect mode takes TCP only).
import t from 'tap';
import { diffTest } from '../helpers/diff/diff-test.js';
import { udpScenario } from '../helpers/diff/scenario.js';

t.setTimeout(900_000); // the file's own limit: three gateways one after another

t.test('route-all, MTU 1500', (t) => diffTest(t, 'route-all', udpScenario, 'UDP scenarios', { mtu: 1500 }));
t.test('route-all, MTU 65520', (t) => diffTest(t, 'route-all', udpScenario, 'UDP scenarios', { mtu: 65520 }));
t.test('tproxy', (t) => diffTest(t, 'tproxy', udpScenario, 'UDP scenarios'));
