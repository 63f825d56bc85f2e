// The writer thread of an embedded vector store (usearch-store.ts): it holds the store's writable
// indexes and does its writes, one at a time, off the main thread's event loop. Errors go back
// as their code and message.
import { parentPort, workerData } from 'node:worker_threads';
import { isAppError } from '../../base/errors.js';
import { UsearchStore, type WriteOp } from './usearch-store.js';

const store = UsearchStore.open((workerData as { dataDir: string }).dataDir, { writeHere: true });

parentPort!.on('message', async ({ id, write }: { id: number; write: WriteOp }) => {
  try {
    await store.perform(write);
    parentPort!.postMessage({ id });
  } catch (e) {
    parentPort!.postMessage({ id, error: { code: isAppError(e) ? e.code : 'INTERNAL', message: (e as Error).message } });
  }
});
