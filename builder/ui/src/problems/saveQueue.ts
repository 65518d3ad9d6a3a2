/**
 * The draft's autosave: debounced, one PUT at a time (a newer edit waits for the PUT in flight,
 * then only the latest state is sent), each PUT sent with the revision the last one returned.
 * A conflict stops the queue until the person chooses; it is never retried silently.
 */
export type SaveOutcome =
  | { kind: "saved"; revision: number }
  | { kind: "conflict" }
  | { kind: "failed"; message: string };

export type SaveStatus = "saved" | "pending" | "saving" | "conflict" | "failed";

export interface SaveQueueOptions<T> {
  delayMs: number;
  /** PUT the payload; `revision` null means overwrite whatever is stored. */
  save: (payload: T, revision: number | null, keepalive: boolean) => Promise<SaveOutcome>;
  onStatus?: (status: SaveStatus, message?: string) => void;
}

export class SaveQueue<T> {
  private pending: T | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private inFlight: Promise<void> | null = null;
  private stopped = false;

  constructor(private readonly opts: SaveQueueOptions<T>, public revision: number | null) {}

  /** Save `payload` after the debounce delay (replacing any payload not yet sent). */
  schedule(payload: T): void {
    this.pending = payload;
    if (this.stopped) return;
    this.opts.onStatus?.("pending");
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.pump(false);
    }, this.opts.delayMs);
  }

  /** Send what is pending now (the tab is hiding: `keepalive` lets the request outlive the page). */
  flush(keepalive = false): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.pump(keepalive);
    return this.idle();
  }

  /** Resolves when nothing is in flight and nothing is waiting to be sent. */
  async idle(): Promise<void> {
    while (this.inFlight) await this.inFlight;
  }

  get hasUnsaved(): boolean {
    return this.pending !== null || this.inFlight !== null;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** After a conflict: start again from `revision` (null: overwrite), sending `payload` if given. */
  resume(revision: number | null, payload: T | null): void {
    this.stopped = false;
    this.revision = revision;
    this.pending = payload;
    if (payload !== null) void this.flush();
    else this.opts.onStatus?.("saved");
  }

  /** Forget everything unsent (the person chose to reload the stored draft). */
  discard(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.pending = null;
  }

  private pump(keepalive: boolean): void {
    if (this.inFlight || this.pending === null || this.stopped) return;
    const payload = this.pending;
    this.pending = null;
    this.opts.onStatus?.("saving");
    this.inFlight = this.opts.save(payload, this.revision, keepalive)
      .catch((e: unknown): SaveOutcome => ({ kind: "failed", message: e instanceof Error ? e.message : String(e) }))
      .then((outcome) => {
        this.inFlight = null;
        if (outcome.kind === "saved") {
          this.revision = outcome.revision;
        } else if (outcome.kind === "conflict") {
          this.stopped = true;
          this.pending ??= payload;
          this.opts.onStatus?.("conflict");
          return;
        } else {
          // Keep the failed payload unless a newer one is waiting; the next edit or flush retries.
          this.pending ??= payload;
          this.opts.onStatus?.("failed", outcome.message);
          return;
        }
        if (this.pending !== null && !this.timer) this.pump(false);
        else if (this.pending === null) this.opts.onStatus?.("saved");
      });
  }
}
