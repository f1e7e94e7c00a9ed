/**
 * Temp directories for the tests' embedded databases. A seeded PGlite DATA_DIR is a copy of ~1,000 files
 * (38 MB, a 16 MB WAL segment among them): on the disk's file system (ext4 here) writing that copy and
 * removing it afterwards cost 0.3–0.8 s of kernel time each per app, and the removal waits on the journal
 * for most of a second; on tmpfs (/dev/shm) both take ~30 ms. Nothing a test checks depends on the file
 * system: PGlite reads and writes the same files either way.
 *
 * /dev/shm is used only when it is a writable directory with room to spare (Docker gives containers 64 MB by
 * default: too small for a few apps at once); otherwise the OS temp dir, as before.
 */
import { accessSync, constants, mkdtempSync, statfsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const SHM = '/dev/shm'
/** free space /dev/shm must have: tens of test apps' data dirs at once */
const SHM_MIN_FREE_BYTES = 2 * 1024 ** 3

let root: string | undefined

/** /dev/shm when it is usable for test data, else os.tmpdir() */
export function testTmpRoot(): string {
  root ??= (() => {
    try {
      accessSync(SHM, constants.W_OK)
      const s = statfsSync(SHM)
      if (s.bavail * s.bsize >= SHM_MIN_FREE_BYTES) return SHM
    } catch {
      /* no /dev/shm (not Linux) or not writable */
    }
    return tmpdir()
  })()
  return root
}

/** mkdtemp under testTmpRoot(): for DATA_DIRs and other directories a test removes in its teardown */
export function testTmpDir(prefix: string): string {
  return mkdtempSync(join(testTmpRoot(), prefix))
}
