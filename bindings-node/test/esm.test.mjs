// The ES module entry point exports the same objects as the CommonJS one,
// so that `instanceof` works however a program loads keystead.

import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { test } from 'node:test'

import * as esm from 'keystead'
import keysteadDefault, { Client, KeysteadError, NotFoundError, Secret } from 'keystead'

const require = createRequire(import.meta.url)
const commonJs = require('keystead')

test('esm exports match commonjs exports', () => {
  assert.equal(Client, commonJs.Client)
  assert.equal(Secret, commonJs.Secret)
  assert.equal(NotFoundError, commonJs.NotFoundError)
  assert.equal(keysteadDefault, commonJs)
  const namedExports = Object.keys(esm).filter((name) => name !== 'default').sort()
  assert.deepEqual(namedExports, Object.keys(commonJs).sort())
  for (const name of namedExports) assert.equal(esm[name], commonJs[name], name)
})

test('esm client rejects with commonjs error classes', async () => {
  const client = new Client({})
  try {
    await assert.rejects(client.get('env://KEYSTEAD_NODE_ESM_NEVER_SET'), (error) => {
      assert.ok(error instanceof NotFoundError)
      assert.ok(error instanceof commonJs.KeysteadError)
      assert.ok(error instanceof KeysteadError)
      return true
    })
  } finally {
    await client.close()
  }
})
