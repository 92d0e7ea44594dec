//go:build keystead_system

package keystead

// Links libkeystead_capi from the linker's search path, for programs that
// install the library themselves (for example to /usr/local/lib, or a
// folder named in CGO_LDFLAGS=-L...).

// #cgo LDFLAGS: -lkeystead_capi
// #cgo linux LDFLAGS: -lpthread -ldl -lm -lrt -lutil -lgcc_s
import "C"

// linkedLibrary is fixed, because the go command cannot tell when an
// installed library changes. Rebuild with -a after replacing it.
var linkedLibrary = "system"
