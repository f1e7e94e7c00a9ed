#!/usr/bin/env node
/**
 * Compile the gateway for production: esbuild bundles backend/server.ts (and the migration worker,
 * backend/db/migrate-worker.ts) with the generated Prisma client into dist/backend/*.js, leaving the
 * npm packages as imports. `npm start` runs that JavaScript with plain node: no TypeScript loader, no
 * per-module transform at start. `tsx` stays for development and tests.
 *
 * Run by postinstall (after prisma generate), by `npm run build`, by the Dockerfile's build stage and,
 * when the output is missing or older than the sources, by scripts/ensure-built.mjs before `npm start`.
 * esbuild is installed with tsx (a dependency), so this also works without dev dependencies.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
export const BACKEND_OUT = join(root, 'dist', 'backend', 'server.js')
const ENTRIES = { server: 'backend/server.ts', 'migrate-worker': 'backend/db/migrate-worker.ts' }

function newest(path) {
  if (!existsSync(path)) return 0
  const st = statSync(path)
  if (!st.isDirectory()) return path.endsWith('.ts') ? st.mtimeMs : 0
  let max = 0
  for (const entry of readdirSync(path)) {
    if (entry === 'test' || entry === 'node_modules' || entry.startsWith('.')) continue
    max = Math.max(max, newest(join(path, entry)))
  }
  return max
}

/** why the bundle must be (re)built, or null when it is up to date */
export function backendNeedsBuild() {
  for (const name of Object.keys(ENTRIES)) {
    if (!existsSync(join(root, 'dist', 'backend', `${name}.js`))) return `dist/backend/${name}.js is missing`
  }
  // the query compiler's binary, written beside the bundle (see queryCompilerAsFile)
  const wasm = /new URL\("\.\/(query_compiler_[\w.]+\.wasm)"/.exec(readFileSync(BACKEND_OUT, 'utf8'))?.[1]
  if (wasm && !existsSync(join(root, 'dist', 'backend', wasm))) return `dist/backend/${wasm} is missing`
  return newest(join(root, 'backend')) > statSync(BACKEND_OUT).mtimeMs ? 'backend sources changed since the last build' : null
}

/**
 * The generated Prisma client loads its query compiler (WebAssembly) from a JavaScript module holding the
 * binary as one base64 string literal (4.4 MB). Evaluated, that module keeps the literal twice for the
 * life of the process: in the module's retained source text and as the exported string, ≈ 9 MB of heap
 * after the compiled module exists. The bundle instead reads the binary from a `.wasm` file written
 * beside it at build time and compiles that: same bytes, same compiler, nothing left behind.
 *
 * Matched on the generated code's shape; when a Prisma upgrade changes it, the build says so and keeps
 * the base64 module (correct, just heavier), and backend/test/build/compiled.test.ts fails.
 */
const QC_LOADER =
  /getQueryCompilerWasmModule: async \(\) => \{\s*const \{ wasm \} = await import\("(@prisma\/client\/runtime\/(query_compiler_\w+_bg\.\w+)\.wasm-base64\.mjs)"\)\s*return await decodeBase64AsWasm\(wasm\)\s*\},/

function queryCompilerAsFile(outdir, quiet) {
  const require = createRequire(join(root, 'package.json'))
  return {
    name: 'prisma-query-compiler-file',
    setup(build) {
      build.onLoad({ filter: /[\\/]generated[\\/]prisma[\\/]internal[\\/]class\.ts$/ }, (args) => {
        const source = readFileSync(args.path, 'utf8')
        const m = QC_LOADER.exec(source)
        if (!m) {
          if (!quiet)
            console.warn(
              "build-backend: the Prisma client's query compiler loader has an unknown shape; the bundle keeps its base64 module",
            )
          return { contents: source, loader: 'ts' }
        }
        const [, specifier, name] = m
        const { wasm } = requireBase64(require, specifier)
        mkdirSync(join(root, outdir), { recursive: true })
        writeFileSync(join(root, outdir, `${name}.wasm`), Buffer.from(wasm, 'base64'))
        const loader = `getQueryCompilerWasmModule: async () => {
    const { readFile } = await import('node:fs/promises')
    return new WebAssembly.Module(await readFile(new URL(${JSON.stringify(`./${name}.wasm`)}, import.meta.url)))
  },`
        return { contents: source.replace(QC_LOADER, loader), loader: 'ts' }
      })
    },
  }
}

/** the base64 module's CommonJS twin (same string), read at build time */
function requireBase64(require, specifier) {
  return require(specifier.replace(/\.mjs$/, '.js'))
}

/** `outdir` (relative to the repository) is for tests; the default is what `npm start` runs */
export async function buildBackend({ quiet = false, outdir = 'dist/backend' } = {}) {
  let esbuild
  try {
    esbuild = await import('esbuild')
  } catch {
    throw new Error('esbuild is not installed (it comes with tsx): run `npm install`')
  }
  const started = Date.now()
  await esbuild.build({
    absWorkingDir: root,
    entryPoints: ENTRIES,
    outdir,
    bundle: true,
    // npm packages stay imports (resolved from node_modules at run time, as with tsx)
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: true,
    legalComments: 'none',
    plugins: [queryCompilerAsFile(outdir, quiet)],
    logLevel: quiet ? 'error' : 'warning',
  })
  if (!quiet) console.log(`build-backend: ${outdir}/{${Object.keys(ENTRIES).join(',')}}.js in ${Date.now() - started} ms`)
}

if (import.meta.url === `file://${process.argv[1]}`) {
  buildBackend().catch((err) => {
    console.error(`build-backend: FAILED: ${err.message}`)
    process.exit(1)
  })
}
