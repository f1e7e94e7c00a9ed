/** Standalone simulator: `npm run simulator` (CONTRACT §9). Config comes from backend/config.ts only. */
import { loadConfig } from '../config.ts'
import { demoAccounts, loadAccountsFile, startSimulator } from './index.ts'

const config = loadConfig()
const accounts = config.SIM_ACCOUNTS_FILE ? loadAccountsFile(config.SIM_ACCOUNTS_FILE) : demoAccounts()
const sim = await startSimulator({
  port: config.SIM_PORT,
  host: config.HOST,
  accounts,
  admin: config.SIM_ADMIN,
  seed: Date.now() & 0x7fffffff,
})

// printed once, to the operator's terminal only: these are simulator credentials, not real ones
console.log(`LN Markets simulator
  REST v3   ${sim.url}
  Stream v1 ${sim.streamUrl}${config.SIM_ADMIN ? `\n  admin     ${sim.url.replace(/\/v3$/, '')}/__sim/{faults,stats,price}` : ''}
  accounts${config.SIM_ACCOUNTS_FILE ? ` (from ${config.SIM_ACCOUNTS_FILE})` : ' (demo)'}:`)
for (const a of sim.accounts) {
  console.log(`    ${a.username.padEnd(12)} key=${a.key} secret=${a.secret} passphrase=${a.passphrase} balance=${a.balance} sats`)
}

let stopping = false
const stop = (signal: string) => {
  if (stopping) return
  stopping = true
  console.log(`simulator: ${signal}, closing`)
  const force = setTimeout(() => process.exit(1), 5000)
  force.unref()
  sim.close().then(
    () => process.exit(0),
    () => process.exit(1),
  )
}
process.once('SIGINT', () => stop('SIGINT'))
process.once('SIGTERM', () => stop('SIGTERM'))
