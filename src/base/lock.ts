// A lock for async work: one holder at a time, in the order they asked.

export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  /** Resolves, once the lock is this caller's, with the function that lets it go. */
  acquire(): Promise<() => void> {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const mine = this.tail.then(() => release);
    this.tail = this.tail.then(() => held);
    return mine;
  }
}
