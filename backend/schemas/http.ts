/** TypeBox schemas shared by the HTTP routes (request and response). */
import Type, { type Static } from 'typebox'

export const ErrorResponse = Type.Object({
  error: Type.Object({ code: Type.String(), message: Type.String() }),
})

/** the error responses every authenticated route may give */
export const commonErrors = {
  400: ErrorResponse,
  401: ErrorResponse,
  429: ErrorResponse,
  500: ErrorResponse,
} as const

export const USERNAME_PATTERN = '^[A-Za-z0-9_.-]+$'
export const Username = Type.String({ minLength: 3, maxLength: 32, pattern: USERNAME_PATTERN, description: '3–32 letters, digits, _ . -' })
/** only the bounds here: the policy (length ≥ 8, not the username, not common…) is checked in code, so every rule
 *  broken is reported at once, each as its own sentence (auth/passwords.ts) */
export const Password = Type.String({ minLength: 1, maxLength: 256 })

export const Credentials = Type.Object({ username: Username, password: Password }, { additionalProperties: false })
export const LoginBody = Type.Object(
  { username: Type.String({ minLength: 1, maxLength: 64 }), password: Type.String({ minLength: 1, maxLength: 256 }) },
  { additionalProperties: false },
)

export const User = Type.Object({ id: Type.String(), username: Type.String(), createdAt: Type.String() })
export type UserT = Static<typeof User>

export const TokenResponse = Type.Object({
  accessToken: Type.String(),
  expiresAt: Type.Number({ description: 'epoch ms' }),
  tokenType: Type.Literal('Bearer'),
})

/**
 * What LN Markets can receive. The key and passphrase travel as HTTP header values, so they are printable ASCII with
 * no leading or trailing space (anything else would be refused by the HTTP client or altered in transit); the
 * secret keys the HMAC and is printable ASCII as the exchange issues it. Lengths are generous upper bounds.
 */
const HEADER_SAFE_PATTERN = '^[\\x21-\\x7e]([\\x20-\\x7e]*[\\x21-\\x7e])?$'
export const CredentialsBody = Type.Object(
  {
    apiKey: Type.String({ minLength: 8, maxLength: 256, pattern: '^[\\x21-\\x7e]+$' }),
    apiSecret: Type.String({ minLength: 8, maxLength: 512, pattern: '^[\\x21-\\x7e]+$' }),
    passphrase: Type.String({ minLength: 1, maxLength: 256, pattern: HEADER_SAFE_PATTERN }),
  },
  { additionalProperties: false },
)

export const CredentialsInfo = Type.Object({
  maskedKey: Type.String(),
  network: Type.String(),
  createdAt: Type.String(),
  verifiedAt: Type.Union([Type.String(), Type.Null()]),
})

export const Ok = Type.Object({ ok: Type.Literal(true) })

/** alert settings (GET/PUT /api/alerts): bounds shared with the dashboard's own checks */
export const ALERT_LIMITS = {
  /** liquidation-distance threshold, % (same bounds as the dashboard's input) */
  maxLiquidationPct: 90,
  maxPriceLevels: 20,
  /** a USD price no BTC quote will reach: catches a typo of extra digits */
  maxPrice: 100_000_000,
  maxNoteLength: 80,
} as const

export const PriceLevel = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' }),
    price: Type.Number({ exclusiveMinimum: 0, maximum: ALERT_LIMITS.maxPrice }),
    direction: Type.Union([Type.Literal('above'), Type.Literal('below')]),
    note: Type.Optional(Type.String({ maxLength: ALERT_LIMITS.maxNoteLength })),
    /** when the price last crossed this level (ISO), null until then */
    triggeredAt: Type.Optional(Type.Union([Type.String({ format: 'date-time' }), Type.Null()])),
  },
  { additionalProperties: false },
)
export type PriceLevelT = Static<typeof PriceLevel>

export const AlertNotify = Type.Object(
  {
    connectionLoss: Type.Boolean(),
    exchangeDown: Type.Boolean(),
    fills: Type.Boolean(),
    closes: Type.Boolean(),
    liquidations: Type.Boolean(),
  },
  { additionalProperties: false },
)

const alertFields = {
  liquidationPct: Type.Number({ exclusiveMinimum: 0, maximum: ALERT_LIMITS.maxLiquidationPct }),
  notify: AlertNotify,
  /** the trader wants browser notifications (the browser's permission is asked for separately, on the page) */
  browserNotifications: Type.Boolean(),
  priceLevels: Type.Array(PriceLevel, { maxItems: ALERT_LIMITS.maxPriceLevels }),
}

/** PUT body: the whole settings (full replace) and the version they were read at (0: never saved) */
export const AlertSettingsBody = Type.Object({ ...alertFields, version: Type.Integer({ minimum: 0 }) }, { additionalProperties: false })
export type AlertSettingsBodyT = Static<typeof AlertSettingsBody>

export const AlertSettingsResponse = Type.Object({
  ...alertFields,
  /** 0 while nothing is saved (the defaults); each PUT increments it */
  version: Type.Integer(),
  updatedAt: Type.Union([Type.String(), Type.Null()]),
})
export type AlertSettingsT = Static<typeof AlertSettingsResponse>
