// The writer thread of an embedded vector store (usearch-store.ts): it holds the store's writable
// indexes and does its writes, one at a time, off the main thread's event loop.
import { parentPort, workerData } from 'node:worker_threads';
import { servePort } from '../../base/channel.js';
import { UsearchStore, type WriteOp } from './usearch-store.js';

const store = UsearchStore.open((workerData as { dataDir: string }).dataDir, { writeHere: true });

// One at a time, in order of arrival: each write waits for the one before it.
let queue: Promise<unknown> = Promise.resolve();
servePort<WriteOp, null>(parentPort!, (id, write, out) => {
  queue = queue
    .then(() => store.perform(write))
    .then(
      () => out.reply(id, null),
      (e: unknown) => out.fail(id, e),
    );
});
