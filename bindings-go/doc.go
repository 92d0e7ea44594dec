// Package keystead reads secrets (AWS Secrets Manager, SSM Parameter Store,
// files, environment variables) through a cache that refreshes values
// ahead of expiry, serves the last good value through a backend outage,
// and wipes values from memory when they are dropped.
//
// The package is a thin layer over the keystead Rust core, which it calls
// through the C interface in include/keystead.h. Build the Rust library
// with `bash build.sh` in this module's folder before `go build` or
// `go test`; docs/go.md in the repository lists what that needs.
//
//	client, err := keystead.New(ctx, keystead.Config{})
//	if err != nil {
//		return err
//	}
//	defer client.Close()
//
//	password, err := client.Get(ctx, "aws-sm://prod/db#password")
//	if errors.Is(err, keystead.ErrNotFound) {
//		...
//	}
//	db.Connect(user, password.Reveal())
package keystead
