import type { IssueContext } from './types.js'

/** What the issuer knows before extensions run. Login-only parts default to empty (a refresh names no device, no claims, no policy). */
export type IssueInput = Pick<IssueContext, 'kind' | 'request' | 'userId' | 'sessionId' | 'now' | 'absoluteDeadline'> &
  Partial<Pick<IssueContext, 'device' | 'claims' | 'policy'>>

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
    policy: input.policy ?? { mode: 'off' },
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
