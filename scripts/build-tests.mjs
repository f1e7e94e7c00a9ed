/**
 * Compiles the TypeScript of the suites and of everything they import (backend/, frontend/, scripts/) into
 * `.test-build/`, one JavaScript file per source file in the same layout, so `npm test` runs plain JavaScript.
 *
 * Why: under a loader (tsx) every module a test process imports is resolved and loaded through the loader's
 * hooks, which Node 20 runs on a separate thread, one round trip per module. A test file that starts the gateway
 * imports a few hundred modules, and the hooks cost it about 1.1 s of CPU (1.95 s to import the app under tsx,
 * 0.8 s compiled); the suite has ~60 such files on a 2-core machine. esbuild compiles the whole tree in about a
 * second.
 *
 * Each output file is the esbuild transform of one source file (`bundle` only to run the resolver below): an
 * import of a sibling `.ts`/`.tsx` becomes the same import of its compiled `.js`; any other relative import (a
 * `.mjs` script, JSON) points at the source file itself; packages stay packages. Code that finds the repository
 * from its own location looks for package.json upwards (backend/paths.ts), so it finds the same root from here.
 * Inline source maps (with `--enable-source-maps`, set by scripts/test.mjs) make stack traces and tap's failure
 * locations name the TypeScript sources.
 */
import { build } from 'esbuild'
import { readdirSync, rmSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
export const OUT_DIR = join(ROOT, '.test-build')
const SOURCE_DIRS = ['backend', 'frontend/src', 'frontend/test', 'scripts']

/** every .ts/.tsx file under `dir` (declarations excluded) */
function sources(dir) {
  const out = []
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) {
      if (e.name !== 'node_modules') out.push(...sources(p))
    } else if (/\.tsx?$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(p)
  }
  return out
}

/** the compiled path of a source file (`backend/x.ts` → `.test-build/backend/x.js`) */
export function compiledPath(source) {
  return join(OUT_DIR, relative(ROOT, resolve(ROOT, source))).replace(/\.tsx?$/, '.js')
}

/** @type {import('esbuild').Plugin} */
const oneFileEach = {
  name: 'one-file-each',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      if (args.kind === 'entry-point') return undefined
      if (!args.path.startsWith('.')) return { path: args.path, external: true }
      if (/\.tsx?$/.test(args.path)) return { path: args.path.replace(/\.tsx?$/, '.js'), external: true }
      return { path: resolve(args.resolveDir, args.path), external: true }
    })
  },
}

export async function buildTests() {
  const t0 = Date.now()
  rmSync(OUT_DIR, { recursive: true, force: true })
  const entryPoints = SOURCE_DIRS.flatMap((d) => sources(join(ROOT, d)))
  await build({
    entryPoints,
    outbase: ROOT,
    outdir: OUT_DIR,
    bundle: true,
    plugins: [oneFileEach],
    platform: 'node',
    format: 'esm',
    target: 'node20',
    tsconfig: join(ROOT, 'tsconfig.tap.json'),
    sourcemap: 'inline',
    sourcesContent: false,
    logLevel: 'warning',
  })
  return { files: entryPoints.length, ms: Date.now() - t0 }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = await buildTests()
  process.stdout.write(`compiled ${r.files} files into ${relative(ROOT, OUT_DIR)}/ in ${r.ms} ms\n`)
}
