'use strict'

// Public entry point. The native classes come from the generated loader in
// binding.js; this file adds what needs JavaScript itself: the Error
// subclasses, `util.inspect` redaction, and `Symbol.dispose` support.

const { inspect } = require('node:util')

const binding = require('./binding.js')

/** The base class of every error keystead throws or rejects with. */
class KeysteadError extends Error {
  constructor(message, { code, errorClass, reference, transient }) {
    super(message)
    this.name = new.target.name
    this.code = code
    this.errorClass = errorClass
    this.reference = reference
    this.transient = transient
  }
}

// One subclass per core error class, in the order core lists them. The
// static `code` is derived from the class name by the same rule the native
// module uses for each error's `code`.
const ERROR_CLASSES = [
  ['invalid-reference', 'InvalidReferenceError'],
  ['config', 'ConfigError'],
  ['not-found', 'NotFoundError'],
  ['access-denied', 'AccessDeniedError'],
  ['secret-deleted', 'SecretDeletedError'],
  ['decryption-failed', 'DecryptionFailedError'],
  ['unavailable', 'UnavailableError'],
  ['not-text', 'NotTextError'],
  ['field-not-found', 'FieldNotFoundError'],
  ['invalid-json', 'InvalidJsonError'],
  ['closed', 'ClosedError'],
  ['internal', 'InternalError'],
]

function codeOf(errorClass) {
  return `ERR_KEYSTEAD_${errorClass.toUpperCase().replaceAll('-', '_')}`
}

const errors = { KeysteadError }
const subclassByErrorClass = new Map()
for (const [errorClass, name] of ERROR_CLASSES) {
  // A computed property name gives each subclass its own `name` without
  // twelve identical declarations.
  const subclass = { [name]: class extends KeysteadError {} }[name]
  Object.defineProperty(subclass, 'code', { value: codeOf(errorClass), enumerable: true })
  Object.defineProperty(subclass, 'errorClass', { value: errorClass, enumerable: true })
  errors[name] = subclass
  subclassByErrorClass.set(errorClass, subclass)
}

function createError(errorClass, code, message, reference, transient) {
  // A class added to core before this file learns about it still gets
  // its stable code, as a plain KeysteadError.
  const ErrorType = subclassByErrorClass.get(errorClass) ?? KeysteadError
  const error = new ErrorType(message, { code, errorClass, reference, transient })
  // The stack starts at the caller's frame, not inside this factory.
  Error.captureStackTrace(error, createError)
  return error
}

binding.registerErrorFactory(createError)

const { Client, RotationEvent, Secret, Subscription } = binding

// `getCached` runs once per request in most applications. Each client
// keeps a Map from reference to a native reader for that reference (see
// `cachedReader`), so that a warm read costs one Map lookup and one
// Node-API call without arguments. Readers are created only for
// references that have a cached value, and the Map is emptied when it
// reaches MAX_READERS, which only an application reading ever-new
// references does.
const MAX_READERS = 4096
const readersKey = Symbol('keystead.readers')

function readersOf(client) {
  const readers = new Map()
  Object.defineProperty(client, readersKey, { value: readers })
  return readers
}

function argumentTypeError(name, expected, value) {
  const received = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value
  const error = new TypeError(`The "${name}" argument must be ${expected}; received ${received}`)
  error.code = 'ERR_INVALID_ARG_TYPE'
  return error
}

function checkString(name, value) {
  if (typeof value !== 'string') throw argumentTypeError(name, 'a string', value)
}

function checkReference(reference) {
  checkString('reference', reference)
  // A lone surrogate cannot be encoded as UTF-8; converting it would read
  // a different secret (the one named with U+FFFD), so it is refused the
  // way the other languages refuse invalid UTF-8.
  if (!reference.isWellFormed()) {
    throw createError(
      'invalid-reference',
      codeOf('invalid-reference'),
      'the reference is not valid UTF-8 (it contains a lone surrogate)',
      undefined,
      false,
    )
  }
}

// Checks arguments before they reach the native methods, whose own
// conversion errors are plain Errors with napi-specific codes.
function checkArguments(prototype, name, check, { promise }) {
  const native = prototype[name]
  Object.defineProperty(prototype, name, {
    configurable: true,
    writable: true,
    value: {
      [name](...args) {
        try {
          check(...args)
        } catch (error) {
          if (promise) return Promise.reject(error)
          throw error
        }
        return native.apply(this, args)
      },
    }[name],
  })
}

function readWithNewReader(client, readers, reference) {
  checkReference(reference)
  const read = client.cachedReader(reference)
  if (read === undefined) return undefined
  if (readers.size >= MAX_READERS) readers.clear()
  readers.set(reference, read)
  return read()
}

Object.defineProperty(Client.prototype, 'getCached', {
  configurable: true,
  writable: true,
  value: function getCached(reference) {
    const readers = this[readersKey] ?? readersOf(this)
    const read = readers.get(reference)
    return read === undefined ? readWithNewReader(this, readers, reference) : read()
  },
})

// A cached value resolves at once instead of taking a trip through the
// runtime. Anything else goes to the native `get`, which reads through core.
const nativeGet = Client.prototype.get
Object.defineProperty(Client.prototype, 'get', {
  configurable: true,
  writable: true,
  value: function get(reference) {
    try {
      const cached = this.getCached(reference)
      return cached === undefined ? nativeGet.call(this, reference) : Promise.resolve(cached)
    } catch (error) {
      // An async method reports even a wrong argument as a rejection.
      return Promise.reject(error)
    }
  },
})

checkArguments(Client.prototype, 'refresh', checkReference, { promise: true })
checkArguments(Client.prototype, 'invalidate', checkReference, { promise: false })
checkArguments(Client.prototype, 'cachedReader', checkReference, { promise: false })
checkArguments(
  Client.prototype,
  'subscribe',
  (reference, listener) => {
    checkReference(reference)
    if (typeof listener !== 'function') throw argumentTypeError('listener', 'a function', listener)
  },
  { promise: false },
)
checkArguments(
  Client.prototype,
  'prefetch',
  (references) => {
    if (!Array.isArray(references)) throw argumentTypeError('references', 'an array of strings', references)
    references.forEach((reference) => checkReference(reference))
  },
  { promise: true },
)
checkArguments(Secret.prototype, 'field', (path) => checkString('path', path), { promise: false })
checkArguments(
  Client.prototype,
  'close',
  (options) => {
    const timeout = options?.timeout
    if (timeout === undefined || timeout === null) return
    if (typeof timeout !== 'number') throw argumentTypeError('options.timeout', 'a number of milliseconds', timeout)
    if (!Number.isFinite(timeout) || timeout < 0) {
      const error = new RangeError(`The "options.timeout" argument must be a finite number >= 0; received ${timeout}`)
      error.code = 'ERR_OUT_OF_RANGE'
      throw error
    }
  },
  { promise: true },
)

// `util.inspect` (and so `console.log`) shows the metadata that `toJSON`
// returns, in which the value is always "[REDACTED]".
Object.defineProperty(Secret.prototype, inspect.custom, {
  value: function inspectSecret(depth, options, inspectValue) {
    if (depth < 0) return options.stylize('[Secret]', 'special')
    return `Secret ${inspectValue(this.toJSON(), { ...options, depth: options.depth === null ? null : options.depth - 1 })}`
  },
})

Object.defineProperty(RotationEvent.prototype, inspect.custom, {
  value: function inspectRotationEvent(depth, options, inspectValue) {
    if (depth < 0) return options.stylize('[RotationEvent]', 'special')
    const shown = { reference: this.reference, secret: this.secret, error: this.error }
    return `RotationEvent ${inspectValue(shown, { ...options, depth: options.depth === null ? null : options.depth - 1 })}`
  },
})

Object.defineProperty(RotationEvent.prototype, 'toJSON', {
  value: function rotationEventToJSON() {
    const error = this.error
    return {
      reference: this.reference,
      secret: this.secret?.toJSON(),
      error: error && { name: error.name, code: error.code, message: error.message },
    }
  },
})

// `using subscription = client.subscribe(...)` and
// `await using client = new Client()` (TypeScript 5.2+, Node with
// explicit resource management).
if (typeof Symbol.dispose === 'symbol') {
  Object.defineProperty(Subscription.prototype, Symbol.dispose, {
    value: function dispose() {
      this.unsubscribe()
    },
  })
}
if (typeof Symbol.asyncDispose === 'symbol') {
  Object.defineProperty(Client.prototype, Symbol.asyncDispose, {
    value: function asyncDispose() {
      return this.close()
    },
  })
}

module.exports = {
  Client,
  RotationEvent,
  Secret,
  Subscription,
  ...errors,
}
