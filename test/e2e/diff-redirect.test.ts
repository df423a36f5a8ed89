// The differential harness (test/helpers/diff/) in redirect mode: generated TCP
// scenarios, each over the kernel path and through the gateway at once, IPv4
// and IPv6; every difference must be in known-differences.ts.
import t from 'tap';
import { diffTest } from '../helpers/diff/diff-test.js';
import { tcpScenario } from '../helpers/diff/scenario.js';

await diffTest(t, 'redirect', tcpScenario, 'TCP scenarios');
