//go:build keystead_release && !keystead_system

package keystead

// Links the release build of the Rust library, which `bash build.sh
// --release` writes to the workspace's target/release folder.

// #cgo LDFLAGS: ${SRCDIR}/../target/release/libkeystead_capi.a
// #cgo linux LDFLAGS: -lpthread -ldl -lm -lrt -lutil -lgcc_s
import "C"

// linkedLibrary changes whenever build.sh rebuilds the library, so that the
// go command, which does not hash static libraries, relinks programs.
// libraryFingerprint is defined in zz_library_release.go, which
// `bash build.sh --release` writes. Run it first when it is undefined.
var linkedLibrary = libraryFingerprint
