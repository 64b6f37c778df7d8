/**
 * At most `size` password hashes at once in this process. The rest are refused at once rather
 * than queued: a queue of scrypts is what made every login wait ~20 s during a flood.
 */
export function hashSlots(size: number) {
  let busy = 0;
  return {
    /** A release function for a free slot, or undefined when all are taken. */
    tryAcquire(): (() => void) | undefined {
      if (busy >= size) return undefined;
      busy++;
      let released = false;
      return () => {
        if (!released) busy--;
        released = true;
      };
    },
  };
}

