// Two pages (listening at /, catalog at /catalog) built into dist/web, which the server serves.
// Asset names carry a content hash, so the server can let browsers cache them for good.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  root: here('.'),
  base: '/',
  build: {
    outDir: here('../dist/web'),
    emptyOutDir: true,
    target: 'es2022',
    rollupOptions: { input: { listen: here('index.html'), catalog: here('catalog.html') } },
  },
});
