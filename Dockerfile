# audio-ident as an image: `docker build -t audio-ident .` (not built in CI: no Docker engine there).
# Build stage: the native addon (node-gyp), the TypeScript and the web client; then the dev
# packages go. Run stage: Node, Debian's ffmpeg, the build's output, a non-root user.
FROM node:20-bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends g++ make python3 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
COPY native ./native
# npm ci builds the addon (package.json's install script); allowScripts keeps onnxruntime's CUDA download off.
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY web-client ./web-client
RUN npx tsc -p tsconfig.json && npm run build:web && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg && rm -rf /var/lib/apt/lists/* \
  && useradd --system --uid 10001 --create-home --home-dir /home/audio audio \
  && mkdir /data && chown audio /data
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/native/build/Release/audio_ident_fp.node ./native/build/Release/audio_ident_fp.node
COPY --from=build /app/dist ./dist
USER audio
# HOST 0.0.0.0 needs AUDIO_IDENT_API_KEY (or AUDIO_IDENT_ALLOW_OPEN=1): the server refuses otherwise.
# The vibe lane needs the MusiCNN weights mounted and AUDIO_IDENT_MUSICNN_H5 pointing at them.
ENV HOST=0.0.0.0 PORT=8000 AUDIO_IDENT_DATA_DIR=/data NODE_ENV=production
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s \
  CMD node -e "fetch('http://127.0.0.1:8000/livez').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
CMD ["node", "dist/src/cli/main.js", "serve"]
