// Preloaded into kinesalite by the test harness (node --require). kinesalite
// throws an uncaught "aborted" error when a client cancels a request while
// its body is being read, which would end the process and fail every later
// test of the run. A cancelled request is a normal client action, so the
// error is logged and the server keeps serving.
'use strict'
process.on('uncaughtException', function (err) {
  console.error('kinesalite: uncaught exception, still serving: ' + (err && err.stack ? err.stack : err))
})
