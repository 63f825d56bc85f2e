// The writer thread of an embedded vector store (usearch-store.ts): it holds the store's writable
// indexes and does its writes, one at a time, off the main thread's event loop.
import { parentPort, workerData } from 'node:worker_threads';
import { servePort } from '../../base/channel.js';
import { UsearchStore, type WriteOp } from './usearch-store.js';

const store = UsearchStore.open((workerData as { dataDir: string }).dataDir, { writeHere: true });

// The store itself does its writes one at a time, in order of arrival.
servePort<WriteOp, null>(parentPort!, async (id, write, out) => {
  await store.perform(write);
  out.reply(id, null);
});
