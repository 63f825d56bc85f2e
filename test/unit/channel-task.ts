// A piscina task made with task(), for channel.test.ts.
import { task } from '../../src/base/channel.js';
import { AppError } from '../../src/base/errors.js';
import { setLogLevel } from '../../src/base/log.js';

export type Job = { op: 'square'; n: number } | { op: 'app-error' } | { op: 'crash'; secret: string };

setLogLevel('silent'); // the thread's log of the crash would only clutter the test output

export default task(async (j: Job) => {
  if (j.op === 'square') return j.n * j.n;
  if (j.op === 'app-error') throw new AppError('DECODE_FAILED', 'bad frame at 3 s');
  throw new Error(j.secret);
});
