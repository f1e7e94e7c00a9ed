'use strict'
// See package.json: `prisma dev` is not used by lnm-gateway; anything that reaches for this fails clearly.
module.exports = new Proxy(
  {},
  {
    get(_t, name) {
      if (name === 'then' || typeof name === 'symbol' || name === '__esModule') return undefined
      throw new Error(`@prisma/streams-local.${String(name)} is not available: lnm-gateway does not use 'prisma dev'`)
    },
  },
)
