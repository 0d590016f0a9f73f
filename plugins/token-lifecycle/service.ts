import type { FastifyBaseLogger } from 'fastify'
import { checkAppClaims } from '../../lib/claims.js'
import { randomId } from '../../lib/crypto.js'
import type { DurableWrites, WriteCall } from '../../lib/durable-writes.js'
import { StoreUnavailableError } from '../../lib/errors.js'
import { newIssueContext } from '../../lib/issue-context.js'
import type { Keyspace } from '../../lib/keys.js'
import { onceSpentError } from '../../lib/once-keys.js'
import type { RedisClient, ScriptCall, ScriptDefinition, StoreGuard } from '../../lib/redis.js'
import { defineScript } from '../../lib/redis.js'
import type { LaneScriptCall, ScriptLane } from '../../lib/script-lane.js'
import { SESSION_ID, coreRecord, deviceRecord, escapeRecordPart, unescapeRecordPart } from '../../lib/session-record.js'
import { parsePolicy } from '../../lib/sso-policy.js'
import { tokenPair } from '../../lib/token-pair.js'
import type {
  IssueContext, OpenSessionInput, OpenSessionResult, ReplacedSession, SessionExtension, SessionInfo
} from '../../lib/types.js'
import type { LocalCache } from './local-cache.js'
import type { ResolvedTokenLifecycleOptions } from './options.js'
import { BUMP_CLAIMS, END_SESSION, END_USER_SESSIONS, LIST_SESSIONS, OPEN, VERIFY } from './scripts.js'

const MAX_DEVICE_FIELD = 200
/**
 * Replaced sessions whose tombstones a user keeps (the most recently used):
 * enough for every device a person owns to learn it was replaced, while a
 * user who logs in again and again keeps a small hash.
 */
export const MAX_TOMBSTONES = 16
/**
 * A login whose claims were read before a role change, and whose session
 * opens after it, must not issue the old claims as current. The change's time
 * is kept at least this long: a login slower than that between reading the
 * claims and opening the session is not expected. Times from different app
 * instances are compared, so their clocks must agree (as JWT exp and iat
 * already need); a login that starts after a role change answered is never
 * affected.
 */
const CLAIMS_CHANGE_KEPT_MS = 60_000

export type Signer = (payload: Record<string, unknown>) => string

export interface SignInput {
  userId: string
  sessionId: string
  claimsVersion: number
  claims?: Record<string, unknown>
  extraClaims?: Record<string, unknown>
  absoluteDeadline: number
}

export interface SignedAccessToken {
  token: string
  jti: string
  expiresAt: number
  expiresIn: number
}

function deviceField (value: string | undefined, name: string): string {
  if (value === undefined || value === null) return ''
  if (typeof value !== 'string' || value.length > MAX_DEVICE_FIELD) throw new TypeError(`device.${name} must be a string of at most ${MAX_DEVICE_FIELD} characters`)
  return value
}

/**
 * The session services every plugin shares (`fastify.tokens`). It owns the
 * key schema, the scripts and the store guard; other plugins extend it rather
 * than talk to Redis on their own, so a request stays one round trip.
 */
export class TokenService {
  readonly options: Readonly<ResolvedTokenLifecycleOptions>
  readonly keys: Keyspace
  readonly redis: RedisClient
  readonly guard: StoreGuard
  readonly log: FastifyBaseLogger
  readonly extensions: SessionExtension[] = []
  /** Authorization schemes besides Bearer that extensions accept (lower case; SessionExtension.schemes). */
  readonly schemes = new Set<string>()
  /** The extensions' onVerify steps, kept apart so the hot path loops over just these. */
  readonly verifyExtensions: Array<NonNullable<SessionExtension['onVerify']>> = []
  /** The extensions' oneTime checks: such requests skip the JWT verifier's cache. */
  readonly oneTimeChecks: Array<NonNullable<SessionExtension['oneTime']>> = []
  readonly verifyScript: LaneScriptCall
  /** The hot path's own connection (`verifyConnection: 'dedicated'`), or null when it goes through the shared client. */
  readonly scriptLane: ScriptLane | null
  /** The opt-in local cache of session validity (`localCache` option), or null. */
  readonly localCache: LocalCache | null
  /** The connection of logins and rotations when the `durability` option is on (lib/durable-writes.ts), else null. */
  readonly durableWrites: DurableWrites | null
  private readonly sign: Signer
  private readonly openWrite: WriteCall
  private readonly endSessionScript: ScriptCall
  private readonly endUserScript: ScriptCall
  private readonly bumpClaimsScript: ScriptCall
  private readonly listScript: ScriptCall

  constructor (deps: {
    options: Readonly<ResolvedTokenLifecycleOptions>, keys: Keyspace, redis: RedisClient, guard: StoreGuard, sign: Signer,
    log: FastifyBaseLogger, lane: ScriptLane | null, durableWrites: DurableWrites | null, localCache: LocalCache | null
  }) {
    this.options = deps.options
    this.keys = deps.keys
    this.redis = deps.redis
    this.guard = deps.guard
    this.sign = deps.sign
    this.log = deps.log
    this.scriptLane = deps.lane
    this.durableWrites = deps.durableWrites
    this.localCache = deps.localCache
    this.verifyScript = deps.lane === null ? defineScript(this.redis, VERIFY) : deps.lane.bind(this.redis, VERIFY)
    this.openWrite = this.defineWrite(OPEN)
    this.endSessionScript = defineScript(this.redis, END_SESSION)
    this.endUserScript = defineScript(this.redis, END_USER_SESSIONS)
    this.bumpClaimsScript = defineScript(this.redis, BUMP_CLAIMS)
    this.listScript = defineScript(this.redis, LIST_SESSIONS)
  }

  /**
   * A write whose answer promises the client something a failover must not
   * lose (a login, a rotation): through the guard, and with `durability` on,
   * over its own connection followed by WAIT. Resolves the script's reply and
   * whether enough replicas acknowledged it; the caller decides what a
   * shortfall means.
   */
  defineWrite (script: ScriptDefinition): WriteCall {
    if (this.durableWrites !== null) return this.durableWrites.define(script)
    const call = defineScript(this.redis, script)
    return async (args) => ({ reply: await this.guard((writeBy) => call(...args(writeBy))), replicated: true })
  }

  /** Lets every extension add to tokens about to be issued (login, refresh). */
  async runIssueExtensions (ctx: IssueContext): Promise<void> {
    for (const ext of this.extensions) await ext.onIssue?.(ctx)
  }

  /** Adds an extension (used by the other plugins of this package). */
  extend (extension: SessionExtension): void {
    for (const scheme of extension.schemes ?? []) {
      if (typeof scheme !== 'string' || !/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(scheme)) throw new TypeError(`${extension.name}: scheme ${JSON.stringify(scheme)} is not an Authorization scheme name`)
      this.schemes.add(scheme.toLowerCase())
    }
    this.extensions.push(extension)
    if (extension.onVerify) this.verifyExtensions.push(extension.onVerify)
    if (extension.oneTime) this.oneTimeChecks.push(extension.oneTime)
  }

  /**
   * Signs an access token for a session. Its `exp` never passes the session's
   * absolute deadline, so no token outlives the session it belongs to.
   */
  signAccessToken (input: SignInput): SignedAccessToken {
    const now = this.options.clock()
    const iat = Math.floor(now / 1000)
    const exp = Math.floor(Math.min(now + this.options.accessTtlMs, input.absoluteDeadline) / 1000)
    const jti = randomId(12)
    const token = this.sign({
      ...input.claims,
      ...input.extraClaims,
      sub: input.userId,
      sid: input.sessionId,
      jti,
      cv: input.claimsVersion,
      iat,
      exp
    })
    return { token, jti, expiresAt: exp * 1000, expiresIn: Math.max(0, exp - iat) }
  }

  /** Login: opens a session under the SSO policy and issues its first tokens. */
  async openSession (input: OpenSessionInput): Promise<OpenSessionResult> {
    const userId = input.userId
    if (typeof userId !== 'string' || userId === '') throw new TypeError('openSession: userId must be a non-empty string')
    const claims = checkAppClaims(input.claims)
    // Checked here, with sso-session's rule: the open script must never see a policy it cannot apply.
    const policyOverride = input.policy === undefined || input.policy === null ? null : parsePolicy(input.policy, 'policy', 'openSession')
    const device = input.device ?? {}
    const deviceId = deviceField(device.id, 'id')
    const deviceType = deviceField(device.type, 'type') || 'unknown'
    const deviceName = deviceField(device.name, 'name')
    const now = this.options.clock()
    const sessionId = randomId(12)
    const ctx = newIssueContext({
      kind: 'login',
      request: input.request,
      userId,
      sessionId,
      now,
      absoluteDeadline: now + this.options.maxAgeMs,
      device: { id: deviceId || undefined, type: deviceType, name: deviceName || undefined },
      claims
    })
    await this.runIssueExtensions(ctx)
    if (policyOverride !== null) ctx.policy = policyOverride
    const fields: Array<string | number | Buffer> = []
    for (const [name, value] of Object.entries(ctx.fields)) fields.push(name, value)
    // A binding the login proved is stored with the session; ROTATE compares it at every refresh.
    for (const binding of ctx.bindings) if (binding.value !== '') fields.push(binding.field, binding.value)
    const policy = ctx.policy
    const written = await this.openWrite((writeBy) => OPEN.args({ sessions: this.keys.sessions(userId) }, {
      now,
      sid: sessionId,
      idle: this.options.idleMs,
      deadline: ctx.absoluteDeadline,
      retention: this.options.retentionMs,
      policy: policy.mode,
      max: policy.mode === 'max' ? policy.max : 0,
      deviceType: escapeRecordPart(deviceType),
      coreRecord: coreRecord(ctx.absoluteDeadline, now, 1),
      deviceRecord: deviceRecord(now, deviceType, deviceId, deviceName),
      maxTombstones: MAX_TOMBSTONES,
      claimsLoadedAt: input.claimsLoadedAt ?? now,
      writeBy
    }, ctx, fields))
    const [stale, ...reply] = written.reply as [number, ...string[]]
    const spent = onceSpentError(stale, ctx)
    if (spent !== undefined) throw spent
    if (!written.replicated) {
      // The session may not survive a failover: no tokens for it. Ended
      // first (whatever the outcome), so that a 503'd login leaves no session
      // behind that nobody holds tokens for; the client logs in again.
      await Promise.allSettled([this.endSession(userId, sessionId)])
      throw new StoreUnavailableError()
    }
    const replaced: ReplacedSession[] = []
    for (let i = 0; i < reply.length; i += 4) {
      replaced.push({
        sessionId: reply[i],
        deviceId: unescapeRecordPart(reply[i + 1]) || null,
        deviceType: unescapeRecordPart(reply[i + 2]),
        deviceName: reply[i + 3] || null
      })
    }
    // Claims that may predate a role change: version 0, which the session
    // (at 1) answers AUTH_TOKEN_STALE to; a refresh then reads them afresh.
    const access = this.signAccessToken({
      userId, sessionId, claimsVersion: stale === 1 ? 0 : 1, claims, extraClaims: ctx.tokenClaims, absoluteDeadline: ctx.absoluteDeadline
    })
    const result: OpenSessionResult = { sessionId, tokens: tokenPair(access, ctx), replaced }
    for (const ext of this.extensions) await ext.afterOpen?.(ctx, result)
    return result
  }

  /** Ends one live session of the user. Resolves false when it was not theirs or not live. */
  async endSession (userId: string, sessionId: string): Promise<boolean> {
    // Not an id this package issues (it may come from a URL): nothing to end.
    if (typeof sessionId !== 'string' || !SESSION_ID.test(sessionId)) return false
    const ended = await this.guard(() => this.endSessionScript(...END_SESSION.args({ sessions: this.keys.sessions(userId) }, { sid: sessionId, ...this.lifetime() })))
    return ended === 1
  }

  /** Ends every live session of the user (logout-all, password change, admin). */
  async endAllSessions (userId: string): Promise<number> {
    return await this.guard(() => this.endUserScript(...END_USER_SESSIONS.args({ sessions: this.keys.sessions(userId) }, { deviceId: '', ...this.lifetime() }))) as number
  }

  /** Ends every live session the user opened from one device (a lost phone). */
  async endDeviceSessions (userId: string, deviceId: string): Promise<number> {
    if (typeof deviceId !== 'string' || deviceId === '') throw new TypeError('endDeviceSessions: deviceId must be a non-empty string')
    return await this.guard(() => this.endUserScript(...END_USER_SESSIONS.args({ sessions: this.keys.sessions(userId) }, { deviceId: escapeRecordPart(deviceId), ...this.lifetime() }))) as number
  }

  /** A role change: the user's live access tokens answer AUTH_TOKEN_STALE until refreshed. */
  async invalidateClaims (userId: string): Promise<number> {
    return await this.guard(() => this.bumpClaimsScript(...BUMP_CLAIMS.args({ sessions: this.keys.sessions(userId) }, { ...this.lifetime(), keptFor: CLAIMS_CHANGE_KEPT_MS }))) as number
  }

  /** What the walking scripts need to tell live records from dead ones: now, idle timeout, retention. */
  private lifetime (): { now: number, idle: number, retention: number } {
    return { now: this.options.clock(), idle: this.options.idleMs, retention: this.options.retentionMs }
  }

  /** The user's live sessions, oldest login first. */
  async listSessions (userId: string): Promise<SessionInfo[]> {
    const flat = await this.guard(() => this.listScript(...LIST_SESSIONS.args({ sessions: this.keys.sessions(userId) }, this.lifetime()))) as Array<string | number>
    const sessions: SessionInfo[] = []
    for (let i = 0; i < flat.length; i += 6) {
      sessions.push({
        sessionId: flat[i] as string,
        deviceId: unescapeRecordPart(flat[i + 1] as string) || null,
        // Always written at open ('unknown' when the login named none).
        deviceType: unescapeRecordPart(flat[i + 2] as string),
        deviceName: (flat[i + 3] as string) || null,
        createdAt: new Date(flat[i + 4] as number),
        lastSeenAt: new Date(flat[i + 5] as number)
      })
    }
    return sessions
  }

  /**
   * Whether the session store answers, for a health check: a PING through the
   * store guard, so it resolves within `storeTimeout` or rejects with
   * AUTH_STORE_UNAVAILABLE (503), exactly as a login or a verify would.
   */
  async ping (): Promise<void> {
    await this.guard(() => this.redis.ping())
  }
}
