export const BACKEND_OUT: string
export function backendNeedsBuild(): string | null
export function buildBackend(opts?: { quiet?: boolean; outdir?: string }): Promise<void>
