/**
 * Builds the dashboard (frontend/) into dist/frontend, which the gateway serves with @fastify/static.
 * In development, `npx vite` proxies the API, health checks and the WebSocket to a gateway on :3000.
 */
import { defineConfig } from 'vite'
import react from '@vitejs/plugin-react'

/** the gateway's default listen address (CONTRACT §3) */
const gateway = 'http://127.0.0.1:3000'

export default defineConfig({
  root: 'frontend',
  plugins: [react()],
  build: {
    outDir: '../dist/frontend',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    chunkSizeWarningLimit: 400,
  },
  server: {
    host: '127.0.0.1',
    port: 5173,
    proxy: {
      '/api': { target: gateway, changeOrigin: false },
      '/health': { target: gateway, changeOrigin: false },
      '/ws': { target: gateway, ws: true, changeOrigin: false },
    },
  },
  preview: { host: '127.0.0.1', port: 4173 },
})
