/** The gateway's status reasons (short codes, never upstream messages) said in words. */
const REASONS: Record<string, string> = {
  upstream_unavailable: 'LN Markets is not answering',
  upstream_timeout: 'LN Markets is answering too slowly (timeouts)',
  upstream_bad_response: 'LN Markets sent answers the gateway could not read',
  upstream_client_error: 'LN Markets refused the gateway’s requests',
  rate_limited: 'LN Markets is rate-limiting requests; updates are slowed down',
  credentials_rejected: 'LN Markets rejected your API key — replace it below',
  internal_error: 'the gateway hit an internal error while polling',
  no_credentials: 'no API key is connected yet',
}

export function describeReason(code: string | null): string {
  if (!code) return 'the exchange is not answering'
  return REASONS[code] ?? code.replace(/_/g, ' ')
}
