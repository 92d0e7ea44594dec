// Adapts keystead_rotation_callback to the Go function keysteadGoRotation,
// passing the subscription's cgo.Handle through the user data pointer.

#include "keystead.h"
#include "_cgo_export.h"

static void rotation_trampoline(void *user_data, const char *reference, size_t reference_length,
                                const keystead_secret *secret, const keystead_error *error) {
    keysteadGoRotation((uintptr_t)user_data, (char *)reference, reference_length, (keystead_secret *)secret,
                       (keystead_error *)error);
}

keystead_status keystead_go_subscribe(const keystead_client *client, const char *reference,
                                      size_t reference_length, uintptr_t subscription,
                                      keystead_subscription **out, keystead_error **error) {
    return keystead_subscribe(client, reference, reference_length, rotation_trampoline, (void *)subscription, out,
                              error);
}
