/**
 * Request-validation failures said plainly, naming the field in words ("API secret must be at least 8
 * characters.") instead of the validator's text ("body/apiSecret must NOT have fewer than 8 characters").
 */

interface AjvIssue {
  instancePath?: string
  keyword?: string
  params?: Record<string, unknown>
}

const FIELD_NAMES: Record<string, string> = {
  username: 'Username',
  password: 'Password',
  apiKey: 'API key',
  apiSecret: 'API secret',
  passphrase: 'Passphrase',
  kind: 'History kind',
  cursor: 'Cursor',
  limit: 'Limit',
  // alert settings (PUT /api/alerts)
  liquidationPct: 'The liquidation alert distance',
  notify: 'The notification choices',
  connectionLoss: 'The connection-loss choice',
  exchangeDown: 'The exchange-down choice',
  fills: 'The fills choice',
  closes: 'The closes choice',
  liquidations: 'The liquidations choice',
  browserNotifications: 'The browser-notifications choice',
  priceLevels: 'The list of price levels',
  price: 'Price',
  direction: 'Direction',
  note: 'Note',
  triggeredAt: 'Triggered time',
  version: 'Version',
  id: 'Id',
}

const TYPE_WORDS: Record<string, string> = {
  boolean: 'true or false',
  number: 'a number',
  integer: 'a whole number',
  string: 'text',
  array: 'a list',
  object: 'an object',
}

/** what one item of a list field is called ("price level 3") */
const ITEM_NAMES: Record<string, string> = {
  priceLevels: 'price level',
}

const nameOf = (field: string): string => FIELD_NAMES[field] ?? (field ? `The field "${field}"` : 'The request')

/** a nested field in words: "The price of price level 3", "The fills choice" (the last named segment) */
function nestedName(path: readonly string[]): string {
  const last = path[path.length - 1] ?? ''
  const index = path.findIndex((p) => /^\d+$/.test(p))
  if (index > 0) {
    const item = `${ITEM_NAMES[path[index - 1]!] ?? 'item'} ${Number(path[index]) + 1}`
    if (index === path.length - 1) return item[0]!.toUpperCase() + item.slice(1)
    const field = nameOf(last)
    return `The ${field.replace(/^The /, '').toLowerCase()} of ${item}`
  }
  return nameOf(last)
}

/** one sentence for one validation issue */
export function describeIssue(issue: AjvIssue, context = 'body'): string {
  const params = issue.params ?? {}
  const path = (issue.instancePath ?? '').split('/').filter(Boolean)
  let field = path[0] ?? ''
  if (issue.keyword === 'required' && typeof params.missingProperty === 'string') {
    field = params.missingProperty
    path.push(field)
  }
  const name = path.length > 1 ? nestedName(path) : nameOf(field)
  switch (issue.keyword) {
    case 'required':
      return `${name} is required.`
    case 'minLength':
      return Number(params.limit) === 1 ? `${name} must not be empty.` : `${name} must be at least ${String(params.limit)} characters.`
    case 'maxLength':
      return `${name} must be at most ${String(params.limit)} characters.`
    case 'pattern':
      return field === 'username'
        ? 'Username may contain only letters, digits, _ . and -.'
        : field === 'passphrase'
          ? 'Passphrase must be printable ASCII characters (letters, digits, punctuation), with no leading or trailing space: LN Markets receives it in an HTTP header.'
          : `${name} contains characters that are not allowed (spaces or non-ASCII characters: check for a stray space when pasting).`
    case 'type':
      // eslint-disable-next-line @typescript-eslint/no-base-to-string -- Ajv's params.type: a type name or a list of them
      return `${name} must be ${TYPE_WORDS[String(params.type)] ?? String(params.type ?? 'of another type')}.`
    case 'additionalProperties':
      // eslint-disable-next-line @typescript-eslint/no-base-to-string -- Ajv's params.additionalProperty: a property name
      return `Unknown field "${String(params.additionalProperty ?? '')}".`
    case 'enum':
    case 'const':
    case 'anyOf':
      return `${name} has a value that is not allowed.`
    case 'minimum':
      return `${name} must be at least ${String(params.limit)}.`
    case 'exclusiveMinimum':
      return `${name} must be more than ${String(params.limit)}.`
    case 'maximum':
      return `${name} must be at most ${String(params.limit)}.`
    case 'exclusiveMaximum':
      return `${name} must be less than ${String(params.limit)}.`
    case 'maxItems':
      return `${name} may hold at most ${String(params.limit)} entries.`
    case 'minItems':
      return `${name} must hold at least ${String(params.limit)} entries.`
    case 'format':
      return params.format === 'date-time'
        ? `${name} must be a date and time such as 2026-01-31T12:00:00Z.`
        : `${name} is not in the expected format.`
    case 'multipleOf':
      return `${name} must be a whole number.`
    case undefined:
    default:
      return context === 'body' ? `${name} is not valid.` : `${name} in the ${context} is not valid.`
  }
}

/** every issue, one sentence each */
export function describeValidation(issues: readonly AjvIssue[] | undefined, context?: string): string {
  if (!issues?.length) return 'The request is not valid.'
  return [...new Set(issues.map((i) => describeIssue(i, context)))].join(' ')
}
