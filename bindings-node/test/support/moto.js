'use strict'

// A moto server (the AWS emulator from the repository's .venv) started on
// a free loopback port for one test file, and helpers that seed it through
// the services' JSON APIs. moto does not check signatures by default, so
// the seeding requests carry only a fixed Authorization header naming the
// region.

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const path = require('node:path')

const REGION = 'us-east-1'

// How long moto may take to start responding. It is up in about half a
// second on an idle machine, and a loaded 2-core CI machine needs far more.
const STARTUP_TIMEOUT_MS = 60_000

const REPOSITORY = path.resolve(__dirname, '..', '..', '..')

function motoServerPath() {
  const configured = process.env.KEYSTEAD_MOTO_SERVER
  if (configured) return configured
  const fromVenv = path.join(REPOSITORY, '.venv', 'bin', 'moto_server')
  if (!fs.existsSync(fromVenv)) {
    throw new Error(`moto_server not found at ${fromVenv}; run scripts/setup.sh first or set KEYSTEAD_MOTO_SERVER`)
  }
  return fromVenv
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

async function waitUntilAnswering(endpoint, child, output) {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`moto_server exited with code ${child.exitCode}:\n${output.join('')}`)
    }
    try {
      const response = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(2000) })
      await response.arrayBuffer()
      return
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  throw new Error(`moto_server did not answer at ${endpoint} within ${STARTUP_TIMEOUT_MS} ms:\n${output.join('')}`)
}

/** Starts moto and resolves to a handle with `endpoint`, seeding helpers and `stop()`. */
async function startMoto() {
  const port = await freePort()
  const endpoint = `http://127.0.0.1:${port}`
  const child = spawn(motoServerPath(), ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const output = []
  child.stdout.on('data', (chunk) => output.push(String(chunk)))
  child.stderr.on('data', (chunk) => output.push(String(chunk)))
  // A test file that crashes must not leave moto running.
  const killOnExit = () => child.kill('SIGKILL')
  process.once('exit', killOnExit)

  try {
    await waitUntilAnswering(endpoint, child, output)
  } catch (error) {
    child.kill('SIGKILL')
    throw error
  }

  return {
    endpoint,
    region: REGION,

    /** Calls a Secrets Manager operation, for example `CreateSecret`. */
    secretsManager(operation, body) {
      return callJson(endpoint, 'secretsmanager', `secretsmanager.${operation}`, body)
    },

    /** Calls an SSM operation, for example `PutParameter`. */
    ssm(operation, body) {
      return callJson(endpoint, 'ssm', `AmazonSSM.${operation}`, body)
    },

    /** Environment variables that point a keystead client at this server. */
    environment() {
      return {
        AWS_ENDPOINT_URL: endpoint,
        AWS_REGION: REGION,
        AWS_ACCESS_KEY_ID: 'AKIDNODETEST',
        AWS_SECRET_ACCESS_KEY: 'node-test-secret-key',
        AWS_EC2_METADATA_DISABLED: 'true',
        // Nothing from the developer's own AWS setup may take part.
        AWS_SESSION_TOKEN: undefined,
        AWS_PROFILE: undefined,
        AWS_CONFIG_FILE: '/dev/null',
        AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      }
    },

    async stop() {
      process.removeListener('exit', killOnExit)
      if (child.exitCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    },
  }
}

async function callJson(endpoint, service, target, body) {
  const response = await fetch(`${endpoint}/`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-amz-json-1.1',
      'X-Amz-Target': target,
      // moto reads the region from the credential scope and ignores the
      // signature.
      Authorization: `AWS4-HMAC-SHA256 Credential=AKIDNODETEST/20240101/${REGION}/${service}/aws4_request, SignedHeaders=host, Signature=0`,
    },
    body: JSON.stringify(body),
  })
  const text = await response.text()
  if (!response.ok) {
    throw new Error(`${target} failed with HTTP ${response.status}: ${text}`)
  }
  return text ? JSON.parse(text) : {}
}

/**
 * Applies `variables` to process.env (an `undefined` value removes the
 * variable) and returns a function that restores the previous values.
 */
function setEnvironment(variables) {
  const previous = {}
  for (const [name, value] of Object.entries(variables)) {
    previous[name] = process.env[name]
    if (value === undefined) delete process.env[name]
    else process.env[name] = value
  }
  return () => {
    for (const [name, value] of Object.entries(previous)) {
      if (value === undefined) delete process.env[name]
      else process.env[name] = value
    }
  }
}

module.exports = { startMoto, setEnvironment, REGION }
