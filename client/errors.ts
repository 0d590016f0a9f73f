/** The client's own error, and the server's error code read from an answer. */

/** A login the server refused, a URL the client will not send a token to, or an answer the client cannot use. */
export class AuthClientError extends Error {
  readonly status: number
  readonly code: string | null
  constructor (message: string, status: number, code: string | null) {
    super(message)
    this.name = 'AuthClientError'
    this.status = status
    this.code = code
  }
}

/** The contract's `code` of an error answer, or null when the body has none (a proxy's page, say). The body stays readable. */
export async function errorCode (response: Response): Promise<string | null> {
  try {
    const body = await response.clone().json() as { code?: unknown } | null
    return typeof body?.code === 'string' ? body.code : null
  } catch {
    return null
  }
}

/** An AuthClientError for a refused request: `<what> failed (401 AUTH_...)`. */
export async function refusal (what: string, response: Response): Promise<AuthClientError> {
  const code = await errorCode(response)
  return new AuthClientError(`${what} failed (${response.status}${code ? ` ${code}` : ''})`, response.status, code)
}
