'use strict'

// The binding in worker threads. Every worker loads its own copy of the
// native module and its own error classes, and a client works there as on
// the main thread. A worker that ends with a client still open neither
// hangs nor takes the process down.

const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { after, test } = require('node:test')
const { Worker } = require('node:worker_threads')

const { Client, NotFoundError } = require('./support/keystead')
const { setEnvironment } = require('./support/moto')

const PACKAGE = path.resolve(__dirname, '..')
const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'keystead-node-worker-'))
after(() => fs.rmSync(folder, { recursive: true, force: true }))

/** Runs `source` in a worker and resolves to the messages it posted and its exit code. */
function runWorker(source, workerData) {
  return new Promise((resolve, reject) => {
    const worker = new Worker(source, { eval: true, workerData: { package: PACKAGE, ...workerData } })
    const messages = []
    worker.on('message', (message) => messages.push(message))
    worker.on('error', reject)
    worker.on('exit', (code) => resolve({ messages, code }))
  })
}

const READ_IN_WORKER = `
  const { parentPort, workerData, threadId } = require('node:worker_threads')
  const keystead = require(workerData.package)
  const client = new keystead.Client({})
  ;(async () => {
    const secret = await client.get(workerData.reference)
    const cached = client.getCached(workerData.reference)
    let errorReport
    try {
      await client.get('env://KEYSTEAD_NODE_WORKER_NEVER_SET')
    } catch (error) {
      errorReport = {
        isNotFound: error instanceof keystead.NotFoundError,
        code: error.code,
        name: error.name,
      }
    }
    parentPort.postMessage({
      threadId,
      value: secret.reveal(),
      cachedIsSame: cached === client.getCached(workerData.reference),
      errorReport,
      hits: client.metrics().hits,
    })
    if (workerData.close) await client.close()
  })()
`

test('client reads and throws its classes in a worker', async () => {
  const restore = setEnvironment({ KEYSTEAD_NODE_WORKER: 'from-worker' })
  try {
    const { messages, code } = await runWorker(READ_IN_WORKER, { reference: 'env://KEYSTEAD_NODE_WORKER', close: true })
    assert.equal(code, 0)
    assert.equal(messages.length, 1)
    const [report] = messages
    assert.notEqual(report.threadId, 0)
    assert.equal(report.value, 'from-worker')
    assert.equal(report.cachedIsSame, true)
    assert.deepEqual(report.errorReport, { isNotFound: true, code: 'ERR_KEYSTEAD_NOT_FOUND', name: 'NotFoundError' })
    assert.equal(report.hits, 2)
  } finally {
    restore()
  }
})

test('workers and main thread read at once', async () => {
  const restore = setEnvironment({ KEYSTEAD_NODE_WORKER_SHARED: 'shared' })
  const client = new Client({})
  try {
    const workers = Array.from({ length: 3 }, () =>
      runWorker(READ_IN_WORKER, { reference: 'env://KEYSTEAD_NODE_WORKER_SHARED', close: true }),
    )
    const onMain = await client.get('env://KEYSTEAD_NODE_WORKER_SHARED')
    const results = await Promise.all(workers)
    assert.equal(onMain.reveal(), 'shared')
    assert.deepEqual(results.map((result) => result.code), [0, 0, 0])
    assert.deepEqual(results.map((result) => result.messages[0].value), ['shared', 'shared', 'shared'])
    await assert.rejects(client.get('env://KEYSTEAD_NODE_WORKER_NEVER_SET'), NotFoundError)
  } finally {
    await client.close()
    restore()
  }
})

test('worker with an open client exits by itself', async () => {
  const restore = setEnvironment({ KEYSTEAD_NODE_WORKER_OPEN: 'open' })
  try {
    const started = Date.now()
    const { messages, code } = await runWorker(READ_IN_WORKER, { reference: 'env://KEYSTEAD_NODE_WORKER_OPEN', close: false })
    assert.equal(code, 0)
    assert.equal(messages[0].value, 'open')
    assert.ok(Date.now() - started < 10_000)
  } finally {
    restore()
  }
})

test('terminating a worker with a live subscription is safe', async () => {
  const file = path.join(folder, 'terminated.txt')
  fs.writeFileSync(file, 't1')
  const source = `
    const { parentPort, workerData } = require('node:worker_threads')
    const keystead = require(workerData.package)
    const client = new keystead.Client({ file: { ttl: '200ms' } })
    client.subscribe(workerData.reference, (event) => parentPort.postMessage(event.secret.reveal()))
    client.get(workerData.reference).then(() => parentPort.postMessage('ready'))
    // Keep the worker busy until it is terminated.
    setInterval(() => {}, 1000)
  `
  const worker = new Worker(source, { eval: true, workerData: { package: PACKAGE, reference: `file://${file}` } })
  const messages = []
  worker.on('message', (message) => messages.push(message))
  await new Promise((resolve, reject) => {
    worker.on('error', reject)
    worker.on('message', (message) => message === 'ready' && resolve())
  })
  fs.writeFileSync(file, 't2')
  const deadline = Date.now() + 5000
  while (!messages.includes('t2') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  assert.ok(messages.includes('t2'), `messages: ${messages}`)

  // Rotations keep arriving at the runtime while the worker goes away.
  fs.writeFileSync(file, 't3')
  const code = await worker.terminate()
  assert.equal(code, 1)
  fs.writeFileSync(file, 't4')
  await new Promise((resolve) => setTimeout(resolve, 600))

  // The main thread is unaffected.
  const client = new Client({})
  try {
    assert.equal((await client.get(`file://${file}`)).reveal(), 't4')
  } finally {
    await client.close()
  }
})
