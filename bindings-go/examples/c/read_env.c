/*
 * Reads one secret through the keystead C interface and prints it.
 *
 * Build from the repository root, after `bash bindings-go/build.sh`:
 *
 *   cc -std=c11 -Wall -Wextra -I bindings-go/include \
 *      bindings-go/examples/c/read_env.c target/debug/libkeystead_capi.a \
 *      -lpthread -ldl -lm -lrt -lutil -lgcc_s -o read_env
 *
 * Run:
 *
 *   KEYSTEAD_EXAMPLE_TOKEN=s3cr3t ./read_env env://KEYSTEAD_EXAMPLE_TOKEN
 *
 * A real program hands the value to the code that needs it instead of
 * printing it.
 */
#include <stdio.h>
#include <string.h>

#include "keystead.h"

/* Five seconds is ample for an env:// read. Network providers may need
 * longer on a cold start. */
#define READ_TIMEOUT_MS 5000

static int report(const char *step, keystead_status status, keystead_error *error) {
    fprintf(stderr, "%s failed (%s): %s\n", step, keystead_status_name(status), keystead_error_text(error));
    keystead_error_free(error);
    return 2;
}

int main(int argc, char **argv) {
    const char *reference = argc > 1 ? argv[1] : "env://KEYSTEAD_EXAMPLE_TOKEN";
    keystead_client *client = NULL;
    keystead_secret *secret = NULL;
    keystead_error *error = NULL;

    /* NULL configuration: KEYSTEAD_CONFIG names a keystead.toml, or the
     * defaults apply. */
    keystead_status status = keystead_client_new(NULL, 0, &client, &error);
    if (status != KEYSTEAD_STATUS_OK) {
        return report("creating the client", status, error);
    }

    status = keystead_get(client, reference, strlen(reference), READ_TIMEOUT_MS, NULL, &secret, &error);
    if (status != KEYSTEAD_STATUS_OK) {
        int code = report("reading the secret", status, error);
        keystead_client_free(client);
        return code;
    }

    const char *text = NULL;
    size_t length = 0;
    status = keystead_secret_text(secret, &text, &length, &error);
    if (status != KEYSTEAD_STATUS_OK) {
        int code = report("reading the value as text", status, error);
        keystead_secret_free(secret);
        keystead_client_free(client);
        return code;
    }

    const keystead_metadata *metadata = keystead_secret_metadata(secret);
    printf("%s (provider %s): %.*s\n", metadata->reference, metadata->provider, (int)length, text);

    /* Freeing the last holder of a value overwrites its bytes with zeros,
     * and closing the client wipes the cached copy. */
    keystead_secret_free(secret);
    keystead_client_close(client, READ_TIMEOUT_MS);
    keystead_client_free(client);
    return 0;
}
