// Serves the web client that `scripts/setup.sh` builds from web-client/ into dist/web: the
// listening page at `/`, the catalog page at `/catalog`, and their assets. Asset names carry a
// content hash, so browsers keep them for good; the pages are revalidated on every load so a new
// build shows at once. Without a build, the pages answer 503 with how to make one; the API is
// unaffected.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Context, Env, Hono } from 'hono';

/** dist/src/http -> dist/web. */
export const WEB_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'web');

const PAGES: Record<string, string> = { '/': 'index.html', '/catalog': 'catalog.html' };
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.map': 'application/json',
};

const NOT_BUILT = `<!doctype html><html lang="en"><meta charset="utf-8"><title>audio-ident: web client not built</title>
<h1>The web client is not built</h1>
<p>This server has no built pages to show. Build them with <code>scripts/setup.sh</code>
(or <code>npm run build:web</code>) in the audio-ident checkout, then reload.</p>
<p>The API works meanwhile: <a href="/openapi.json">/openapi.json</a>, <a href="/health">/health</a>.</p></html>`;

export function serveWebClient<E extends Env>(app: Hono<E>, dir: string = WEB_DIR): void {
  const send = async (c: Context<E>, file: string, cache: string) => {
    const body = await readFile(path.join(dir, file)).catch(() => undefined);
    if (!body) return undefined;
    return c.body(new Uint8Array(body), 200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'cache-control': cache });
  };
  for (const [route, file] of Object.entries(PAGES)) {
    app.get(route, async (c) => (await send(c, file, 'no-cache')) ?? c.html(NOT_BUILT, 503, { 'cache-control': 'no-store' }));
  }
  app.get('/assets/:name', async (c) => {
    const name = c.req.param('name');
    // One flat folder of hashed names: anything with a path in it is not ours.
    if (!/^[\w.-]+$/.test(name) || name.startsWith('.')) return c.notFound();
    return (await send(c, path.join('assets', name), 'public, max-age=31536000, immutable')) ?? c.notFound();
  });
}
