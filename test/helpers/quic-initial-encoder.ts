// A QUIC client Initial encoder for the tests (curl here has no HTTP/3): a
// ClientHello is cut into CRYPTO frames, put in Initial packets (RFC 9000
// §17.2.2) padded to 1200-byte datagrams (§14.1), encrypted with AES-128-GCM
// and header-protected (RFC 9001 §5.3, §5.4), for QUIC v1 or v2 (RFC 9369).
// Keys come from src/proxy/sniff/quic-initial.ts clientInitialKeys, which
// the unit test checks against the RFC 9001/9369 Appendix A values.
import { createCipheriv, randomBytes } from 'node:crypto';
import { clientInitialKeys } from '../../src/proxy/sniff/quic-initial.js';
import { captureClientHello } from './sniff-capture.js';

export const QUIC_V1 = 0x00000001;
export const QUIC_V2 = 0x6b3343cf;

function varint(n: number): Buffer {
  if (n < 64) return Buffer.from([n]);
  if (n < 16384) return Buffer.from([0x40 | (n >> 8), n & 0xff]);
  const b = Buffer.alloc(4);
  b.writeUInt32BE((0x80000000 | n) >>> 0);
  return b;
}

export function cryptoFrame(offset: number, data: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x06]), varint(offset), varint(data.length), data]);
}

/** One protected Initial packet carrying `frames`, padded (PADDING frames) so it fills `size` bytes. */
export function initialPacket(o: { version: number; dcid: Buffer; scid: Buffer; pn: number; frames: Buffer; size?: number }): Buffer {
  const keys = clientInitialKeys(o.dcid, o.version)!;
  const type = o.version === QUIC_V2 ? 1 : 0;
  const pnLen = 4;
  const first = 0xc0 | (type << 4) | (pnLen - 1);
  const fixed = Buffer.concat([Buffer.from([first]), u32(o.version), Buffer.from([o.dcid.length]), o.dcid, Buffer.from([o.scid.length]), o.scid, varint(0) /* token */]);
  // length of the Length field itself depends on the payload size: use 2 bytes
  const headerLen = fixed.length + 2 + pnLen;
  const want = o.size ?? 0;
  const payloadLen = Math.max(o.frames.length, want - headerLen - 16, 20 - 16);
  const payload = Buffer.concat([o.frames, Buffer.alloc(payloadLen - o.frames.length)]); // zeros are PADDING frames
  const length = pnLen + payload.length + 16;
  const header = Buffer.concat([fixed, Buffer.from([0x40 | (length >> 8), length & 0xff]), u32(o.pn)]);
  const nonce = Buffer.from(keys.iv);
  for (let i = 0; i < 4; i++) nonce[11 - i] ^= (o.pn >>> (8 * i)) & 0xff;
  const gcm = createCipheriv('aes-128-gcm', keys.key, nonce);
  gcm.setAAD(header);
  const sealed = Buffer.concat([gcm.update(payload), gcm.final(), gcm.getAuthTag()]);
  const pnOffset = header.length - pnLen;
  const mask = createCipheriv('aes-128-ecb', keys.hp, null).update(sealed.subarray(4 - pnLen, 4 - pnLen + 16));
  const out = Buffer.concat([header, sealed]);
  out[0] ^= mask[0] & 0x0f;
  for (let i = 0; i < pnLen; i++) out[pnOffset + i] ^= mask[1 + i];
  return out;
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};

/** The ClientHello handshake message Node's TLS client sends for this name (without its record header), padded to `minSize`. */
export async function clientHelloMessage(servername: string, alpn = ['h3'], minSize = 0): Promise<Buffer> {
  const rec = await captureClientHello({ servername, ALPNProtocols: alpn });
  let msg = rec.subarray(5, 5 + rec.readUInt16BE(3));
  if (msg.length < minSize) msg = withPadding(msg, minSize - msg.length);
  return msg;
}

/** The hello with a padding extension (RFC 7685) of `n` more bytes: a hello that spans datagrams, as post-quantum key shares make it. */
function withPadding(msg: Buffer, n: number): Buffer {
  const extra = Math.max(0, n - 4);
  const ext = Buffer.concat([Buffer.from([0x00, 0x15, extra >> 8, extra & 0xff]), Buffer.alloc(extra)]);
  const out = Buffer.concat([msg, ext]);
  out.writeUIntBE(out.length - 4, 1, 3);
  // the extensions block length sits right after compression methods: find it by walking the fixed fields
  let p = 4 + 2 + 32;
  p += 1 + out[p];
  p += 2 + out.readUInt16BE(p);
  p += 1 + out[p];
  out.writeUInt16BE(out.readUInt16BE(p) + ext.length, p);
  return out;
}

/**
 * The client's first flight for a hello: Initial packets of at most `chunk`
 * hello bytes each, one 1200-byte datagram per packet. `reverse`: the
 * CRYPTO frames in each packet out of order, as Chrome's "chaos protection" sends them.
 */
export function initialDatagrams(hello: Buffer, o: { version?: number; chunk?: number; dcid?: Buffer; reverse?: boolean } = {}): Buffer[] {
  const version = o.version ?? QUIC_V1;
  const dcid = o.dcid ?? randomBytes(8);
  const scid = randomBytes(8);
  const chunk = o.chunk ?? 1100;
  const out: Buffer[] = [];
  for (let off = 0, pn = 0; off < hello.length; off += chunk, pn++) {
    const part = hello.subarray(off, off + chunk);
    const half = part.length >> 1;
    const frames = o.reverse
      ? Buffer.concat([cryptoFrame(off + half, part.subarray(half)), Buffer.from([0x01]) /* PING */, cryptoFrame(off, part.subarray(0, half))])
      : cryptoFrame(off, part);
    out.push(initialPacket({ version, dcid, scid, pn, frames, size: 1200 }));
  }
  return out;
}
