// The offload names the status, the supervisor's log line and the control API
// show: the read side as the kernel accepted it, the write side (tx_) only on
// top of checksum offload, tx_uso only where the kernel took USO.
import t from 'tap';
import { offloadNames } from '../../../src/tun/tun-offload.js';
import { NO_OFFLOAD, txOffload, type TunOffload } from '../../../src/tun/tun-device.js';

const ALL: TunOffload = { vnetHdrLen: 10, csum: true, tso4: true, tso6: true, uso: true };

t.test('offloadNames (table)', async (t) => {
  const rows: [string, TunOffload | undefined, string[]][] = [
    ['none', undefined, []],
    ['no virtio-net header', { ...ALL, vnetHdrLen: 0 }, []],
    ['the header alone', { ...NO_OFFLOAD, vnetHdrLen: 10 }, []],
    ['checksums only', { ...NO_OFFLOAD, vnetHdrLen: 10, csum: true }, ['csum', 'tx_csum']],
    ['TSO without USO (a kernel before 6.2)', { ...ALL, uso: false }, ['csum', 'tso4', 'tso6', 'tx_csum', 'tx_tso4', 'tx_tso6']],
    ['everything: USO on write too', ALL, ['csum', 'tso4', 'tso6', 'uso', 'tx_csum', 'tx_tso4', 'tx_tso6', 'tx_uso']],
    ['USO without checksum offload: read only', { ...ALL, csum: false }, ['tso4', 'tso6', 'uso']],
  ];
  for (const [name, o, want] of rows) t.same(offloadNames(o), want, name);
  t.equal(txOffload(ALL).uso, true);
  t.equal(txOffload({ ...ALL, uso: false }).uso, false);
});
