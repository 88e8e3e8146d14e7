# syntax=docker/dockerfile:1
# The live worker as an image, in the style of LiveKit's agent-starter-node: dependencies and the
# TypeScript build in one stage, then only the compiled JavaScript and production dependencies,
# run as a non-root user.
#
#   docker build -t vobiz-call-agent .
#   docker run --env-file .env vobiz-call-agent
#
# A department worker in dispatch mode: add `-- --department billing` (HANDOFF_MODE=dispatch).
ARG NODE_VERSION=20
FROM node:${NODE_VERSION}-slim AS base
# CA certificates for LiveKit Cloud and OpenAI over TLS.
RUN apt-get update -qq \
  && apt-get install -y --no-install-recommends ca-certificates \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app

FROM base AS build
# .npmrc keeps dependency install scripts off: onnxruntime-node ships its CPU binaries and its
# download step would fail without network access to its host.
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY machines ./machines
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM base
ENV NODE_ENV=production
ARG UID=10001
RUN adduser --disabled-password --gecos "" --home /home/appuser --shell /sbin/nologin --uid "${UID}" appuser
COPY --from=build --chown=appuser /app/package.json /app/.npmrc ./
COPY --from=build --chown=appuser /app/node_modules ./node_modules
COPY --from=build --chown=appuser /app/dist ./dist
USER appuser
# LiveKit's health check (HEALTH_PORT).
EXPOSE 8081
# The compiled entry directly: `npm start` would build again, and the image has no compiler.
CMD ["node", "dist/src/main.js", "start"]
