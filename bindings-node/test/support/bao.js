'use strict'

// An OpenBao dev server (`bao` from the repository's .venv) started on a
// free loopback port for one test file, in memory, with a fixed root
// token, and a helper that writes KV v2 secrets through its HTTP API.

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')

const ROOT_TOKEN = 'keystead-node-test-root'

// How long the dev server may take to pass its health check. It is healthy
// in about 0.2 s on an idle machine; a loaded 2-core CI machine needs more.
const STARTUP_TIMEOUT_MS = 30_000

const REPOSITORY = path.resolve(__dirname, '..', '..', '..')

function baoPath() {
  const configured = process.env.KEYSTEAD_BAO
  if (configured) return configured
  const fromVenv = path.join(REPOSITORY, '.venv', 'bin', 'bao')
  if (!fs.existsSync(fromVenv)) {
    throw new Error(`bao not found at ${fromVenv}; run scripts/setup.sh first or set KEYSTEAD_BAO`)
  }
  return fromVenv
}

function isFree(port) {
  return new Promise((resolve) => {
    const server = net.createServer()
    server.unref()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/** Finds a free port whose next port is free too: the dev server binds both. */
async function freePortPair() {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise((resolve, reject) => {
      const server = net.createServer()
      server.unref()
      server.on('error', reject)
      server.listen(0, '127.0.0.1', () => {
        const { port: found } = server.address()
        server.close(() => resolve(found))
      })
    })
    if (port < 65535 && (await isFree(port + 1))) return port
  }
  throw new Error('no pair of adjacent free loopback ports found')
}

async function waitUntilHealthy(address, child, output) {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`bao exited with code ${child.exitCode}:\n${output.join('')}`)
    }
    try {
      const response = await fetch(`${address}/v1/sys/health`, { signal: AbortSignal.timeout(2000) })
      await response.arrayBuffer()
      if (response.status === 200) return
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`bao did not become healthy at ${address} within ${STARTUP_TIMEOUT_MS} ms:\n${output.join('')}`)
}

/** Starts OpenBao and resolves to a handle with `address`, `token`, `writeKv` and `stop()`. */
async function startBao() {
  const port = await freePortPair()
  const address = `http://127.0.0.1:${port}`
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'keystead-node-bao-'))
  const environment = { ...process.env, HOME: home }
  delete environment.VAULT_ADDR
  delete environment.BAO_ADDR
  const child = spawn(
    baoPath(),
    ['server', '-dev', '-dev-no-store-token', `-dev-root-token-id=${ROOT_TOKEN}`, `-dev-listen-address=127.0.0.1:${port}`],
    { stdio: ['ignore', 'pipe', 'pipe'], env: environment },
  )
  const output = []
  child.stdout.on('data', (chunk) => output.push(String(chunk)))
  child.stderr.on('data', (chunk) => output.push(String(chunk)))
  const killOnExit = () => child.kill('SIGKILL')
  process.once('exit', killOnExit)

  try {
    await waitUntilHealthy(address, child, output)
  } catch (error) {
    child.kill('SIGKILL')
    throw error
  }

  async function call(method, apiPath, body) {
    const response = await fetch(`${address}/v1/${apiPath}`, {
      method,
      headers: { 'X-Vault-Token': ROOT_TOKEN, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const text = await response.text()
    if (!response.ok) throw new Error(`${method} ${apiPath} failed with HTTP ${response.status}: ${text}`)
    return text ? JSON.parse(text) : {}
  }

  return {
    address,
    token: ROOT_TOKEN,

    /** Writes `data` as a new version of a KV v2 secret. */
    writeKv(mount, secretPath, data) {
      return call('POST', `${mount}/data/${secretPath}`, { data })
    },

    /** Soft-deletes the latest version of a KV v2 secret. */
    deleteLatestKv(mount, secretPath) {
      return call('DELETE', `${mount}/data/${secretPath}`)
    },

    async stop() {
      process.removeListener('exit', killOnExit)
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
        await exited
        clearTimeout(timer)
      }
      fs.rmSync(home, { recursive: true, force: true })
    },
  }
}

module.exports = { startBao }
