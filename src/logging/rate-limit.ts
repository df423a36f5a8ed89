// Lets one event through per interval: for log lines about recurring faults.
export class RateLimit {
  private next = -Infinity;
  constructor(private readonly intervalMs: number) {}
  allow(now: number): boolean {
    if (now < this.next) return false;
    this.next = now + this.intervalMs;
    return true;
  }
}
