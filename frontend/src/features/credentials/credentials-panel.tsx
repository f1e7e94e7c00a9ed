/**
 * The LN Markets API key: a form to connect one (recommending a read-only key), then only the masked
 * key and when it was verified — the secret and passphrase are never shown again.
 */
import { useEffect, useState, type FormEvent } from 'react'
import { useApi } from '../../lib/api-context.ts'
import { useRealtime } from '../../lib/realtime-react.ts'
import { useNow } from '../../lib/use-now.ts'
import { fmtDateTime, fmtDuration } from '../../lib/format.ts'
import { credentialsFieldOf, describeError, splitSentences } from '../session/error-messages.ts'
import { deleteCredentials, getCredentials, putCredentials, provisionDemoCredentials, type StoredCredentials } from './credentials-api.ts'

type Field = 'apiKey' | 'apiSecret' | 'passphrase'
const FIELD_LABEL: Record<Field, string> = { apiKey: 'API key', apiSecret: 'API secret', passphrase: 'Passphrase' }

/** the form's own checks, each naming its field (the gateway checks again and says the same way) */
export function credentialsInputProblems(input: Record<Field, string>): Array<{ field: Field; message: string }> {
  const out: Array<{ field: Field; message: string }> = []
  for (const f of ['apiKey', 'apiSecret', 'passphrase'] as const) {
    if (!input[f]) out.push({ field: f, message: `${FIELD_LABEL[f]} is required.` })
    else if (f !== 'passphrase' && input[f].length < 8) out.push({ field: f, message: `${FIELD_LABEL[f]} must be at least 8 characters.` })
    else if (f !== 'passphrase' && /\s/.test(input[f])) out.push({ field: f, message: `${FIELD_LABEL[f]} must not contain spaces.` })
  }
  return out
}

/** only this line re-renders every second, not the whole form */
/** a text input's value ('' when absent; these forms have no file inputs) */
const textField = (data: FormData, name: Field): string => {
  const v = data.get(name)
  return typeof v === 'string' ? v : ''
}

function VerifiedAt(props: { iso: string }) {
  const now = useNow()
  return <>{`${fmtDateTime(props.iso)} (${fmtDuration(now - Date.parse(props.iso))} ago)`}</>
}

export function CredentialsPanel(props: { onChanged: () => void; prominent: boolean; demo: boolean }) {
  const api = useApi()
  const simulator = useRealtime((s) => s.source === 'simulator')
  const [stored, setStored] = useState<StoredCredentials | null | undefined>(undefined)
  const [editing, setEditing] = useState(false)
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | null>(null)
  const [notice, setNotice] = useState<string | null>(null)
  const [badFields, setBadFields] = useState<Set<Field>>(new Set())

  useEffect(() => {
    let alive = true
    getCredentials(api).then(
      (c) => alive && setStored(c),
      (e: unknown) => alive && (setStored(null), setError(describeError(e, 'credentials'))),
    )
    return () => {
      alive = false
    }
  }, [api])

  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault()
    const form = e.currentTarget
    const data = new FormData(form)
    const input = {
      apiKey: textField(data, 'apiKey').trim(),
      apiSecret: textField(data, 'apiSecret').trim(),
      passphrase: textField(data, 'passphrase'),
    }
    const problems = credentialsInputProblems(input)
    if (problems.length) {
      setError(problems.map((p) => p.message).join(' '))
      setBadFields(new Set(problems.map((p) => p.field)))
      return
    }
    setBusy(true)
    setError(null)
    setBadFields(new Set())
    try {
      const saved = await putCredentials(api, input)
      form.reset() // the secret and passphrase leave the page's memory with the form
      setStored(saved)
      setEditing(false)
      setNotice('Verified with LN Markets and stored encrypted.')
      props.onChanged()
    } catch (err) {
      const message = describeError(err, 'credentials')
      setError(message)
      setBadFields(
        new Set(
          splitSentences(message)
            .map(credentialsFieldOf)
            .filter((f): f is Field => f !== null),
        ),
      )
    } finally {
      setBusy(false)
    }
  }

  const takeDemo = async () => {
    setBusy(true)
    setError(null)
    try {
      const saved = await provisionDemoCredentials(api)
      setStored(saved)
      setEditing(false)
      setNotice('A fresh simulator account was created for you and its key stored.')
      props.onChanged()
    } catch (err) {
      setError(describeError(err, 'credentials'))
    } finally {
      setBusy(false)
    }
  }

  const fieldProps = (f: Field) => ({
    'aria-invalid': badFields.has(f) || undefined,
    'aria-describedby': badFields.has(f) ? 'cred-error' : undefined,
  })
  const errorLines = error ? splitSentences(error) : []

  const remove = async () => {
    if (!window.confirm('Forget this API key? Live data stops until you add one again.')) return
    setBusy(true)
    setError(null)
    try {
      await deleteCredentials(api)
      setStored(null)
      setNotice('The API key was forgotten.')
      props.onChanged()
    } catch (err) {
      setError(describeError(err, 'credentials'))
    } finally {
      setBusy(false)
    }
  }

  const showForm = stored === null || editing
  return (
    <section
      className={`panel panel-credentials ${props.prominent ? 'prominent' : ''}`}
      aria-labelledby="cred-title"
      data-testid="panel-credentials"
    >
      <header className="panel-head">
        <h2 id="cred-title">LN Markets API key</h2>
      </header>
      <div className="panel-body">
        {stored === undefined && <p className="muted">Loading…</p>}
        {stored && !editing && (
          <div className="cred-stored">
            <dl className="kv">
              <div>
                <dt>Key</dt>
                <dd data-testid="cred-masked">
                  <code>{stored.maskedKey}</code>
                </dd>
              </div>
              <div>
                <dt>Network</dt>
                <dd>{stored.network}</dd>
              </div>
              <div>
                <dt>Verified</dt>
                <dd data-testid="cred-verified">{stored.verifiedAt ? <VerifiedAt iso={stored.verifiedAt} /> : 'not yet'}</dd>
              </div>
            </dl>
            <div className="row-actions">
              <button type="button" onClick={() => (setEditing(true), setNotice(null))} disabled={busy}>
                Replace key
              </button>
              <button type="button" className="danger-btn" onClick={() => void remove()} disabled={busy}>
                Remove
              </button>
            </div>
          </div>
        )}
        {showForm && stored !== undefined && (
          <form className="cred-form" onSubmit={(e) => void submit(e)} autoComplete="off" noValidate>
            <p className="hint">
              Create a <strong>read-only</strong> key in LN Markets (API → new key, with only the <em>read</em> permissions for account and
              futures). This dashboard never trades; a read-only key cannot move your funds even if it leaks. The secret and passphrase are
              sent once, verified with the exchange, stored encrypted, and never shown again.
              {simulator && (
                <>
                  <br />
                  <strong>Demo mode:</strong> this gateway talks to its built-in LN Markets simulator, so real LN Markets keys will be
                  refused. Use the button below for a funded simulator account of your own.
                </>
              )}
            </p>
            {props.demo && (
              <div className="demo-cred">
                <button type="button" className="primary" onClick={() => void takeDemo()} disabled={busy} data-testid="cred-demo">
                  Use simulator demo credentials
                </button>
              </div>
            )}
            <label>
              API key
              <input name="apiKey" autoComplete="off" spellCheck={false} required {...fieldProps('apiKey')} />
            </label>
            <label>
              API secret
              <input
                name="apiSecret"
                type="password"
                autoComplete="new-password"
                spellCheck={false}
                required
                {...fieldProps('apiSecret')}
              />
            </label>
            <label>
              Passphrase
              <input
                name="passphrase"
                type="password"
                autoComplete="new-password"
                spellCheck={false}
                required
                {...fieldProps('passphrase')}
              />
            </label>
            <div className="row-actions">
              <button type="submit" className="primary" disabled={busy}>
                {busy ? 'Verifying with LN Markets…' : 'Verify and save'}
              </button>
              {editing && (
                <button type="button" onClick={() => (setEditing(false), setError(null))} disabled={busy}>
                  Cancel
                </button>
              )}
            </div>
          </form>
        )}
        {error && (
          <div className="form-error" role="alert" data-testid="cred-error" id="cred-error">
            {errorLines.length > 1 ? (
              <ul className="error-list">
                {errorLines.map((l) => (
                  <li key={l}>{l}</li>
                ))}
              </ul>
            ) : (
              error
            )}
          </div>
        )}
        {notice && !error && (
          <p className="form-ok" role="status">
            {notice}
          </p>
        )}
      </div>
    </section>
  )
}
