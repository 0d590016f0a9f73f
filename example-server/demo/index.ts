import type { FastifyPluginAsync } from 'fastify'
import { fileURLToPath } from 'node:url'

/**
 * The client demo (issue 7): `GET /` answers the page, `GET /demo/client.js`
 * the browser bundle of `browser.ts` (which imports the client module), built
 * by esbuild at the first request and kept in memory: `npm run example` needs
 * no build step.
 */
const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fastify-jwt-sessions client demo</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 46rem; padding: 0 1rem; color: #1d2330; }
  h1 { font-size: 1.3rem; margin-bottom: .2rem; }
  .muted { color: #5b6478; }
  fieldset { border: 1px solid #d5d9e2; border-radius: 8px; margin: 1rem 0; padding: .8rem 1rem; }
  input { font: inherit; padding: .25rem .4rem; margin-right: .4rem; width: 9rem; }
  button { font: inherit; padding: .3rem .8rem; margin: .2rem .3rem .2rem 0; border-radius: 6px; border: 1px solid #8892a6; background: #f4f6fa; cursor: pointer; }
  #notice { display: none; background: #fff3cd; border: 1px solid #e0b400; border-radius: 8px; padding: .7rem 1rem; margin: 1rem 0; font-weight: 600; }
  #life { font-size: 1.6rem; font-variant-numeric: tabular-nums; }
  .bar { height: 8px; background: #e6e9f0; border-radius: 4px; overflow: hidden; margin: .3rem 0 .6rem; }
  .bar > div { height: 100%; background: #3b82f6; width: 0; }
  #log { font: 13px/1.4 ui-monospace, monospace; background: #0f1522; color: #cfe3ff; border-radius: 8px; padding: .7rem 1rem; height: 15rem; overflow: auto; white-space: pre-wrap; }
</style>
</head>
<body>
<h1>fastify-jwt-sessions: client demo</h1>
<p class="muted">Built from <code>fastify-jwt-sessions/client</code>. Tokens live in <code>localStorage</code>: open this page in a second tab and both share one session and one refresh.</p>
<div id="notice" role="alert"></div>
<fieldset id="login-box">
  <legend>Sign in</legend>
  <form id="login">
    <input name="username" value="alice" aria-label="username">
    <input name="password" type="password" value="alice-pass" aria-label="password">
    <button type="submit">Sign in</button>
  </form>
  <p class="muted">Demo users: alice / alice-pass, bob / bob-pass, root / root-pass.</p>
</fieldset>
<fieldset>
  <legend>Session</legend>
  <div id="status">Signed out</div>
  <div>Access token expires in <span id="life">-</span></div>
  <div class="bar"><div id="bar"></div></div>
  <button id="me">Call /api/me</button>
  <button id="loop">Start loop</button>
  <label><input type="checkbox" id="timer" style="width:auto"> refresh on a timer</label>
  <button id="logout">Sign out</button>
  <div>Calls: <span id="calls">0</span> · refreshes seen: <span id="refreshes">0</span> · 401s: <span id="errors">0</span></div>
</fieldset>
<div id="log" aria-label="log"></div>
<script type="module" src="/demo/client.js"></script>
</body>
</html>
`

const clientDemo: FastifyPluginAsync = async (app) => {
  let bundle: Promise<string> | undefined
  const build = async (): Promise<string> => {
    const { build } = await import('esbuild')
    const result = await build({
      entryPoints: [fileURLToPath(new URL('./browser.ts', import.meta.url))],
      bundle: true,
      write: false,
      format: 'esm',
      target: 'es2020',
      sourcemap: 'inline',
      logLevel: 'silent'
    })
    return result.outputFiles[0]!.text
  }

  app.get('/', async (request, reply) => {
    reply.type('text/html; charset=utf-8')
    return PAGE
  })
  app.get('/demo/client.js', async (request, reply) => {
    bundle ??= build()
    reply.type('text/javascript; charset=utf-8')
    return await bundle
  })
}

export default clientDemo
