// Reads the server name from a QUIC client's Initial packets, so name rules
// apply to HTTP/3 too. Initial packets are encrypted, but with keys anyone
// can derive from the packet's Destination Connection ID (RFC 9001 §5.2):
// this removes header protection (§5.4), decrypts with AES-128-GCM, walks the
// frames (RFC 9000 §17.2.2, §19), reassembles the CRYPTO stream and reads
// the ClientHello in it with the TLS sniffer. Versions 1 (RFC 9000) and 2
// (RFC 9369). A hello may span several Initial packets and datagrams (post-
// quantum key shares make it ~1.8 KB): one reader per flow takes datagrams
// until the hello is complete, bounded. Pure apart from node:crypto; never
// throws.
import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';
import { MAX_HELLO, readClientHello } from './tls-client-hello.js';

export type QuicSniff =
  | { kind: 'quic'; version: number; sni?: string; alpn?: string[] }
  | { kind: 'need-more' }
  /** A QUIC Initial whose hello cannot be read (malformed, too big, undecryptable): unknown traffic. */
  | { kind: 'unreadable'; reason: string }
  | { kind: 'not-quic' };

interface VersionKeys {
  salt: Buffer;
  /** Long-header packet types of Initial and Retry packets (RFC 9369 §3.2 changes them in v2). */
  initialType: number;
  retryType: number;
  labels: { key: string; iv: string; hp: string };
}

const V1 = 0x00000001;
const V2 = 0x6b3343cf;
const VERSIONS = new Map<number, VersionKeys>([
  [V1, { salt: Buffer.from('38762cf7f55934b34d179ae6a4c80cadccbb7f0a', 'hex'), initialType: 0, retryType: 3, labels: { key: 'quic key', iv: 'quic iv', hp: 'quic hp' } }],
  [V2, { salt: Buffer.from('0dede3def700a6db819381be6e269dcbf9bd2ed9', 'hex'), initialType: 1, retryType: 0, labels: { key: 'quicv2 key', iv: 'quicv2 iv', hp: 'quicv2 hp' } }],
]);

/** A client's Initial datagram is at least this long (RFC 9000 §14.1). */
export const MIN_INITIAL_DATAGRAM = 1200;
/** Datagrams a reader takes before it gives up. */
const MAX_DATAGRAMS = 8;

export interface InitialKeys {
  key: Buffer;
  iv: Buffer;
  hp: Buffer;
}

/** HKDF-Expand-Label (RFC 8446 §7.1) with SHA-256, for lengths up to one hash block. */
function expandLabel(secret: Buffer, label: string, length: number): Buffer {
  const full = Buffer.from(`tls13 ${label}`, 'latin1');
  const info = Buffer.concat([Buffer.from([length >> 8, length & 0xff, full.length]), full, Buffer.from([0])]);
  return createHmac('sha256', secret)
    .update(Buffer.concat([info, Buffer.from([1])]))
    .digest()
    .subarray(0, length);
}

/** The client's Initial keys for a Destination Connection ID (RFC 9001 §5.2; RFC 9369 §3.3). */
export function clientInitialKeys(dcid: Buffer, version: number): InitialKeys | null {
  const v = VERSIONS.get(version);
  if (!v) return null;
  const initial = createHmac('sha256', v.salt).update(dcid).digest(); // HKDF-Extract
  const client = expandLabel(initial, 'client in', 32);
  return { key: expandLabel(client, v.labels.key, 16), iv: expandLabel(client, v.labels.iv, 12), hp: expandLabel(client, v.labels.hp, 16) };
}

/** A variable-length integer (RFC 9000 §16) at `p`: [value, next offset], or null past the end. */
function varint(b: Buffer, p: number): [number, number] | null {
  if (p >= b.length) return null;
  const len = 1 << (b[p] >> 6);
  if (p + len > b.length) return null;
  let v = b[p] & 0x3f;
  for (let i = 1; i < len; i++) v = v * 256 + b[p + i];
  return [v, p + len];
}

/** Where a long-header packet's parts lie, or why it is not one we can read. */
interface LongHeader {
  version: number;
  type: number;
  dcid: Buffer;
  /** Offset of the (protected) packet number. */
  pnOffset: number;
  /** End of this packet in the datagram (coalesced packets follow). */
  end: number;
}

function longHeader(d: Buffer, at: number): LongHeader | 'short' | 'bad' {
  if (at >= d.length) return 'bad';
  const first = d[at];
  if ((first & 0x80) === 0) return 'short'; // a short header: 1-RTT, nothing for us
  if (at + 6 > d.length) return 'bad';
  const version = d.readUInt32BE(at + 1);
  let p = at + 5;
  const dcidLen = d[p++];
  if (dcidLen > 20 || p + dcidLen >= d.length) return 'bad';
  const dcid = d.subarray(p, p + dcidLen);
  p += dcidLen;
  const scidLen = d[p++];
  if (scidLen > 20 || p + scidLen > d.length) return 'bad';
  p += scidLen;
  const v = VERSIONS.get(version);
  if (!v) return { version, type: -1, dcid, pnOffset: p, end: d.length };
  const type = (first >> 4) & 0x03;
  if (type === v.initialType) {
    const token = varint(d, p);
    if (!token || token[1] + token[0] > d.length) return 'bad';
    p = token[1] + token[0];
  } else if (type === v.retryType) {
    return 'bad'; // a server's packet, never a client's
  }
  const length = varint(d, p);
  if (!length || length[1] + length[0] > d.length) return 'bad';
  return { version, type, dcid, pnOffset: length[1], end: length[1] + length[0] };
}

/** Removes header protection with `mask` and decrypts one Initial packet starting at h.start: its plaintext frames, or null. */
function decrypt(d: Buffer, h: LongHeader & { start: number }, keys: InitialKeys, mask: Buffer): Buffer | null {
  const start = h.start;
  const header = Buffer.from(d.subarray(start, h.pnOffset + 4));
  header[0] ^= mask[0] & 0x0f; // long header: the low 4 bits (RFC 9001 §5.4.1)
  const pnLen = (header[0] & 0x03) + 1;
  let pn = 0;
  const pnAt = h.pnOffset - start;
  for (let i = 0; i < pnLen; i++) {
    header[pnAt + i] ^= mask[1 + i];
    pn = pn * 256 + header[pnAt + i];
  }
  const aad = header.subarray(0, pnAt + pnLen);
  const body = d.subarray(h.pnOffset + pnLen, h.end);
  if (body.length < 16) return null;
  const nonce = Buffer.from(keys.iv);
  // the packet number, left-padded to the IV's length, XORed into it (RFC 9001 §5.3); Initial numbers are small
  for (let i = 0; i < 4; i++) nonce[11 - i] ^= (pn / 256 ** i) & 0xff;
  try {
    const gcm = createDecipheriv('aes-128-gcm', keys.key, nonce);
    gcm.setAAD(aad);
    gcm.setAuthTag(body.subarray(body.length - 16));
    return Buffer.concat([gcm.update(body.subarray(0, body.length - 16)), gcm.final()]);
  } catch {
    return null; // not ours to read: a forged or corrupted packet
  }
}

/**
 * The frames of an Initial packet's plaintext: CRYPTO data by offset.
 * Initial packets may carry only PADDING, PING, ACK, CRYPTO and
 * CONNECTION_CLOSE (RFC 9000 §17.2.2); anything else is a protocol error.
 */
function cryptoFrames(p: Buffer, out: (offset: number, data: Buffer) => boolean): boolean {
  let i = 0;
  while (i < p.length) {
    const type = p[i++];
    if (type === 0x00 || type === 0x01) continue; // PADDING, PING
    if (type === 0x02 || type === 0x03) {
      // ACK: largest, delay, range count, first range, ranges, [ECN counts]
      let r = varint(p, i);
      for (let k = 0; k < 2 && r; k++) r = varint(p, r[1]);
      if (!r) return false;
      const count = r[0];
      r = varint(p, r[1]);
      for (let k = 0; k < count * 2 + (type === 0x03 ? 3 : 0) && r; k++) r = varint(p, r[1]);
      if (!r) return false;
      i = r[1];
      continue;
    }
    if (type === 0x06) {
      const off = varint(p, i);
      const len = off && varint(p, off[1]);
      if (!off || !len || len[1] + len[0] > p.length) return false;
      if (!out(off[0], p.subarray(len[1], len[1] + len[0]))) return false;
      i = len[1] + len[0];
      continue;
    }
    if (type === 0x1c) {
      let r = varint(p, i); // error code
      r = r && varint(p, r[1]); // frame type
      const reason = r && varint(p, r[1]);
      if (!reason || reason[1] + reason[0] > p.length) return false;
      i = reason[1] + reason[0];
      continue;
    }
    return false;
  }
  return true;
}

/**
 * One flow's reader: give it the client's datagrams in order until it
 * answers something other than 'need-more'. The CRYPTO stream is kept by
 * offset (retransmissions and reordered frames overlap) up to 16 KiB.
 */
export class QuicInitialReader {
  private readonly crypto = new Map<number, Buffer>();
  private datagrams = 0;
  private version = 0;
  private keys: { dcid: Buffer; keys: InitialKeys } | null = null;
  private verdict: QuicSniff | null = null;

  push(d: Buffer): QuicSniff {
    if (this.verdict) return this.verdict;
    this.datagrams++;
    const first = this.datagrams === 1;
    // a client's first datagram starts with a long header Initial of a version we know
    if (first && (d.length < 7 || (d[0] & 0xc0) !== 0xc0 || !VERSIONS.has(d.readUInt32BE(1)))) return this.decide({ kind: 'not-quic' });
    let at = 0;
    let any = false;
    while (at < d.length) {
      const h = longHeader(d, at);
      if (h === 'short') break;
      if (h === 'bad') return this.decide(first && !any ? { kind: 'not-quic' } : { kind: 'unreadable', reason: 'malformed long header' });
      const v = VERSIONS.get(h.version);
      if (v && h.type === v.initialType) {
        if (first && !any && d.length < MIN_INITIAL_DATAGRAM) return this.decide({ kind: 'not-quic' });
        this.version ||= h.version;
        const plain = this.open(d, { ...h, start: at });
        if (plain === null) return this.decide(first && !any ? { kind: 'not-quic' } : { kind: 'unreadable', reason: 'Initial packet does not decrypt' });
        any = true;
        const ok = cryptoFrames(plain, (off, data) => this.take(off, data));
        if (!ok) return this.decide({ kind: 'unreadable', reason: 'malformed frames or CRYPTO past 16 KiB' });
      }
      if (h.end <= at) break;
      at = h.end;
    }
    if (first && !any) return this.decide({ kind: 'not-quic' });
    const hello = readClientHello(this.stream(), false);
    if (hello.kind === 'tls') {
      const out: QuicSniff = { kind: 'quic', version: this.version };
      if (hello.sni !== undefined) out.sni = hello.sni;
      if (hello.alpn !== undefined) out.alpn = hello.alpn;
      return this.decide(out);
    }
    if (hello.kind === 'unreadable' || hello.kind === 'not-tls')
      return this.decide({ kind: 'unreadable', reason: hello.kind === 'unreadable' ? hello.reason : 'CRYPTO stream is not a ClientHello' });
    if (this.datagrams >= MAX_DATAGRAMS) return this.decide({ kind: 'unreadable', reason: `no complete hello in ${MAX_DATAGRAMS} datagrams` });
    return { kind: 'need-more' };
  }

  /** No more datagrams will be looked at: an undecided flow is unreadable (unknown). */
  finish(): QuicSniff {
    if (this.verdict) return this.verdict;
    return this.decide(this.datagrams === 0 ? { kind: 'not-quic' } : { kind: 'unreadable', reason: 'hello incomplete within the sniff budget' });
  }

  private decide(v: QuicSniff): QuicSniff {
    this.verdict = v;
    this.crypto.clear();
    return v;
  }

  private open(d: Buffer, h: LongHeader & { start: number }): Buffer | null {
    // the client keeps its first DCID for every Initial until the server answers
    if (!this.keys || !this.keys.dcid.equals(h.dcid)) {
      const keys = clientInitialKeys(h.dcid, h.version);
      if (!keys) return null;
      this.keys = { dcid: Buffer.from(h.dcid), keys };
    }
    const sampleAt = h.pnOffset + 4;
    if (sampleAt + 16 > h.end) return null;
    const mask = createCipheriv('aes-128-ecb', this.keys.keys.hp, null).update(d.subarray(sampleAt, sampleAt + 16));
    return decrypt(d, h, this.keys.keys, mask);
  }

  private take(offset: number, data: Buffer): boolean {
    if (offset + data.length > MAX_HELLO) return false;
    const have = this.crypto.get(offset);
    if (!have || have.length < data.length) this.crypto.set(offset, Buffer.from(data));
    return true;
  }

  /** The CRYPTO stream's contiguous prefix from offset 0. */
  private stream(): Buffer {
    const parts = [...this.crypto.entries()].sort((a, b) => a[0] - b[0]);
    const out = Buffer.alloc(MAX_HELLO);
    let end = 0;
    for (const [off, data] of parts) {
      if (off > end) break;
      const from = end - off;
      if (from < data.length) end += data.copy(out, end, from);
    }
    return out.subarray(0, end);
  }
}
