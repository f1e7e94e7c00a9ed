/**
 * The in-host bus without processes: ClusterBus workers wired to a LeaseAuthority and a ClusterRelay through fake
 * IPC ports (messages cross a JSON round trip, as cluster IPC does). One producer per key for the whole "machine",
 * fencing generations, replays for newcomers, revocation when demand ends, a dead worker's keys re-granted at once,
 * and pub/sub that delivers locally once and to every other subscribed worker once.
 */
import t from 'tap'
import { CONTROL_TOPIC, accountTopic, type BusEvent, type ControlEvent, type SnapshotEvent } from '../../streaming/bus.ts'
import {
  ClusterBus,
  ClusterRelay,
  LeaseAuthority,
  routeBusMessage,
  type IpcPort,
  type ToPrimary,
  type ToWorker,
} from '../../streaming/cluster-bus.ts'

function machine(now = () => 1000) {
  const ports = new Map<number, (m: ToWorker) => void>()
  const sent: Array<{ to: number; m: ToWorker }> = []
  const send = (id: number, m: ToWorker) => {
    sent.push({ to: id, m })
    ports.get(id)?.(JSON.parse(JSON.stringify(m)) as ToWorker)
  }
  const authority = new LeaseAuthority(send, now)
  const relay = new ClusterRelay(send)
  // the primary's own routing; 'leave' as the primary handles it while not stopping; hit and metrics (attempt
  // counters, metrics aggregation) are not part of this harness
  const fromWorker = (id: number, m: ToPrimary) => {
    if (routeBusMessage(relay, authority, id, m) || m.lnm !== 'leave') return
    relay.removeWorker(id)
    authority.removeWorker(id)
  }
  const worker = (id: number) => {
    const port: IpcPort = {
      send: (m) => fromWorker(id, JSON.parse(JSON.stringify(m)) as ToPrimary),
      onMessage: (h) => {
        ports.set(id, h)
        return () => ports.delete(id)
      },
    }
    const bus = new ClusterBus(port)
    const control: ControlEvent[] = []
    bus.subscribe(CONTROL_TOPIC, (e) => control.push(e as ControlEvent))
    const watches = (key: string) => control.filter((c) => c.kind === 'watch' && c.key === key)
    const unwatches = (key: string) => control.filter((c) => c.kind === 'unwatch' && c.key === key).length
    return { id, bus, control, watches, unwatches }
  }
  const die = (id: number) => {
    ports.delete(id)
    relay.removeWorker(id)
    return authority.removeWorker(id)
  }
  return { authority, relay, worker, die, sent }
}

const snap = (seq: number, epoch = 1): SnapshotEvent => ({
  kind: 'snapshot',
  channel: 'account',
  epoch,
  seq,
  sourceTs: 1,
  json: `{"n":${seq}}`,
})

t.test('one producer per key for the machine; a newcomer makes it replay; unwatch only when no worker wants it', async (t) => {
  const m = machine()
  const a = m.worker(1)
  const b = m.worker(2)
  a.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: 'u1' })
  t.equal(a.watches('u1').length, 1, 'the first worker to want the key is granted it')
  t.equal(a.watches('u1')[0]!.epoch, 1000, 'under a generation (the fencing epoch)')
  b.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: 'u1' })
  t.equal(b.watches('u1').length, 0, 'the second worker is not granted it')
  t.equal(a.watches('u1').length, 2, 'the holder replays for the newcomer')
  t.equal(a.watches('u1')[1]!.epoch, 1000, 'under the same generation')
  // b's cache has the holder's data (its floor is the current generation): asking again (the freshness watchdog's
  // redemand) is a replay, never a new generation
  b.bus.subscribe(accountTopic('u1'), () => {})
  a.bus.publish(accountTopic('u1'), snap(1, 1000))
  b.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: 'u1' })
  a.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: 'u1' })
  t.same(
    a.watches('u1').map((w) => w.epoch),
    [1000, 1000, 1000, 1000],
    'redemands from either worker replay under the same generation',
  )
  a.bus.publish(CONTROL_TOPIC, { kind: 'unwatch', key: 'u1' })
  t.equal(a.unwatches('u1'), 0, 'the holder keeps producing while another worker wants the key')
  b.bus.publish(CONTROL_TOPIC, { kind: 'unwatch', key: 'u1' })
  t.equal(a.unwatches('u1'), 1, 'once no worker wants it, the holder stops')
  t.equal(m.authority.holderOf('u1'), null, 'and nobody holds it')
  b.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: 'u1' })
  t.equal(b.watches('u1').length, 1, 'wanted again: granted again')
  t.ok(b.watches('u1')[0]!.epoch! > 1000, 'under a higher generation than the previous run')
})

t.test('a dead worker: its keys go at once to another worker that wants them, under a higher generation', async (t) => {
  let clock = 5000
  const m = machine(() => clock)
  const a = m.worker(1)
  const b = m.worker(2)
  const c = m.worker(3)
  a.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: 'u1' })
  a.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: 'ticker' })
  b.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: 'u1' })
  const g1 = a.watches('u1')[0]!.epoch!
  clock = 4000 // a clock that went back never lowers a generation
  t.same(m.die(1).sort(), ['u1'], 'only the keys another worker wants move (nobody else wants the ticker)')
  t.equal(b.watches('u1').length, 1, 'the worker that wants it is granted it at once')
  t.ok(b.watches('u1')[0]!.epoch! > g1, `under a higher generation (${b.watches('u1')[0]!.epoch} > ${g1})`)
  t.equal(c.watches('u1').length, 0, 'a worker without demand is not')
  t.equal(m.authority.holderOf('ticker'), null, "the dead worker's ticker lease is gone")
  c.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: 'ticker' })
  t.equal(c.watches('ticker').length, 1, 'and granted to the next worker that wants it')
})

t.test('a demand from a worker that saw a higher epoch bumps the generation above it', async (t) => {
  const m = machine(() => 10)
  const a = m.worker(1)
  const b = m.worker(2)
  a.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: 'u1' })
  b.bus.subscribe(accountTopic('u1'), () => {})
  // b's cache holds an epoch above the current generation (e.g. from a previous primary's run)
  m.relay.publish(1, accountTopic('u1'), JSON.stringify(snap(1, 99)))
  b.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: 'u1' })
  t.ok(a.watches('u1').at(-1)!.epoch! > 99, 'the holder moves to a generation above every epoch the newcomer has seen')
})

t.test('pub/sub: local delivery once, every other subscribed worker once, nothing to the unsubscribed', async (t) => {
  const m = machine()
  const a = m.worker(1)
  const b = m.worker(2)
  m.worker(3) // a third worker that subscribes to nothing: it must receive nothing
  const topic = accountTopic('u1')
  const got = { a: [] as BusEvent[], b: [] as BusEvent[], c: [] as BusEvent[] }
  a.bus.subscribe(topic, (e) => got.a.push(e))
  const offB = b.bus.subscribe(topic, (e) => got.b.push(e))
  a.bus.publish(topic, snap(1))
  t.equal(got.a.length, 1, "the publisher's own handlers get it once, synchronously")
  t.same(got.b, [snap(1)], 'the other subscribed worker gets it once, intact')
  t.equal(got.c.length, 0, 'a worker not subscribed gets nothing')
  t.equal(m.sent.filter((s) => s.m.lnm === 'msg' && s.to === 3).length, 0, 'and the primary sends it nothing')
  offB()
  a.bus.publish(topic, snap(2))
  t.equal(got.b.length, 1, 'after unsubscribing, nothing more arrives')
  // refresh/credentials are pub/sub on the control topic: every worker's producers
  b.bus.publish(CONTROL_TOPIC, { kind: 'refresh', key: 'u1' })
  t.equal(a.control.filter((e) => e.kind === 'refresh').length, 1, 'refresh reaches the producers of the other workers')
  t.equal(b.control.filter((e) => e.kind === 'refresh').length, 1, 'and of the publishing worker, once')
})

t.test('a closing worker leaves: its demand ends and its keys move at once', async (t) => {
  const m = machine()
  const a = m.worker(1)
  const b = m.worker(2)
  a.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: 'u1' })
  b.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: 'u1' })
  await a.bus.close()
  t.equal(m.authority.holderOf('u1'), 2, 'the other worker holds the key')
  t.equal(b.watches('u1').length, 1, 'and its producer was told to run it')
})
