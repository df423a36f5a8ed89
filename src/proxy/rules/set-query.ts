// One rule input as rule-sets read it: its name and addresses worked out
// once per lookup, on first use, however many sets and rules ask.
import { addressBytes } from './cidr-match.js';
import { normaliseName } from './domain-names.js';
import type { MatchInput } from './rule-types.js';

export class SetQuery {
  private nameDone = false;
  private nameValue: string | undefined;
  private dstValue: Uint8Array | null | undefined;
  private srcValue: Uint8Array | null | undefined;

  constructor(readonly input: MatchInput) {}

  /** Lower case, no trailing dot; undefined when the connection has no name. */
  get name(): string | undefined {
    if (!this.nameDone) {
      this.nameDone = true;
      this.nameValue = this.input.hostname === undefined ? undefined : normaliseName(this.input.hostname);
    }
    return this.nameValue;
  }

  /** The destination's 4 or 16 bytes; null when it is not an address. */
  get dst(): Uint8Array | null {
    if (this.dstValue === undefined) this.dstValue = addressBytes(this.input.dstAddress);
    return this.dstValue;
  }

  get src(): Uint8Array | null {
    if (this.srcValue === undefined) this.srcValue = addressBytes(this.input.srcAddress);
    return this.srcValue;
  }
}
