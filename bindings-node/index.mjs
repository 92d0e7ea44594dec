// ES module entry point: the same objects as the CommonJS entry point, so
// that `instanceof` works whichever way a program loads keystead.
import keystead from './index.js'

export const {
  Client,
  RotationEvent,
  Secret,
  Subscription,
  KeysteadError,
  InvalidReferenceError,
  ConfigError,
  NotFoundError,
  AccessDeniedError,
  SecretDeletedError,
  DecryptionFailedError,
  UnavailableError,
  NotTextError,
  FieldNotFoundError,
  InvalidJsonError,
  ClosedError,
  InternalError,
} = keystead

export default keystead
