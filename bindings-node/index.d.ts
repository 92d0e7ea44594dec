// Public types of the keystead package. The native classes and their
// documentation come from binding.d.ts, which napi-rs generates from the
// Rust source; this file adds the error classes that index.js defines.

export { Client, RotationEvent, Secret, Subscription } from './binding'
export type { CloseOptions, Metrics, PrefetchOutcome, SecretJson } from './binding'

/** The stable name of an error class, shared with every keystead binding. */
export type ErrorClass =
  | 'invalid-reference'
  | 'config'
  | 'not-found'
  | 'access-denied'
  | 'secret-deleted'
  | 'decryption-failed'
  | 'unavailable'
  | 'not-text'
  | 'field-not-found'
  | 'invalid-json'
  | 'closed'
  | 'internal'

/**
 * The base class of every error keystead throws or rejects with. Messages
 * name the reference and the problem, never a secret value.
 */
export declare class KeysteadError extends Error {
  /** Stable code, for example `ERR_KEYSTEAD_NOT_FOUND`. */
  readonly code: string
  /** Stable class name, for example `not-found`. */
  readonly errorClass: ErrorClass
  /** The reference the error concerns, when there is one. */
  readonly reference: string | undefined
  /** Whether retrying later may succeed without anything changing at the backend. */
  readonly transient: boolean
}

/** The reference does not follow `SCHEME://PATH[?QUERY][#FIELD]`, names an unknown scheme, or has a query key its provider does not accept. */
export declare class InvalidReferenceError extends KeysteadError {
  static readonly code: 'ERR_KEYSTEAD_INVALID_REFERENCE'
  static readonly errorClass: 'invalid-reference'
  readonly code: 'ERR_KEYSTEAD_INVALID_REFERENCE'
  readonly errorClass: 'invalid-reference'
}

/** The configuration file or a configuration value is invalid. */
export declare class ConfigError extends KeysteadError {
  static readonly code: 'ERR_KEYSTEAD_CONFIG'
  static readonly errorClass: 'config'
  readonly code: 'ERR_KEYSTEAD_CONFIG'
  readonly errorClass: 'config'
}

/** The backend has no secret, version or stage by that name. */
export declare class NotFoundError extends KeysteadError {
  static readonly code: 'ERR_KEYSTEAD_NOT_FOUND'
  static readonly errorClass: 'not-found'
  readonly code: 'ERR_KEYSTEAD_NOT_FOUND'
  readonly errorClass: 'not-found'
}

/** The backend rejected the caller's credentials or permissions. */
export declare class AccessDeniedError extends KeysteadError {
  static readonly code: 'ERR_KEYSTEAD_ACCESS_DENIED'
  static readonly errorClass: 'access-denied'
  readonly code: 'ERR_KEYSTEAD_ACCESS_DENIED'
  readonly errorClass: 'access-denied'
}

/** The secret exists but is deleted, scheduled for deletion or destroyed. */
export declare class SecretDeletedError extends KeysteadError {
  static readonly code: 'ERR_KEYSTEAD_SECRET_DELETED'
  static readonly errorClass: 'secret-deleted'
  readonly code: 'ERR_KEYSTEAD_SECRET_DELETED'
  readonly errorClass: 'secret-deleted'
}

/** The backend could not decrypt the value, usually for lack of access to its KMS key. */
export declare class DecryptionFailedError extends KeysteadError {
  static readonly code: 'ERR_KEYSTEAD_DECRYPTION_FAILED'
  static readonly errorClass: 'decryption-failed'
  readonly code: 'ERR_KEYSTEAD_DECRYPTION_FAILED'
  readonly errorClass: 'decryption-failed'
}

/** The backend could not be reached or failed transiently; retrying later may work. */
export declare class UnavailableError extends KeysteadError {
  static readonly code: 'ERR_KEYSTEAD_UNAVAILABLE'
  static readonly errorClass: 'unavailable'
  readonly code: 'ERR_KEYSTEAD_UNAVAILABLE'
  readonly errorClass: 'unavailable'
}

/** Text was requested from a binary value; use `revealBuffer()`. */
export declare class NotTextError extends KeysteadError {
  static readonly code: 'ERR_KEYSTEAD_NOT_TEXT'
  static readonly errorClass: 'not-text'
  readonly code: 'ERR_KEYSTEAD_NOT_TEXT'
  readonly errorClass: 'not-text'
}

/** A `#field` selector named a field the JSON value lacks, or whose value is `null`. */
export declare class FieldNotFoundError extends KeysteadError {
  static readonly code: 'ERR_KEYSTEAD_FIELD_NOT_FOUND'
  static readonly errorClass: 'field-not-found'
  readonly code: 'ERR_KEYSTEAD_FIELD_NOT_FOUND'
  readonly errorClass: 'field-not-found'
}

/** A `#field` selector was applied to a value that is not a JSON object or array. */
export declare class InvalidJsonError extends KeysteadError {
  static readonly code: 'ERR_KEYSTEAD_INVALID_JSON'
  static readonly errorClass: 'invalid-json'
  readonly code: 'ERR_KEYSTEAD_INVALID_JSON'
  readonly errorClass: 'invalid-json'
}

/** The client was closed. */
export declare class ClosedError extends KeysteadError {
  static readonly code: 'ERR_KEYSTEAD_CLOSED'
  static readonly errorClass: 'closed'
  readonly code: 'ERR_KEYSTEAD_CLOSED'
  readonly errorClass: 'closed'
}

/** A bug in keystead or an unexpected response from a backend. */
export declare class InternalError extends KeysteadError {
  static readonly code: 'ERR_KEYSTEAD_INTERNAL'
  static readonly errorClass: 'internal'
  readonly code: 'ERR_KEYSTEAD_INTERNAL'
  readonly errorClass: 'internal'
}
