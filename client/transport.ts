/**
 * The HTTP side: every request of the client goes through here, and a token
 * goes only to the API's origin.
 */
import { AuthClientError } from './errors.js'

const ABSOLUTE = /^[a-z][a-z\d+.-]*:/i
/** Stands for the page's origin where there is no page (Node with `baseUrl: ''`): any other origin is foreign. */
const SAME_ORIGIN = 'http://same-origin.invalid/'

export interface Transport {
  /** The URL to request for `path`; throws an AuthClientError (status 0) for another origin's. */
  urlOf: (path: string) => string
  /** Sends with the Bearer token when there is one. */
  send: (url: string, init: RequestInit | undefined, accessToken: string | null) => Promise<Response>
  /** A POST of a JSON body to one of the API's paths, without a token (login, refresh). */
  postJson: (path: string, body: unknown) => Promise<Response>
}

/** `fetchOption` undefined: `globalThis.fetch`, looked up at each call (an app may wrap it later). */
export function createTransport (baseUrl: string, fetchOption: typeof fetch | undefined): Transport {
  const page = globalThis as { document?: { baseURI?: string }, location?: { href?: string } }
  // Relative URLs resolve against the page's base, as fetch resolves them.
  const pageBase = baseUrl !== '' ? baseUrl : page.document?.baseURI ?? page.location?.href
  const apiOrigin = new URL(baseUrl !== '' ? baseUrl : page.location?.href ?? SAME_ORIGIN).origin

  const doFetch = (url: string, init: RequestInit): Promise<Response> => {
    // Unbound on purpose: a browser's fetch refuses a `this` other than the window.
    const f = fetchOption ?? globalThis.fetch
    return f(url, init)
  }
  const joined = (path: string) => ABSOLUTE.test(path) ? path : `${baseUrl}${path.startsWith('/') ? '' : '/'}${path}`

  /**
   * The URL is resolved as fetch will resolve it (WHATWG parsing: `\\` counts
   * as `/`, tabs and newlines are dropped, so `/\evil.example` or `/\t/evil`
   * name another host) and its origin compared; prefix checks on the string
   * cannot see that.
   */
  const urlOf = (path: string): string => {
    const url = joined(path)
    const resolved = new URL(url, pageBase ?? SAME_ORIGIN)
    if (resolved.origin !== apiOrigin) throw new AuthClientError(`fetch: ${resolved.origin} is not the API's origin; nothing was sent`, 0, null)
    // Without a page (Node, baseUrl ''), the placeholder base must not leak into the request.
    return pageBase === undefined && baseUrl === '' ? url : resolved.href
  }

  return {
    urlOf,
    send (url, init, accessToken) {
      const headers = new Headers(init?.headers)
      if (accessToken !== null) headers.set('authorization', `Bearer ${accessToken}`)
      return doFetch(url, { ...init, headers })
    },
    postJson (path, body) {
      return doFetch(urlOf(path), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    }
  }
}
