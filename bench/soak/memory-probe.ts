/**
 * Preloaded into the example server by the soak (`node --import`), so the
 * example itself stays as users run it. Answers the soak's 'soak:memory'
 * over IPC with the process's memory after a full collection (the server
 * runs with --expose-gc): what is still referenced, not garbage not yet
 * collected. Ends the server when the soak is gone (the IPC channel closes),
 * so that a killed soak leaves no server behind.
 */
process.on('message', (message) => {
  if (message !== 'soak:memory') return
  globalThis.gc?.()
  const { rss, heapUsed } = process.memoryUsage()
  process.send!({ rss, heapUsed })
})
process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'))
// The server keeps the process alive, not this channel.
process.channel?.unref()
