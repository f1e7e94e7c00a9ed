/**
 * The TypeScript loader of the tap suites (package.json: tap.node-arg): tsx, the esbuild-based loader that
 * `npm run dev`, the scripts and the child gateways already run under, in place of tap's own ts-node plugin
 * (disabled there), which cost about 2.5 s more CPU for every test file that imports the app.
 *
 * The root tsconfig.json is a solution that lists no files, and tsx applies a tsconfig only to the files it
 * includes; tests get tsconfig.tap.json instead: the shared options (the JSX transform among them) for every
 * file of the repository.
 */
import { fileURLToPath } from 'node:url'
import { register as registerCjs } from 'tsx/cjs/api'
import { register } from 'tsx/esm/api'

const tsconfig = fileURLToPath(new URL('../tsconfig.tap.json', import.meta.url))
register({ tsconfig })
registerCjs()
