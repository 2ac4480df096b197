# baton: `worker` by default; `coordinator ...` for runs. Multi-stage: the runtime image holds
# production dependencies and compiled JavaScript only, and runs as the unprivileged `node` user.
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# npm install, not npm ci: see .ci/run (the lock lacks other platforms' optional builds).
RUN npm install --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
COPY common ./common
COPY cli ./cli
COPY worker ./worker
COPY bench ./bench
RUN npm run build

FROM node:24-slim AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm install --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY examples ./examples
RUN chmod +x dist/cli/main.js dist/worker/main.js \
 && ln -s /app/dist/cli/main.js /usr/local/bin/coordinator \
 && ln -s /app/dist/worker/main.js /usr/local/bin/worker
USER node
# Jobs are the worker's code location: mount them at /jobs (or pass --jobs).
ENV BATON_JOBS=/jobs
CMD ["worker"]
