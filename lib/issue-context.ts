import type { IssueContext } from './types.js'

/**
 * What the issuer knows before extensions run. The login-only parts default
 * to empty (a refresh names no device and carries no claims yet); the policy
 * starts 'off', for an extension (sso-session) or the login itself to set.
 */
export type IssueInput = Pick<IssueContext, 'kind' | 'request' | 'userId' | 'sessionId' | 'now' | 'absoluteDeadline'> &
  Partial<Pick<IssueContext, 'device' | 'claims'>>

/** A fresh issue context: no extra fields, bindings, claims, answer members or one-time keys yet; token type Bearer. */
export function newIssueContext (input: IssueInput): IssueContext {
  return {
    kind: input.kind,
    request: input.request,
    userId: input.userId,
    sessionId: input.sessionId,
    now: input.now,
    absoluteDeadline: input.absoluteDeadline,
    device: input.device ?? {},
    claims: input.claims ?? {},
    policy: { mode: 'off' },
    fields: {},
    bindings: [],
    tokenClaims: {},
    response: {},
    tokenType: 'Bearer',
    onceKeys: [],
    onceTtls: [],
    onceErrors: []
  }
}
