package keystead

// #include "keystead.h"
import "C"

import (
	"errors"
	"fmt"
)

// Class is the class of an [Error]: what went wrong, in terms a caller can
// act on. The numbers equal the C interface's status codes and never
// change; the names from [Class.String] are the ones keystead uses in
// every language.
type Class int

// The error classes. Each has a sentinel error (ErrNotFound for
// ClassNotFound, and so on) for use with [errors.Is].
const (
	// ClassInvalidReference: the reference does not follow
	// SCHEME://PATH[?QUERY][#FIELD], names an unknown scheme, or has a
	// query key its provider does not accept.
	ClassInvalidReference Class = 1
	// ClassConfig: the configuration is invalid.
	ClassConfig Class = 2
	// ClassNotFound: the backend has no secret, version or stage by that name.
	ClassNotFound Class = 3
	// ClassAccessDenied: the backend rejected the credentials or permissions.
	ClassAccessDenied Class = 4
	// ClassSecretDeleted: the secret is deleted, scheduled for deletion or destroyed.
	ClassSecretDeleted Class = 5
	// ClassDecryptionFailed: the backend could not decrypt the value,
	// usually because the caller may not use its KMS key.
	ClassDecryptionFailed Class = 6
	// ClassUnavailable: the backend is unreachable or failed transiently,
	// or the call's context was cancelled or passed its deadline. Retrying
	// later may work.
	ClassUnavailable Class = 7
	// ClassNotText: text was requested from a binary value.
	ClassNotText Class = 8
	// ClassFieldNotFound: a #field selector named a field that is missing or null.
	ClassFieldNotFound Class = 9
	// ClassInvalidJSON: a #field selector was applied to a value that is not JSON.
	ClassInvalidJSON Class = 10
	// ClassClosed: the client is closed.
	ClassClosed Class = 11
	// ClassInternal: a bug in keystead or an unexpected response from a backend.
	ClassInternal Class = 12
)

// The class numbers must equal the C status codes: a line whose pair
// differs declares an array of the wrong length and does not compile.
var (
	_ [0]struct{} = [ClassInvalidReference - C.KEYSTEAD_STATUS_INVALID_REFERENCE]struct{}{}
	_ [0]struct{} = [ClassConfig - C.KEYSTEAD_STATUS_CONFIG]struct{}{}
	_ [0]struct{} = [ClassNotFound - C.KEYSTEAD_STATUS_NOT_FOUND]struct{}{}
	_ [0]struct{} = [ClassAccessDenied - C.KEYSTEAD_STATUS_ACCESS_DENIED]struct{}{}
	_ [0]struct{} = [ClassSecretDeleted - C.KEYSTEAD_STATUS_SECRET_DELETED]struct{}{}
	_ [0]struct{} = [ClassDecryptionFailed - C.KEYSTEAD_STATUS_DECRYPTION_FAILED]struct{}{}
	_ [0]struct{} = [ClassUnavailable - C.KEYSTEAD_STATUS_UNAVAILABLE]struct{}{}
	_ [0]struct{} = [ClassNotText - C.KEYSTEAD_STATUS_NOT_TEXT]struct{}{}
	_ [0]struct{} = [ClassFieldNotFound - C.KEYSTEAD_STATUS_FIELD_NOT_FOUND]struct{}{}
	_ [0]struct{} = [ClassInvalidJSON - C.KEYSTEAD_STATUS_INVALID_JSON]struct{}{}
	_ [0]struct{} = [ClassClosed - C.KEYSTEAD_STATUS_CLOSED]struct{}{}
	_ [0]struct{} = [ClassInternal - C.KEYSTEAD_STATUS_INTERNAL]struct{}{}
)

// classNames are core's stable class names, indexed by Class. A test
// compares them with the names the Rust library reports.
var classNames = [...]string{
	ClassInvalidReference: "invalid-reference",
	ClassConfig:           "config",
	ClassNotFound:         "not-found",
	ClassAccessDenied:     "access-denied",
	ClassSecretDeleted:    "secret-deleted",
	ClassDecryptionFailed: "decryption-failed",
	ClassUnavailable:      "unavailable",
	ClassNotText:          "not-text",
	ClassFieldNotFound:    "field-not-found",
	ClassInvalidJSON:      "invalid-json",
	ClassClosed:           "closed",
	ClassInternal:         "internal",
}

// String returns the class's stable name, for example "not-found".
func (c Class) String() string {
	if c > 0 && int(c) < len(classNames) {
		return classNames[c]
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// Sentinel errors, one per class: errors.Is(err, keystead.ErrNotFound)
// reports whether err is an [*Error] of class ClassNotFound.
var (
	ErrInvalidReference = newSentinel(ClassInvalidReference)
	ErrConfig           = newSentinel(ClassConfig)
	ErrNotFound         = newSentinel(ClassNotFound)
	ErrAccessDenied     = newSentinel(ClassAccessDenied)
	ErrSecretDeleted    = newSentinel(ClassSecretDeleted)
	ErrDecryptionFailed = newSentinel(ClassDecryptionFailed)
	ErrUnavailable      = newSentinel(ClassUnavailable)
	ErrNotText          = newSentinel(ClassNotText)
	ErrFieldNotFound    = newSentinel(ClassFieldNotFound)
	ErrInvalidJSON      = newSentinel(ClassInvalidJSON)
	ErrClosed           = newSentinel(ClassClosed)
	ErrInternal         = newSentinel(ClassInternal)
)

var sentinels = [...]error{
	ClassInvalidReference: ErrInvalidReference,
	ClassConfig:           ErrConfig,
	ClassNotFound:         ErrNotFound,
	ClassAccessDenied:     ErrAccessDenied,
	ClassSecretDeleted:    ErrSecretDeleted,
	ClassDecryptionFailed: ErrDecryptionFailed,
	ClassUnavailable:      ErrUnavailable,
	ClassNotText:          ErrNotText,
	ClassFieldNotFound:    ErrFieldNotFound,
	ClassInvalidJSON:      ErrInvalidJSON,
	ClassClosed:           ErrClosed,
	ClassInternal:         ErrInternal,
}

func newSentinel(class Class) error {
	return errors.New("keystead: " + class.String())
}

// Error is the error every keystead call returns: a class, the reference it
// concerns, and a message for an operator. Messages never contain a secret
// value.
//
// Use [errors.Is] with a sentinel (ErrNotFound, ...) to test the class, or
// [errors.As] to read the fields. When a call fails because its context was
// cancelled or passed its deadline, the class is ClassUnavailable and
// [errors.Is] also matches [context.Canceled] or
// [context.DeadlineExceeded].
type Error struct {
	// Class is the kind of failure.
	Class Class
	// Reference is the reference the error concerns, or "".
	Reference string
	// Message is the operator-facing text, without reference and class.
	Message string

	text  string
	cause error
}

// Error returns "REFERENCE: CLASS: MESSAGE" (without "REFERENCE: " when
// the error concerns no reference).
func (e *Error) Error() string {
	return e.text
}

// Is reports whether target is the sentinel of e's class.
func (e *Error) Is(target error) bool {
	return e.Class > 0 && int(e.Class) < len(sentinels) && sentinels[e.Class] == target
}

// Unwrap returns the context error that ended the call, or nil.
func (e *Error) Unwrap() error {
	return e.cause
}

// errorFromHandle copies a C error. It does not free the handle. cause is
// the context error to wrap, or nil.
func errorFromHandle(handle *C.keystead_error, cause error) *Error {
	err := &Error{
		Class:   Class(C.keystead_error_status(handle)),
		Message: C.GoString(C.keystead_error_message(handle)),
		text:    C.GoString(C.keystead_error_text(handle)),
		cause:   cause,
	}
	if reference := C.keystead_error_reference(handle); reference != nil {
		err.Reference = C.GoString(reference)
	}
	return err
}

// takeError copies a C error and frees the handle.
func takeError(handle *C.keystead_error, cause error) *Error {
	defer C.keystead_error_free(handle)
	return errorFromHandle(handle, cause)
}

// callError is the error for a blocking call that returned status. The C
// side sets failure for every error status; only a call that the context
// ended before it started has none.
func callError(status C.keystead_status, failure *C.keystead_error, cause error, reference string) *Error {
	switch {
	case failure != nil:
		return takeError(failure, cause)
	case cause != nil:
		return contextError(reference, cause)
	default:
		return newError(Class(status), reference, "the call failed without an error message", nil)
	}
}

// contextError is the error for a call whose context ended before or while
// the call ran.
func contextError(reference string, cause error) *Error {
	return newError(ClassUnavailable, reference, cause.Error(), cause)
}

func newError(class Class, reference, message string, cause error) *Error {
	text := class.String() + ": " + message
	if reference != "" {
		text = reference + ": " + text
	}
	return &Error{Class: class, Reference: reference, Message: message, text: text, cause: cause}
}

// coreClassName returns the Rust library's name for a class, so that tests
// can compare it with classNames.
func coreClassName(class Class) string {
	return C.GoString(C.keystead_status_name(C.int32_t(class)))
}
