/** Writes a conversion's percent to its job. */
export type WriteProgress = (percent: number) => Promise<void>;

export interface ProgressReporter {
  /** What ffmpeg has reached; written if due, otherwise dropped. Never waits, never throws. */
  report(percent: number): void;
  /** Settles once the write in flight (if any) has: nothing of a conversion outlives it. */
  settled(): Promise<void>;
}

/**
 * Passes a conversion's progress on at most once per `everyMs`: a whole percent higher than the
 * last written, and one write at a time. A report that is not due is dropped, not kept for
 * later: no timer, and the next one (ffmpeg reports twice a second) carries a newer value
 * anyway. A failed write is only logged: progress is for watching, the conversion goes on.
 */
export function progressReporter(
  write: WriteProgress,
  { everyMs = 1000, now = () => performance.now(), onError }: { everyMs?: number; now?: () => number; onError: (err: unknown) => void },
): ProgressReporter {
  let written = -1;
  let writtenAt = Number.NEGATIVE_INFINITY;
  let inFlight: Promise<void> | undefined;

  return {
    report(percent) {
      const whole = Math.floor(Math.min(100, Math.max(0, percent)));
      if (inFlight || whole <= written || now() - writtenAt < everyMs) return;
      written = whole;
      writtenAt = now();
      inFlight = write(whole)
        .catch(onError)
        .finally(() => {
          inFlight = undefined;
        });
    },
    settled: () => inFlight ?? Promise.resolve(),
  };
}
