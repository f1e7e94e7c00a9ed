/**
 * Typed exchange errors. Messages never contain a key, secret, passphrase or signature:
 * they are built from the endpoint template, the status and the server's error `code`/`message`,
 * and every message goes through `redact()` with the credentials of the call.
 */
export type LnmErrorKind =
  'credentials_rejected' | 'rate_limited' | 'unavailable' | 'bad_response' | 'timeout' | 'client_error' | 'circuit_open'

export interface LnmErrorInit {
  // each field: undefined = absent (the constructor copies only defined values)
  status?: number | undefined
  code?: string | undefined
  retryAfterMs?: number | undefined
}

export class LnmError extends Error {
  override readonly name = 'LnmError'
  readonly kind: LnmErrorKind
  readonly endpoint: string
  readonly status?: number
  readonly code?: string
  readonly retryAfterMs?: number

  constructor(kind: LnmErrorKind, endpoint: string, message: string, init: LnmErrorInit = {}) {
    super(message)
    this.kind = kind
    this.endpoint = endpoint
    if (init.status !== undefined) this.status = init.status
    if (init.code !== undefined) this.code = init.code
    if (init.retryAfterMs !== undefined) this.retryAfterMs = init.retryAfterMs
  }

  toJSON() {
    return {
      name: this.name,
      kind: this.kind,
      endpoint: this.endpoint,
      status: this.status,
      code: this.code,
      retryAfterMs: this.retryAfterMs,
      message: this.message,
    }
  }
}

export const isLnmError = (e: unknown): e is LnmError => e instanceof LnmError

/** Replace every occurrence of the given secrets (length ≥ 4) with '[redacted]'; also caps the length. */
export function redact(text: string, secrets: ReadonlyArray<string | undefined>, max = 300): string {
  let out = text
  for (const s of secrets) {
    if (s && s.length >= 4) out = out.split(s).join('[redacted]')
  }
  return out.length > max ? `${out.slice(0, max)}…` : out
}
