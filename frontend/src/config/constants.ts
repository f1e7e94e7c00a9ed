/** Client-side timing constants. The server's own values (staleAfterMs) win when it tells us them. */

/** values older than this are shown greyed and labelled STALE; replaced by /api/config/public's staleAfterMs */
export const DEFAULT_STALE_AFTER_MS = 30_000
/**
 * HTTP fallback polling period of /api/dashboard while the WebSocket is down. The period actually used is
 * at most half the stale limit (see fallbackPollMs), so data that was fresh at one poll is never shown
 * STALE before the next one.
 */
export const FALLBACK_POLL_MS = 30_000
/** the fallback never polls more often than this */
export const MIN_FALLBACK_POLL_MS = 2_000
/** reconnect backoff: full jitter over base·2^attempt, capped */
export const BACKOFF_BASE_MS = 500
export const BACKOFF_CAP_MS = 30_000
/** the first auth message must be answered within this, or the socket is treated as dead */
export const WS_AUTH_TIMEOUT_MS = 10_000
/**
 * Silence detection. The browser cannot see WebSocket pings, so after this long without any frame the page
 * sends an application-level ping; a live gateway answers within milliseconds.
 */
export const WS_PING_EVERY_MS = 2_500
/** a ping unanswered this long: the open socket is silent — the chip leaves LIVE and HTTP polling starts */
export const WS_SILENT_AFTER_MS = 2_000
/** a ping unanswered this long: the socket is dropped and re-opened */
export const WS_PONG_TIMEOUT_MS = 10_000
/** refresh the access token this long before it expires (or at 80 % of its life when it is shorter) */
export const TOKEN_REFRESH_MARGIN_MS = 60_000
/** a gap this long between two 1-second timer ticks means the machine slept */
export const WAKE_GAP_MS = 5_000
/** price points kept for the live chart */
export const CHART_MAX_POINTS = 900
/** default liquidation-distance alert threshold, in % */
export const DEFAULT_LIQ_ALERT_PCT = 10
