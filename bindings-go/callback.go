package keystead

// This file contains the Go function that C calls. A file with //export may
// only declare C functions in its preamble, so the C trampoline that adapts
// keystead_rotation_callback to this function is in callback.c.

// #include "keystead.h"
import "C"

import "runtime/cgo"

// keysteadGoRotation receives a rotation on a Rust worker thread. secret
// and failure are borrowed for the call: the secret is cloned to keep it,
// the error is copied.
//
//export keysteadGoRotation
func keysteadGoRotation(registry C.uintptr_t, reference *C.char, referenceLength C.size_t,
	secret *C.keystead_secret, failure *C.keystead_error) {
	subscription := cgo.Handle(registry).Value().(*Subscription)
	event := RotationEvent{Reference: C.GoStringN(reference, C.int(referenceLength))}
	if secret != nil {
		event.Secret = newSecret(C.keystead_secret_clone(secret))
	} else {
		event.Err = errorFromHandle(failure, nil)
	}
	subscription.push(event)
}
