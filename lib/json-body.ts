import type { FastifyInstance } from 'fastify'

/**
 * Routes such as logout take no body, and many HTTP clients send
 * `Content-Type: application/json` on every POST anyway. Fastify's default
 * parser refuses such an empty body (400 FST_ERR_CTP_EMPTY_JSON_BODY); here an
 * empty JSON body is simply no body, and routes that need one still fail their
 * schema with FST_ERR_VALIDATION. Anything else goes to Fastify's own parser,
 * prototype-poisoning protection included. Applies to the calling context.
 */
export function acceptEmptyJsonBody (fastify: FastifyInstance): void {
  const parseJson = fastify.getDefaultJsonParser('error', 'error')
  fastify.removeContentTypeParser('application/json')
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '') return done(null, undefined)
    parseJson(request, body as string, done)
  })
}
