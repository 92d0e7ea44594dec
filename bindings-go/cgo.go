package keystead

// The include path for keystead.h, for every file of the package and for
// callback.c.

// #cgo CFLAGS: -I${SRCDIR}/include
import "C"
