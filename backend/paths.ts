/**
 * Where the repository's files are at run time, whether this code runs from its TypeScript sources
 * (backend/…, through tsx) or from the compiled bundle (dist/backend/server.js): the root is the
 * nearest directory above this module that holds package.json.
 */
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'

function findRoot(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir
    if (dirname(dir) === dir) return start
  }
}

export const ROOT_DIR = findRoot(import.meta.dirname)
