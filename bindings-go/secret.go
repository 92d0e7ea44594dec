package keystead

// #include "keystead.h"
import "C"

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"
	"weak"
)

// redacted replaces a secret value in every printed form.
const redacted = "[REDACTED]"

// Secret is a secret value and its metadata.
//
// The value stays in the Rust core's zeroizing memory, shared with the
// cache; Go gets a copy only from [Secret.Reveal], [Secret.Text] or
// [Secret.Bytes]. The Secret holds its share until the garbage collector
// finds it unreachable. The bytes are overwritten with zeros once the
// cache and every Secret of that version have let go.
//
// Printing a Secret with fmt (any verb), log/slog or encoding/json shows
// its reference and version, never its value. A Secret is safe for use by
// many goroutines at once.
type Secret struct {
	handle *C.keystead_secret
	// value points to the handle's bytes in Rust memory, which stay in
	// place and unchanged until the handle is freed.
	value *byte
	size  int

	metadataOnce sync.Once
	metadata     Metadata
}

// Metadata holds facts about a secret's value. None of them is secret.
// Fields the backend did not report are zero.
type Metadata struct {
	// Reference is the reference the value was loaded for, in canonical
	// form and without a #field selector.
	Reference string
	// Provider is the provider scheme, for example "aws-sm".
	Provider string
	// Name is the backend's name for the secret.
	Name string
	// ARN is the backend's ARN or other unique id.
	ARN string
	// VersionID is the backend's version id (AWS VersionId).
	VersionID string
	// VersionStages are the version's staging labels (AWS VersionStages,
	// SSM labels).
	VersionStages []string
	// VersionNumber is the SSM parameter or Vault KV version; both start at
	// 1, so zero means none.
	VersionNumber uint64
	// CreatedAt is when the backend created this version.
	CreatedAt time.Time
	// FetchedAt is when keystead fetched this value.
	FetchedAt time.Time
	// RefreshAt is when keystead plans to refresh the value (an estimate).
	RefreshAt time.Time
	// ExpiresAt is when the value stops being valid at the backend (a lease
	// or credential expiry).
	ExpiresAt time.Time
	// Field is the #field path applied to produce this value.
	Field string
}

// newSecret wraps a handle the caller owns; the Secret frees it once the
// garbage collector finds the Secret unreachable.
func newSecret(handle *C.keystead_secret) *Secret {
	secret := wrapHandle(handle)
	runtime.AddCleanup(secret, freeSecret, secretCleanup{handle: handle})
	return secret
}

// newLatestSecret is newSecret for a Secret that latest remembers for
// reference; its cleanup also makes latest forget it.
func newLatestSecret(handle *C.keystead_secret, latest *latestSecrets, reference string) *Secret {
	secret := wrapHandle(handle)
	pointer := weak.Make(secret)
	latest.store(reference, pointer)
	runtime.AddCleanup(secret, freeSecret, secretCleanup{handle: handle, latest: latest, reference: reference, pointer: pointer})
	return secret
}

func wrapHandle(handle *C.keystead_secret) *Secret {
	value := C.keystead_secret_bytes(handle)
	return &Secret{handle: handle, value: (*byte)(value.data), size: int(value.length)}
}

// secretCleanup is the data a collected Secret's cleanup needs. It must
// not refer to the Secret itself, or the Secret would never be collected.
type secretCleanup struct {
	handle    *C.keystead_secret
	latest    *latestSecrets
	reference string
	pointer   weak.Pointer[Secret]
}

func freeSecret(cleanup secretCleanup) {
	if cleanup.latest != nil {
		cleanup.latest.forget(cleanup.reference, cleanup.pointer)
	}
	C.keystead_secret_free(cleanup.handle)
}

// Reveal returns the value as a string. For a binary value the string holds
// the raw bytes; use [Secret.Text] to get an error instead. Go strings
// cannot be wiped, so prefer [Secret.Bytes] for values that must not
// linger in memory.
func (s *Secret) Reveal() string {
	text := strings.Clone(unsafe.String(s.value, s.size))
	runtime.KeepAlive(s)
	return text
}

// Text returns the value as text, or an error of class ClassNotText when
// the value is binary.
func (s *Secret) Text() (string, error) {
	var text *C.char
	var length C.size_t
	var failure *C.keystead_error
	status := C.keystead_secret_text(s.handle, &text, &length, &failure)
	if status != C.KEYSTEAD_STATUS_OK {
		runtime.KeepAlive(s)
		return "", takeError(failure, nil)
	}
	value := strings.Clone(unsafe.String((*byte)(unsafe.Pointer(text)), int(length)))
	runtime.KeepAlive(s)
	return value, nil
}

// Bytes returns a copy of the value's exact bytes, text or binary. The
// caller owns the copy and should clear it with [Wipe] when done.
func (s *Secret) Bytes() []byte {
	bytes := append([]byte(nil), unsafe.Slice(s.value, s.size)...)
	runtime.KeepAlive(s)
	return bytes
}

// IsBinary reports whether the value is binary rather than text.
func (s *Secret) IsBinary() bool {
	binary := bool(C.keystead_secret_is_binary(s.handle))
	runtime.KeepAlive(s)
	return binary
}

// Field selects a field of a JSON value by dot path, for example
// "db.port". String fields give their text; other JSON values give their
// compact JSON text. Errors have class ClassInvalidJSON when the value is
// not a JSON object or array, ClassFieldNotFound when the field is missing
// or null, and ClassInvalidReference for a malformed path.
func (s *Secret) Field(path string) (*Secret, error) {
	pathText, pathLength := cString(path)
	var field *C.keystead_secret
	var failure *C.keystead_error
	status := C.keystead_secret_field(s.handle, pathText, pathLength, &field, &failure)
	runtime.KeepAlive(path)
	runtime.KeepAlive(s)
	if status != C.KEYSTEAD_STATUS_OK {
		return nil, takeError(failure, nil)
	}
	return newSecret(field), nil
}

// Metadata returns the value's metadata.
func (s *Secret) Metadata() Metadata {
	s.metadataOnce.Do(func() {
		s.metadata = metadataFrom(C.keystead_secret_metadata(s.handle))
		runtime.KeepAlive(s)
	})
	metadata := s.metadata
	metadata.VersionStages = append([]string(nil), s.metadata.VersionStages...)
	return metadata
}

func metadataFrom(view *C.keystead_metadata) Metadata {
	metadata := Metadata{
		Reference: optionalString(view.reference),
		Provider:  optionalString(view.provider),
		Name:      optionalString(view.name),
		ARN:       optionalString(view.arn),
		VersionID: optionalString(view.version_id),
		CreatedAt: timeFrom(view.created_at),
		FetchedAt: timeFrom(view.fetched_at),
		RefreshAt: timeFrom(view.refresh_at),
		ExpiresAt: timeFrom(view.expires_at),
		Field:     optionalString(view.field),
	}
	if view.has_version_number {
		metadata.VersionNumber = uint64(view.version_number)
	}
	if view.version_stage_count > 0 {
		stages := unsafe.Slice(view.version_stages, int(view.version_stage_count))
		for _, stage := range stages {
			metadata.VersionStages = append(metadata.VersionStages, C.GoString(stage))
		}
	}
	return metadata
}

func optionalString(text *C.char) string {
	if text == nil {
		return ""
	}
	return C.GoString(text)
}

func timeFrom(timestamp C.keystead_timestamp) time.Time {
	if !timestamp.is_set {
		return time.Time{}
	}
	return time.Unix(int64(timestamp.unix_seconds), int64(timestamp.nanoseconds))
}

// Wipe overwrites b with zeros. Use it on the copy from [Secret.Bytes].
func Wipe(b []byte) {
	clear(b)
	// Keeps the writes from being removed as dead stores when b is not
	// read again.
	runtime.KeepAlive(b)
}

// String returns "[REDACTED]".
func (s *Secret) String() string {
	return redacted
}

// GoString returns a Go-syntax description with the reference and version
// and without the value, for the %#v verb.
func (s *Secret) GoString() string {
	metadata := s.Metadata()
	return fmt.Sprintf("keystead.Secret{Reference:%q, Field:%q, VersionID:%q, Value:%s}",
		metadata.Reference, metadata.Field, metadata.VersionID, redacted)
}

// Format prints the Secret for every fmt verb without its value: %v, %s
// and %q give "[REDACTED]" (quoted for %q), %+v adds the reference and
// version, %#v gives [Secret.GoString], and any other verb gives
// "%!verb(keystead.Secret=[REDACTED])".
func (s *Secret) Format(state fmt.State, verb rune) {
	switch {
	case verb == 'v' && state.Flag('#'):
		fmt.Fprint(state, s.GoString())
	case verb == 'v' && state.Flag('+'):
		metadata := s.Metadata()
		fmt.Fprintf(state, "{Reference:%s Field:%s VersionID:%s Value:%s}",
			metadata.Reference, metadata.Field, metadata.VersionID, redacted)
	case verb == 'v' || verb == 's':
		fmt.Fprint(state, redacted)
	case verb == 'q':
		fmt.Fprintf(state, "%q", redacted)
	default:
		fmt.Fprintf(state, "%%!%c(keystead.Secret=%s)", verb, redacted)
	}
}

// MarshalJSON encodes the reference, field and version, with the value
// replaced by "[REDACTED]".
func (s *Secret) MarshalJSON() ([]byte, error) {
	metadata := s.Metadata()
	return json.Marshal(struct {
		Reference string `json:"reference"`
		Field     string `json:"field,omitempty"`
		VersionID string `json:"version_id,omitempty"`
		Value     string `json:"value"`
	}{metadata.Reference, metadata.Field, metadata.VersionID, redacted})
}

// LogValue gives log/slog the reference, field and version, with the value
// replaced by "[REDACTED]".
func (s *Secret) LogValue() slog.Value {
	metadata := s.Metadata()
	attributes := []slog.Attr{slog.String("reference", metadata.Reference)}
	if metadata.Field != "" {
		attributes = append(attributes, slog.String("field", metadata.Field))
	}
	if metadata.VersionID != "" {
		attributes = append(attributes, slog.String("version_id", metadata.VersionID))
	}
	attributes = append(attributes, slog.String("value", redacted))
	return slog.GroupValue(attributes...)
}
