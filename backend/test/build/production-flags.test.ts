/**
 * Production starts the gateway with PRODUCTION_NODE_ARGS (a 4 MB young generation: −21 MiB of idle RSS):
 * `npm start`, the Dockerfile's CMD and the bench/start-up scripts must agree, and the flag must do what it
 * says on the Node running the suite (20 and 24).
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { PRODUCTION_NODE_ARGS } from '../../../scripts/lib/gateway.ts'
import { ROOT } from '../helpers/process.ts'

const SERVER = 'dist/backend/server.js'

t.test('npm start and the Dockerfile start the bundle with the production flags', (t) => {
  t.ok(PRODUCTION_NODE_ARGS.includes('--max-semi-space-size=4'), 'the young generation is capped')
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  const start = pkg.scripts['start'] ?? ''
  t.match(start, `node ${PRODUCTION_NODE_ARGS.join(' ')} ${SERVER}`, 'npm start: node <flags> dist/backend/server.js')
  const cmd = /^CMD (\[.*\])$/m.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))?.[1]
  t.ok(cmd, 'the Dockerfile has an exec-form CMD')
  t.same(JSON.parse(cmd ?? '[]'), ['node', ...PRODUCTION_NODE_ARGS, SERVER], 'Dockerfile CMD: node <flags> dist/backend/server.js')
  t.end()
})

t.test('the flags cap the young generation on this Node', (t) => {
  // churn enough short-lived objects that V8 grows the new space as far as it is allowed
  const probe =
    "const v8=require('v8');let k=[];for(let i=0;i<300000;i++){k.push({a:i,b:'x'+i});if(k.length>50000)k=[]}" +
    "process.stdout.write(String(v8.getHeapSpaceStatistics().find(s=>s.space_name==='new_space').space_size))"
  const newSpace = (flags: readonly string[]): number => {
    const r = spawnSync(process.execPath, [...flags, '-e', probe], { encoding: 'utf8' })
    t.equal(r.status, 0, `node ${flags.join(' ')} ran: ${r.stderr}`)
    return Number(r.stdout)
  }
  const MiB = 1024 * 1024
  const capped = newSpace(PRODUCTION_NODE_ARGS)
  const free = newSpace([])
  t.ok(capped > 0 && capped <= 8 * MiB, `new space with the flags: ${(capped / MiB).toFixed(1)} MiB (≤ 8)`)
  t.ok(free > capped, `without them V8 grows it further: ${(free / MiB).toFixed(1)} MiB`)
  t.end()
})
