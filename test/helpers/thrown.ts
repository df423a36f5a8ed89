// What a function throws, to check its class: tap's t.throws compares fields, not instanceof.
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return null;
}
