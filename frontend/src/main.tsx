/** Entry point: one API client and one session for the tab; the dashboard creates the one realtime client. */
import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { ApiClient } from './lib/api-client.ts'
import { SessionStore } from './features/session/session-store.ts'
import { App } from './app/app.tsx'
import './app/styles.css'

const api = new ApiClient()
const session = new SessionStore(api)

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App api={api} session={session} />
  </StrictMode>,
)
