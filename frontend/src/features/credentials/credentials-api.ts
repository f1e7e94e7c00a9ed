/** /api/credentials: the stored LN Markets API key, only ever seen masked. */
import { ApiError, type ApiClient } from '../../lib/api-client.ts'

export interface StoredCredentials {
  maskedKey: string
  network: string
  createdAt: string
  verifiedAt: string | null
}

export interface CredentialsInput {
  apiKey: string
  apiSecret: string
  passphrase: string
}

export async function getCredentials(api: ApiClient): Promise<StoredCredentials | null> {
  try {
    return await api.json<StoredCredentials>('GET', '/api/credentials')
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return null
    throw e
  }
}

export async function putCredentials(api: ApiClient, input: CredentialsInput): Promise<StoredCredentials | null> {
  const res = await api.json<StoredCredentials | { credentials?: StoredCredentials } | null>('PUT', '/api/credentials', { body: input })
  if (res && 'maskedKey' in res) return res
  return getCredentials(api)
}

export async function deleteCredentials(api: ApiClient): Promise<void> {
  await api.json('DELETE', '/api/credentials')
}

/** demo mode only: a fresh simulator account for this user, its key stored (POST /api/credentials/demo) */
export async function provisionDemoCredentials(api: ApiClient): Promise<StoredCredentials> {
  return api.json<StoredCredentials>('POST', '/api/credentials/demo')
}
