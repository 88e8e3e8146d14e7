/**
 * Whether the caller has heard this leg yet (a line was said, or its audio started playing), and
 * who waits for that: in dispatch mode a specialist has joined once its first words are heard.
 */
export class FirstWords {
  #spoke = false;
  readonly #waiters = new Set<(spoke: boolean) => void>();

  /** This leg has been heard. */
  mark(): void {
    if (this.#spoke) return;
    this.#spoke = true;
    for (const waiter of this.#waiters) waiter(true);
  }

  /**
   * True once this leg has been heard, false if `deadline` (epoch milliseconds) passes first,
   * `over` (the leg's end) settles, or `signal` aborts.
   */
  by(deadline: number, over: Promise<unknown>, signal?: AbortSignal): Promise<boolean> {
    if (this.#spoke) return Promise.resolve(true);
    return new Promise((resolve) => {
      const finish = (spoke: boolean) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#waiters.delete(finish);
        resolve(spoke);
      };
      const onAbort = () => finish(false);
      const timer = setTimeout(onAbort, Math.max(0, deadline - Date.now()));
      if (signal?.aborted) return finish(false);
      signal?.addEventListener('abort', onAbort);
      this.#waiters.add(finish);
      void over.then(() => finish(this.#spoke));
    });
  }
}
