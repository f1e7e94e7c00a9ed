/**
 * Builds the dashboard (frontend/) into dist/frontend, which the gateway serves with @fastify/static.
 * In development, `npx vite` proxies the API, health checks and the WebSocket to a gateway on :3000.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { brotliCompressSync, constants as zlib, gzipSync } from 'node:zlib'
import { defineConfig, type Plugin } from 'vite'
import react from '@vitejs/plugin-react'

/**
 * Writes a brotli (.br) and a gzip (.gz) twin of every text asset of the build, once, at maximum
 * compression; the gateway serves them with @fastify/static's preCompressed option.
 */
function precompress(): Plugin {
  let outDir = ''
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? walk(join(dir, f)) : [join(dir, f)]))
  return {
    name: 'lnm-precompress',
    apply: 'build',
    configResolved(c) {
      outDir = resolve(c.root, c.build.outDir)
    },
    closeBundle() {
      for (const file of walk(outDir)) {
        if (!/\.(js|css|html|svg|json|txt)$/.test(file)) continue
        const raw = readFileSync(file)
        if (raw.length < 512) continue
        writeFileSync(
          `${file}.br`,
          brotliCompressSync(raw, { params: { [zlib.BROTLI_PARAM_QUALITY]: 11, [zlib.BROTLI_PARAM_SIZE_HINT]: raw.length } }),
        )
        writeFileSync(`${file}.gz`, gzipSync(raw, { level: 9 }))
      }
    },
  }
}

/** the gateway's default listen address (CONTRACT §3) */
const gateway = 'http://127.0.0.1:3000'

export default defineConfig({
  root: 'frontend',
  plugins: [react(), precompress()],
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
