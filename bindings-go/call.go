package keystead

// #include "keystead.h"
import "C"

import (
	"context"
	"time"
	"unsafe"
)

// cString views a Go string as a C pointer and length without copying. The
// C side only reads it during the call, and string data holds no Go
// pointers, so passing it follows the cgo pointer rules.
func cString(text string) (*C.char, C.size_t) {
	if len(text) == 0 {
		return nil, 0
	}
	return (*C.char)(unsafe.Pointer(unsafe.StringData(text))), C.size_t(len(text))
}

// blockingCall runs call, passing the context's deadline as the C timeout
// and the context's cancellation as a C cancellation token. It returns the
// call's status, and the context error to report when the call failed
// because the context ended (nil otherwise).
func blockingCall(ctx context.Context, call func(timeoutMs C.uint64_t, token *C.keystead_cancel_token) C.keystead_status) (C.keystead_status, error) {
	timeoutMs := C.uint64_t(C.KEYSTEAD_NO_TIMEOUT)
	deadline, hasDeadline := ctx.Deadline()
	if hasDeadline {
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return C.KEYSTEAD_STATUS_UNAVAILABLE, context.DeadlineExceeded
		}
		// Rounded up, so the C timeout never fires before the deadline,
		// and at least one millisecond, because zero means no limit.
		timeoutMs = C.uint64_t((remaining + time.Millisecond - 1) / time.Millisecond)
	}

	var status C.keystead_status
	if ctx.Done() == nil {
		status = call(timeoutMs, nil)
	} else {
		status = callWithToken(ctx, timeoutMs, call)
	}
	if status == C.KEYSTEAD_STATUS_OK {
		return status, nil
	}

	cause := ctx.Err()
	if cause == nil && hasDeadline && !time.Now().Before(deadline) {
		// The C timeout fired at the deadline, before the context's own
		// timer marked it done.
		cause = context.DeadlineExceeded
	}
	return status, cause
}

func callWithToken(ctx context.Context, timeoutMs C.uint64_t, call func(C.uint64_t, *C.keystead_cancel_token) C.keystead_status) C.keystead_status {
	token := C.keystead_cancel_token_new()
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		C.keystead_cancel_token_cancel(token)
		close(fired)
	})

	status := call(timeoutMs, token)

	// The token may only be freed once the AfterFunc is known not to run,
	// or has finished running.
	if !stop() {
		<-fired
	}
	C.keystead_cancel_token_free(token)
	return status
}
