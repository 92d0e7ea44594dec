//go:build !keystead_release && !keystead_system

package keystead

// Links the debug build of the Rust library, which `bash build.sh` writes
// to the workspace's target/debug folder. Build with -tags keystead_release
// to link the release build instead.

// #cgo LDFLAGS: ${SRCDIR}/../target/debug/libkeystead_capi.a
// #cgo linux LDFLAGS: -lpthread -ldl -lm -lrt -lutil -lgcc_s
import "C"

// linkedLibrary changes whenever build.sh rebuilds the library, so that the
// go command, which does not hash static libraries, relinks programs.
// libraryFingerprint is defined in zz_library_debug.go, which build.sh
// writes. Run `bash build.sh` first when it is undefined.
var linkedLibrary = libraryFingerprint
