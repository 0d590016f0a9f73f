import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import t from 'tap'
import { buildDeclarations, checkProject, consumerApp } from './helpers/type-check.js'

// The package as a strict app gets it: built (tsconfig.build.json), installed
// in an app's node_modules, and compiled by the programs of test/types (its
// README says what each one covers).
// One build and three programs of CPU-bound compiler work: about 30 s alone,
// but the suite runs files side by side on two cores; more room than tap's 120 s.
t.setTimeout(300_000)
const root = resolve('.')
const { pkg, app } = consumerApp(root, resolve('.tap', 'types'), resolve('test', 'types'))

t.test('the package builds', async (t) => {
  t.same(buildDeclarations(root, join(pkg, 'dist')), [])
})

t.test('a strict app (skipLibCheck false) that declares its claims: every shipped declaration compiles, every type test holds', async (t) => {
  t.same(checkProject(app, 'app'), [])
})

t.test('claims declared on fastify-jwt-sessions/types apply in an app that imports subpaths only', async (t) => {
  t.same(checkProject(app, 'subpaths', { skipLibCheck: true }), [])
})

t.test('an app that declares no claims hands in any claims and reads them back as unknown', async (t) => {
  t.same(checkProject(app, 'plain', { skipLibCheck: true }), [])
})

t.test('the README\'s TypeScript snippets are the ones compiled here', async (t) => {
  const readme = readFileSync('README.md', 'utf8')
  const section = (heading: string) => {
    const text = readme.slice(readme.indexOf(heading))
    return /```ts\n([\s\S]*?)```/.exec(text)![1]
  }
  t.ok(readFileSync('test/types/app/claims.ts', 'utf8').includes(section('### Typing your claims')), 'Typing your claims')
  t.ok(readFileSync('test/types/app/readme.ts', 'utf8').includes(section('### `request.auth`')), 'request.auth')
})
