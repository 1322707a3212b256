// The controller's own route: api.<system_domain> → this API's host and port, registered
// with the routers at boot, again at the interval a router announces on `router.start`
// (routers prune routes not refreshed in time), after a reconnect, and withdrawn at stop.
import type { Logger } from 'pino';
import { replies, subjects, type Bus, type RouterRegister } from '../bus/mod.ts';

export class RouteRegistrar {
  private timer: NodeJS.Timeout | undefined;
  private intervalS: number;
  private unsubscribe: (() => void) | undefined;
  private stopped = false;
  registrations = 0;

  constructor(
    private readonly bus: Bus,
    private readonly route: RouterRegister,
    defaultIntervalS: number,
    private readonly log: Logger,
  ) {
    this.intervalS = defaultIntervalS;
  }

  start(): void {
    this.unsubscribe = this.bus.subscribe(subjects.routerStart, (msg) => {
      this.intervalS = msg.minimum_register_interval_s;
      this.register();
      this.schedule();
    });
    this.bus.onReconnected(() => {
      if (!this.stopped) this.register();
    });
    this.register();
    this.schedule();
    // A router already running announced itself before we subscribed: ask for its interval.
    // (A plain request: with no router at all, NATS answers "no responders" at once.)
    void this.bus
      .request(subjects.routerGreet, {}, replies.routerGreet, { timeoutMs: 1000 })
      .then((router) => {
        if (router.minimum_register_interval_s !== this.intervalS) {
          this.intervalS = router.minimum_register_interval_s;
          this.schedule();
        }
      })
      .catch(() => undefined);
  }

  /** Withdraws the route (at drain, so routers send new requests to the other controllers); once. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.unsubscribe?.();
    if (this.timer) clearInterval(this.timer);
    try {
      this.bus.publish(subjects.routerUnregister, this.route);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'unregistering the API route failed');
    }
  }

  private schedule(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = setInterval(() => this.register(), this.intervalS * 1000);
    this.timer.unref();
  }

  private register(): void {
    try {
      this.bus.publish(subjects.routerRegister, this.route);
      this.registrations++;
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'registering the API route failed');
    }
  }
}
