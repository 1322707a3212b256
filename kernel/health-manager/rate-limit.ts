// A token bucket for the HM's requests: a burst may go out at once (a DEA died with many
// instances), then no more than the steady rate, so a storm of STARTs never swamps the
// controllers' placement. The clock is passed in, so it is tested without waiting.

export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.at = now;
  }

  /** Whole requests that may go out now. */
  available(now: number): number {
    this.refill(now);
    return Math.floor(this.tokens);
  }

  take(n: number, now: number): void {
    this.refill(now);
    this.tokens = Math.max(0, this.tokens - n);
  }

  private refill(now: number): void {
    if (now > this.at) this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.perSecond);
    this.at = Math.max(this.at, now);
  }
}
