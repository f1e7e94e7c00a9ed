/**
 * The documents users read stand alone and say what the code does: docs/protocol.md's generated tables match the
 * schemas and the metrics catalogue, every server frame type is described, and no committed Markdown file points
 * outside the repository.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { BLOCKS, DOC_PATH, render } from '../../scripts/docs-protocol.ts'
import { ROOT_DIR } from '../paths.ts'

const root = ROOT_DIR

t.test('docs/protocol.md: the generated tables are up to date', async (t) => {
  const doc = readFileSync(DOC_PATH, 'utf8')
  const { changed, missing } = render(doc)
  t.same(missing, [], `every generated block is present (${Object.keys(BLOCKS).join(', ')})`)
  t.same(changed, [], 'no generated block differs from the code (run `npm run docs` and commit the result)')
})

t.test('docs/protocol.md: a stale table is detected', async (t) => {
  const doc = readFileSync(DOC_PATH, 'utf8').replace(/\| 4008 \|[^\n]*\n/, '')
  t.same(render(doc).changed, ['close-codes'], 'removing a close code row makes the close-codes block out of date')
})

t.test('docs/protocol.md: every server frame type of ws-protocol.ts is described', async (t) => {
  const src = readFileSync(join(root, 'backend', 'schemas', 'ws-protocol.ts'), 'utf8')
  const union = /export type ServerFrame = ([^\n]+)/.exec(src)?.[1] ?? ''
  const names = union
    .split('|')
    .map((s) => s.trim())
    .filter(Boolean)
  t.ok(names.length >= 7, `the ServerFrame union was read (${names.join(', ')})`)
  const doc = readFileSync(DOC_PATH, 'utf8')
  for (const n of names) {
    const m = new RegExp(`export interface ${n}\\b[^{]*\\{\\s*type: '([a-z_]+)'`).exec(src)
    t.ok(m, `${n} has a literal type`)
    if (m) t.match(doc, new RegExp(`\\| \`${m[1]}\` \\|`), `the frame type ${m[1]} (${n}) has a row in the server → client table`)
  }
})

t.test('no committed document points outside the repository', async (t) => {
  const files = execFileSync('git', ['ls-files', '*.md'], { cwd: root, encoding: 'utf8' }).split('\n').filter(Boolean)
  t.ok(files.length >= 5, `the Markdown files were listed (${files.length})`)
  const outside = /\.\.\/shared|(^|[\s`(])\/(work|tmp|root|home)\//m
  for (const f of files) {
    const text = readFileSync(join(root, f), 'utf8')
    const hit = outside.exec(text)
    t.notOk(hit, `${f} has no link or path outside the repository${hit ? ` (found "${hit[0].trim()}")` : ''}`)
  }
})
