import { startStubFeed, startRef } from '/work/main/scripts/lib/servers.ts'
import { LoadGen } from '/work/main/scripts/lib/loadgen.ts'
import { PriceDriver } from '/work/main/scripts/lib/ticker.ts'
import { procSample, cpuPercent, sleep, stopChild } from '/work/main/scripts/lib/proc.ts'
const feed = await startStubFeed()
const lg = await LoadGen.start(2, true)
for (const kind of ['ws', 'sio'] as const) {
  const ref = await startRef(kind, feed.streamUrl)
  await sleep(300)
  const c = await lg.connect({ kind, url: ref.url, count: 500, localAddresses: ['127.0.0.2', '127.0.0.3'] }, 20)
  console.log(kind, 'connected', c)
  const drv = new PriceDriver(feed.origin)
  const run = drv.run(50, 6000)
  await sleep(1000)
  await lg.measure()
  const a = procSample(ref.pid)
  await sleep(4000)
  const b = procSample(ref.pid)
  const agg = await lg.pause()
  console.log(kind, await run, { frames: agg.frames, fps: agg.frames / 4, cpu: cpuPercent(a, b), gaps: agg.gaps, lat: agg.latency, probe: agg.probeLatency, failures: agg.failures, rss: b.rssBytes })
  console.log(await lg.closeAll())
  await stopChild(ref.proc)
}
await lg.stop()
await stopChild(feed.proc)
