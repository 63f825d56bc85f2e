// A thread served by servePort, for channel.test.ts.
import { parentPort } from 'node:worker_threads';
import { servePort } from '../../src/base/channel.js';
import { AppError } from '../../src/base/errors.js';

export type Req =
  | { op: 'double'; n: number }
  | { op: 'count'; n: number }
  | { op: 'add'; n: number }
  | { op: 'end' }
  | { op: 'returns-reply'; n: number }
  | { op: 'app-error' }
  | { op: 'crash'; secret: string }
  | { op: 'reject'; secret: string }
  | { op: 'hang' };

/** Running totals of open 'add' streams. */
const totals = new Map<number, number>();

servePort<Req, number>(parentPort!, (id, msg, out) => {
  switch (msg.op) {
    case 'double':
      out.reply(id, msg.n * 2);
      return;
    case 'count':
      for (let i = 1; i <= msg.n; i++) out.reply(id, i, { last: i === msg.n });
      return;
    case 'add': {
      const t = (totals.get(id) ?? 0) + msg.n;
      totals.set(id, t);
      out.reply(id, t, { last: false });
      return;
    }
    case 'returns-reply':
      // reply() is typed void, so a handler may well return it.
      totals.set(id, msg.n);
      return out.reply(id, msg.n, { last: false });
    case 'end':
      out.reply(id, totals.get(id) ?? 0);
      totals.delete(id);
      return;
    case 'app-error':
      throw new AppError('TRACK_NOT_FOUND', 'no track 9');
    case 'crash':
      throw new Error(msg.secret);
    case 'reject':
      return Promise.reject(new Error(msg.secret));
    case 'hang':
      return;
  }
});
