/**
 * The demo page's script (runs in the browser only; bundled by esbuild from
 * `index.ts`). Drives the client module; the end-to-end test reads `window.demo`.
 */
import { createAuthClient, localStorageAdapter } from '../../client/index.js'
import type { SessionEndReason } from '../../client/index.js'

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T
const params = new URLSearchParams(location.search)
const timerBox = $<HTMLInputElement>('timer')
timerBox.checked = params.get('timer') !== '0'

const client = createAuthClient({
  baseUrl: location.origin,
  storage: localStorageAdapter('fastify-jwt-sessions-demo'),
  autoRefresh: timerBox.checked
})

const counters = { calls: 0, refreshes: 0, errors: 0, statuses: [] as number[] }
let ended: SessionEndReason | null = null

function log (line: string): void {
  const box = $('log')
  box.textContent += `${new Date().toLocaleTimeString()}  ${line}\n`
  box.scrollTop = box.scrollHeight
}

const NOTICES: Record<SessionEndReason, string> = {
  replaced: 'You signed in on another device: this session has ended.',
  revoked: 'This session was signed out (here, elsewhere or by an administrator).',
  reused: 'A refresh token was used twice: the session was ended to be safe.',
  expired: 'The session expired: please sign in again.'
}

function notice (text: string | null): void {
  const box = $('notice')
  box.textContent = text ?? ''
  box.style.display = text ? 'block' : 'none'
}

client.on('session-ended', ({ reason, code }) => {
  ended = reason
  notice(NOTICES[reason])
  log(`session ended: ${reason} (${code})`)
  stopLoop()
})
client.on('refresh', ({ source, expiresAt }) => {
  counters.refreshes++
  $('refreshes').textContent = String(counters.refreshes)
  log(`refreshed ${source === 'local' ? 'by this tab' : 'by another tab'}; new token for ${((expiresAt - Date.now()) / 1000).toFixed(1)} s`)
})
client.on('login', ({ source }) => { ended = null; notice(null); log(`signed in${source === 'other-tab' ? ' in another tab' : ''}`) })
client.on('logout', ({ source }) => { log(`signed out${source === 'other-tab' ? ' in another tab' : ''}`) })

async function callMe (): Promise<number> {
  counters.calls++
  $('calls').textContent = String(counters.calls)
  const res = await client.fetch('/api/me')
  counters.statuses.push(res.status)
  if (res.status === 401) {
    counters.errors++
    $('errors').textContent = String(counters.errors)
  }
  return res.status
}

let loop: ReturnType<typeof setInterval> | undefined
function stopLoop (): void {
  clearInterval(loop)
  loop = undefined
  $('loop').textContent = 'Start loop'
}
$('loop').onclick = () => {
  if (loop) return stopLoop()
  loop = setInterval(() => { void callMe() }, 250)
  $('loop').textContent = 'Stop loop'
}
$('me').onclick = async () => {
  const res = await client.fetch('/api/me')
  counters.statuses.push(res.status)
  log(`GET /api/me -> ${res.status} ${await res.text()}`)
}
$('logout').onclick = () => { void client.logout() }
timerBox.onchange = () => {
  const url = new URL(location.href)
  url.searchParams.set('timer', timerBox.checked ? '1' : '0')
  location.href = url.href
}
$<HTMLFormElement>('login').onsubmit = async (event) => {
  event.preventDefault()
  const form = new FormData(event.target as HTMLFormElement)
  try {
    await client.login({ username: String(form.get('username')), password: String(form.get('password')), device_type: 'web', device_name: navigator.userAgent.slice(0, 60) })
  } catch (err) {
    log(`sign-in failed: ${(err as Error).message}`)
  }
}

// The remaining life of the access token, ten times a second.
setInterval(async () => {
  const s = await client.session()
  $('login-box').style.display = s ? 'none' : 'block'
  if (!s) {
    $('status').textContent = ended ? `Signed out (${ended})` : 'Signed out'
    $('life').textContent = '-'
    $('bar').style.width = '0'
    return
  }
  const left = Math.max(0, s.expiresAt - Date.now())
  $('status').textContent = `Signed in as ${s.userId} · session ${s.sessionId.slice(0, 8)}… · roles ${JSON.stringify(s.claims.roles)}`
  $('life').textContent = `${(left / 1000).toFixed(1)} s`
  const exp = Number(s.claims.exp); const iat = Number(s.claims.iat)
  $('bar').style.width = `${Math.min(100, (left / ((exp - iat) * 1000)) * 100)}%`
}, 100)

/** For the end-to-end test: `n` calls at once, or one every `spreadMs`; resolves to their statuses. */
async function burst (n: number, spreadMs = 0): Promise<number[]> {
  const calls: Array<Promise<number>> = []
  for (let i = 0; i < n; i++) {
    calls.push(callMe())
    if (spreadMs) await new Promise((resolve) => setTimeout(resolve, spreadMs))
  }
  return await Promise.all(calls)
}

Object.assign(window, { demo: { client, burst, counters, ended: () => ended } })
