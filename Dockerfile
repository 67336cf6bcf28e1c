# lazyflow app image: Bun + Hono + grammY + bun:sqlite. Build context: the repository root.
#   docker build --build-arg APP_VERSION=$(git rev-parse --short HEAD) -t lazyflow-app:<tag> .
# Runs as uid 1000 (user bun) with a read-only root filesystem; only /app/data and /app/uploads
# (bind mounts of STATE_DIR/data and STATE_DIR/uploads) and a tmpfs /tmp are writable.
ARG BUN_IMAGE=oven/bun:1.4.5-slim

# --- production dependencies, resolved strictly from app/bun.lock ---
FROM ${BUN_IMAGE} AS deps
WORKDIR /app
COPY app/package.json app/bun.lock ./
RUN bun install --frozen-lockfile --production --ignore-scripts --no-progress \
 && rm -rf /root/.bun/install/cache /home/bun/.bun/install/cache

# --- runtime ---
FROM ${BUN_IMAGE}
WORKDIR /app
# Everything under /app is owned by root (COPY default) and so read-only for the app user...
COPY --from=deps /app/node_modules ./node_modules
COPY app/package.json app/bun.lock ./
COPY app/src ./src
# ...except the two state directories (replaced by bind mounts in compose).
RUN mkdir -p /app/data /app/uploads \
 && chown bun:bun /app/data /app/uploads \
 && chmod 0750 /app/data /app/uploads

ENV NODE_ENV=production \
    PORT=3000 \
    DB_PATH=/app/data/lazyflow.db \
    UPLOADS_DIR=/app/uploads \
    TMPDIR=/tmp \
    BUN_RUNTIME_TRANSPILER_CACHE_PATH=0 \
    DO_NOT_TRACK=1

# Last, so a new version only changes the final layers.
ARG APP_VERSION=dev
ENV APP_VERSION=${APP_VERSION}
LABEL org.opencontainers.image.title="lazyflow-app" \
      org.opencontainers.image.version="${APP_VERSION}" \
      org.opencontainers.image.description="LazyFlow Telegram bot + Mini App API (Bun, Hono, grammY, SQLite)" \
      lazyflow.dead-letter-retry="bun src/retry-dead-letter.ts"

USER bun
EXPOSE 3000
# "GET HEALTHCHECK_PATH answers 200" (default /health/write), asked by one bash process (its /dev/tcp
# and builtins; the image has no curl): a fraction of the CPU and memory of starting Bun for every
# probe (BENCHMARKS.md). Compose replaces it with its own probe of the env file's HEALTHCHECK_PATH
# (docker-compose.yml); this one serves a plain `docker run`.
HEALTHCHECK --interval=2s --timeout=2s --start-period=10s --retries=3 CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${PORT:-3000} || exit 1; printf 'GET %s HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nConnection: close\\r\\n\\r\\n' \"${HEALTHCHECK_PATH:-/health/write}\" >&3; IFS= read -r -d '' -t 2 r <&3; [[ $r == 'HTTP/1.'?' 200 '* ]] && exit 0; echo \"health: ${r%%$'\\r'*} ${r#*$'\\r\\n\\r\\n'}\"; exit 1"]
STOPSIGNAL SIGTERM
CMD ["bun", "src/server.ts"]
