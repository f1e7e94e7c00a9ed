# Production image: installs from the lockfile, generates the Prisma client and builds the dashboard.
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
COPY prisma ./prisma
COPY prisma.config.ts ./
COPY scripts ./scripts
# dev dependencies are needed to build the dashboard (vite) and to run TypeScript (tsx)
RUN npm ci --include=dev --ignore-scripts
COPY . .
RUN node scripts/postinstall.mjs
EXPOSE 3000
USER node
# node --import tsx (not the tsx CLI, which SIGKILLs a child slow to acknowledge SIGTERM): a graceful stop exits 0
CMD ["node", "--import", "tsx", "backend/server.ts"]
