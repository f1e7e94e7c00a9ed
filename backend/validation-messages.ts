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
}

const nameOf = (field: string): string => FIELD_NAMES[field] ?? (field ? `The field "${field}"` : 'The request')

/** one sentence for one validation issue */
export function describeIssue(issue: AjvIssue, context = 'body'): string {
  const params = issue.params ?? {}
  const path = (issue.instancePath ?? '').split('/').filter(Boolean)
  let field = path[0] ?? ''
  if (issue.keyword === 'required' && typeof params.missingProperty === 'string') field = params.missingProperty
  const name = nameOf(field)
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
      return `${name} must be ${String(params.type ?? 'of another type')}.`
    case 'additionalProperties':
      // eslint-disable-next-line @typescript-eslint/no-base-to-string -- Ajv's params.additionalProperty: a property name
      return `Unknown field "${String(params.additionalProperty ?? '')}".`
    case 'enum':
    case 'const':
    case 'anyOf':
      return `${name} has a value that is not allowed.`
    case 'minimum':
    case 'exclusiveMinimum':
      return `${name} must be at least ${String(params.limit)}.`
    case 'maximum':
    case 'exclusiveMaximum':
      return `${name} must be at most ${String(params.limit)}.`
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
