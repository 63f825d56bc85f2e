// The API's reference page at /docs: Swagger UI from the swagger-ui-dist package, served by this
// server (no CDN, so it works offline and under a strict CSP), reading /openapi.json.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Env, Hono } from 'hono';

const UI_DIR = path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
const FILES: Record<string, string> = { 'swagger-ui.css': 'text/css; charset=utf-8', 'swagger-ui-bundle.js': 'text/javascript; charset=utf-8' };

const PAGE = `<!doctype html><html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>audio-ident API</title><link rel="stylesheet" href="/docs/swagger-ui.css">
<body><div id="ui"></div><script src="/docs/swagger-ui-bundle.js"></script><script src="/docs/init.js"></script></body></html>`;
// Its own file, not inline, so that the page's CSP needs no 'unsafe-inline' for scripts.
const INIT = `window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#ui', persistAuthorization: false });\n`;
const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'";

export function serveDocs<E extends Env>(app: Hono<E>): void {
  app.get('/docs', (c) => c.html(PAGE, 200, { 'content-security-policy': CSP, 'cache-control': 'no-cache' }));
  app.get('/docs/init.js', (c) => c.body(INIT, 200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-cache' }));
  for (const [name, type] of Object.entries(FILES)) {
    app.get(`/docs/${name}`, async (c) =>
      c.body(new Uint8Array(await readFile(path.join(UI_DIR, name))), 200, { 'content-type': type, 'cache-control': 'public, max-age=86400' }),
    );
  }
}
