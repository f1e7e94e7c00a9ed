/** `--name value`, `--name=value` and `--flag` arguments (npm passes them after `--`). */
export function parseArgs(argv: string[] = process.argv.slice(2)): Map<string, string> {
  const out = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (!a.startsWith('--')) continue
    const eq = a.indexOf('=')
    if (eq > 0) {
      out.set(a.slice(2, eq), a.slice(eq + 1))
      continue
    }
    const next = argv[i + 1]
    if (next !== undefined && !next.startsWith('--')) {
      out.set(a.slice(2), next)
      i++
    } else out.set(a.slice(2), 'true')
  }
  return out
}

export function intArg(args: Map<string, string>, name: string, def: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const v = args.get(name)
  if (v === undefined) return def
  const n = Number(v)
  if (!Number.isInteger(n) || n < min || n > max)
    throw new Error(`--${name} must be an integer in [${min}, ${max}] (got ${JSON.stringify(v)})`)
  return n
}

export function numArg(args: Map<string, string>, name: string, def: number, min = 0, max = Number.MAX_VALUE): number {
  const v = args.get(name)
  if (v === undefined) return def
  const n = Number(v)
  if (!Number.isFinite(n) || n < min || n > max)
    throw new Error(`--${name} must be a number in [${min}, ${max}] (got ${JSON.stringify(v)})`)
  return n
}

export const boolArg = (args: Map<string, string>, name: string): boolean => {
  const v = args.get(name)
  return v !== undefined && v !== 'false' && v !== '0'
}
