// The worker-thread channel with real threads: replies, streams, and errors across the boundary.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { Channel, fromWire, runTask } from '../../src/base/channel.js';
import { AppError } from '../../src/base/errors.js';
import type { Job } from './channel-task.js';
import type { Req } from './channel-worker.js';

const REF = /^internal error \(ref [0-9a-f-]{36}\)$/;

function start(): { worker: Worker; channel: Channel<Req, number>; stderr: () => string } {
  const worker = new Worker(new URL('./channel-worker.js', import.meta.url), { stderr: true });
  let text = '';
  worker.stderr.on('data', (d: Buffer) => (text += d.toString()));
  return { worker, channel: new Channel<Req, number>(worker), stderr: () => text };
}

/** Collects a stream's replies until its last one or its error. */
function collect(channel: Channel<Req, number>, first: Req, more: Req[] = []): Promise<[number, boolean][]> {
  return new Promise((resolve, reject) => {
    const got: [number, boolean][] = [];
    const id = channel.open(first, {
      reply: (r, last) => {
        got.push([r, last]);
        if (last) resolve(got);
      },
      error: reject,
    });
    for (const m of more) channel.send(id, m);
  });
}

describe('Channel and servePort', () => {
  let t: ReturnType<typeof start>;
  before(() => {
    t = start();
  });
  after(() => t.worker.terminate());

  it('answers a call', async () => {
    assert.equal(await t.channel.call({ op: 'double', n: 21 }), 42);
    assert.deepEqual(await Promise.all([1, 2, 3].map((n) => t.channel.call({ op: 'double', n }))), [2, 4, 6]);
    assert.equal(t.channel.size(), 0);
  });

  it('streams several replies, the last one marked, then closes the stream', async () => {
    assert.deepEqual(await collect(t.channel, { op: 'count', n: 3 }), [
      [1, false],
      [2, false],
      [3, true],
    ]);
    assert.equal(t.channel.size(), 0);
  });

  it('carries further messages on an open stream, and refuses them once it ended', async () => {
    let id = 0;
    const replies: number[] = [];
    const ended = new Promise<void>((resolve, reject) => {
      const reply = (r: number, last: boolean) => {
        replies.push(r);
        if (last) resolve();
      };
      id = t.channel.open({ op: 'add', n: 1 }, { reply, error: reject });
    });
    assert.ok(t.channel.send(id, { op: 'add', n: 10 }));
    assert.ok(t.channel.send(id, { op: 'end' }));
    await ended;
    assert.deepEqual(replies, [1, 11, 11]);
    assert.equal(t.channel.send(id, { op: 'add', n: 1 }), false);
  });

  it('keeps a stream open when the handler returns what out.reply() returned', async () => {
    // servePort takes any truthy return for a promise; reply() hands back postMessage's value.
    assert.deepEqual(await collect(t.channel, { op: 'returns-reply', n: 5 }, [{ op: 'end' }]), [
      [5, false],
      [5, true],
    ]);
  });

  it('delivers an AppError thrown in the thread with its code and message', async () => {
    await assert.rejects(t.channel.call({ op: 'app-error' }), (e: unknown) => {
      assert.ok(e instanceof AppError);
      assert.equal(e.code, 'TRACK_NOT_FOUND');
      assert.equal(e.message, 'no track 9');
      return true;
    });
  });

  it('delivers a plain Error, thrown or rejected, as INTERNAL without its text, logged in the thread', async () => {
    for (const op of ['crash', 'reject'] as const) {
      const secret = `${op}: token=s3cr3t`;
      const e = await t.channel.call({ op, secret }).then(
        () => assert.fail('resolved'),
        (x: unknown) => x,
      );
      assert.ok(e instanceof AppError);
      assert.equal(e.code, 'INTERNAL');
      assert.match(e.message, REF);
      assert.ok(!e.message.includes('s3cr3t'));
      assert.ok(e.isPublic(), 'its message is already the public one');
      // The thread logged the original under the ref that the message names.
      const ref = e.message.slice('internal error (ref '.length, -1);
      await waitFor(() => t.stderr().includes(ref));
      const line = JSON.parse(
        t
          .stderr()
          .split('\n')
          .find((l) => l.includes(ref))!,
      );
      assert.ok(line.error.includes(secret));
    }
  });

  it('drops what a thread still sends for a stream that was forgotten', async () => {
    const replies: number[] = [];
    const id = t.channel.open({ op: 'count', n: 5 }, { reply: (r) => replies.push(r), error: () => replies.push(-1) });
    t.channel.forget(id);
    await t.channel.call({ op: 'double', n: 1 }); // the thread has sent everything by now
    assert.deepEqual(replies, []);
  });
});

describe('Channel.failAll', () => {
  it('ends every open stream with the error when the thread is gone', async () => {
    const { worker, channel } = start();
    const gone = new AppError('INTERNAL', 'the thread failed', { logged: true });
    worker.on('exit', () => channel.failAll(gone));
    const pending = [channel.call({ op: 'hang' }), channel.call({ op: 'hang' })];
    const stream = channel.open({ op: 'hang' }, { reply: () => {}, error: () => {} });
    await channel.call({ op: 'double', n: 0 }); // the thread is up and has the hanging ones
    assert.equal(channel.size(), 3);
    await worker.terminate();
    for (const p of pending) await assert.rejects(p, (e) => e === gone);
    assert.equal(channel.size(), 0);
    assert.equal(channel.send(stream, { op: 'end' }), false);
  });
});

describe('fromWire', () => {
  it('turns an unknown code into INTERNAL, keeping the message', () => {
    const e = fromWire({ code: 'NO_SUCH_CODE' as never, message: 'm' });
    assert.equal(e.code, 'INTERNAL');
    assert.equal(e.message, 'm');
  });
});

describe('task and runTask with piscina', () => {
  let pool: Piscina;
  before(() => {
    pool = new Piscina({ filename: new URL('./channel-task.js', import.meta.url).href, minThreads: 1, maxThreads: 1 });
  });
  after(() => pool.destroy());

  it('resolves with the result', async () => {
    assert.equal(await runTask<Job, number>(pool, { op: 'square', n: 12 }), 144);
  });

  it('rejects with the AppError the task threw', async () => {
    await assert.rejects(runTask<Job, number>(pool, { op: 'app-error' }), (e: unknown) => {
      assert.ok(e instanceof AppError);
      assert.deepEqual([e.code, e.message], ['DECODE_FAILED', 'bad frame at 3 s']);
      return true;
    });
  });

  it('rejects with INTERNAL, without the text, for a plain Error', async () => {
    await assert.rejects(runTask<Job, number>(pool, { op: 'crash', secret: 'token=s3cr3t' }), (e: unknown) => {
      assert.ok(e instanceof AppError);
      assert.equal(e.code, 'INTERNAL');
      assert.match(e.message, REF);
      return true;
    });
  });
});

async function waitFor(ok: () => boolean, ms = 2000): Promise<void> {
  const until = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}
