/**
 * pino-pretty is required only when pretty logs are on (logger.ts): production's JSON logs never load it,
 * development's pretty logs still get it.
 */
import t from 'tap'
import { loggerOptions, prettyLogs } from '../logger.ts'

t.test('pretty logs: a pino-pretty stream, loaded on demand', async (t) => {
  const opts = loggerOptions('info', undefined, true)
  const stream = opts.stream as NodeJS.WritableStream & { constructor: { name: string } }
  t.ok(stream, 'a stream is set')
  t.equal(typeof stream.write, 'function', 'it is writable')
  t.equal(typeof (stream as unknown as { pipe: unknown }).pipe, 'function', "it is pino-pretty's transform stream")
  t.ok(opts.redact, 'redaction still applies before the stream')
})

t.test('JSON logs (production): no stream, pino writes to stdout itself', async (t) => {
  t.equal(prettyLogs({ nodeEnv: 'production', logPretty: true, isTTY: true }), false, 'production never pretty-prints')
  t.notOk(loggerOptions('info', undefined, false).stream)
})
