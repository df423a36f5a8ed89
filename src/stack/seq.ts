// Sequence-number arithmetic mod 2^32 (RFC 9293 §3.4): compare only through these.
export const seqLt = (a: number, b: number) => ((a - b) | 0) < 0;
export const seqLe = (a: number, b: number) => ((a - b) | 0) <= 0;
export const seqGt = (a: number, b: number) => ((a - b) | 0) > 0;
export const seqGe = (a: number, b: number) => ((a - b) | 0) >= 0;
export const seqAdd = (a: number, n: number) => (a + n) >>> 0;
/** a - b as a signed distance. */
export const seqDiff = (a: number, b: number) => (a - b) | 0;
