/*
 * Tests of the keystead C interface, run by scripts/test-go.sh. Needs no
 * backend: it reads environment variables and points the AWS provider at
 * a loopback socket that never responds.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "keystead.h"

static int passed = 0;
static int failed = 0;

#define CHECK(condition)                                                        \
    do {                                                                        \
        if (condition) {                                                        \
            passed++;                                                           \
        } else {                                                                \
            failed++;                                                           \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
        }                                                                       \
    } while (0)

static keystead_client *new_client(const char *json) {
    keystead_client *client = NULL;
    keystead_error *error = NULL;
    keystead_status status = keystead_client_new(json, strlen(json), &client, &error);
    if (status != KEYSTEAD_STATUS_OK) {
        fprintf(stderr, "cannot create client: %s\n", keystead_error_text(error));
        exit(1);
    }
    return client;
}

static keystead_status get(keystead_client *client, const char *reference, uint64_t timeout_ms,
                           const keystead_cancel_token *cancel, keystead_secret **secret, keystead_error **error) {
    return keystead_get(client, reference, strlen(reference), timeout_ms, cancel, secret, error);
}

static int text_equals(const keystead_secret *secret, const char *expected) {
    const char *text = NULL;
    size_t length = 0;
    if (keystead_secret_text(secret, &text, &length, NULL) != KEYSTEAD_STATUS_OK) {
        return 0;
    }
    return length == strlen(expected) && memcmp(text, expected, length) == 0;
}

static double seconds_since(const struct timespec *start) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static void status_names_are_class_names(void) {
    CHECK(strcmp(keystead_status_name(KEYSTEAD_STATUS_OK), "ok") == 0);
    CHECK(strcmp(keystead_status_name(KEYSTEAD_STATUS_NOT_FOUND), "not-found") == 0);
    CHECK(strcmp(keystead_status_name(KEYSTEAD_STATUS_INTERNAL), "internal") == 0);
    CHECK(strcmp(keystead_status_name(99), "unknown") == 0);
}

static void invalid_config_names_the_key(void) {
    const char *json = "{\"cache\": {\"tll\": \"1s\"}}";
    keystead_client *client = NULL;
    keystead_error *error = NULL;
    keystead_status status = keystead_client_new(json, strlen(json), &client, &error);
    CHECK(status == KEYSTEAD_STATUS_CONFIG);
    CHECK(client == NULL);
    CHECK(keystead_error_status(error) == KEYSTEAD_STATUS_CONFIG);
    CHECK(strstr(keystead_error_message(error), "tll") != NULL);
    CHECK(keystead_error_reference(error) == NULL);
    keystead_error_free(error);
}

static void get_reads_text_bytes_and_metadata(void) {
    setenv("KEYSTEAD_CAPI_TEXT", "alpha", 1);
    keystead_client *client = new_client("{}");
    keystead_secret *secret = NULL;
    const char *reference = "env://KEYSTEAD_CAPI_TEXT";

    CHECK(keystead_get_cached(client, reference, strlen(reference), NULL) == NULL);
    CHECK(get(client, reference, 5000, NULL, &secret, NULL) == KEYSTEAD_STATUS_OK);
    CHECK(text_equals(secret, "alpha"));
    keystead_bytes bytes = keystead_secret_bytes(secret);
    CHECK(bytes.length == 5);
    CHECK(memcmp(bytes.data, "alpha", 5) == 0);
    CHECK(!keystead_secret_is_binary(secret));

    const keystead_metadata *metadata = keystead_secret_metadata(secret);
    CHECK(strcmp(metadata->reference, "env://KEYSTEAD_CAPI_TEXT") == 0);
    CHECK(strcmp(metadata->provider, "env") == 0);
    CHECK(metadata->fetched_at.is_set);
    CHECK(metadata->field == NULL);

    keystead_secret *copy = keystead_secret_clone(secret);
    keystead_secret_free(secret);
    CHECK(text_equals(copy, "alpha"));
    keystead_secret_free(copy);

    secret = keystead_get_cached(client, reference, strlen(reference), NULL);
    CHECK(secret != NULL);
    /* The same version comes back as the handle already held. */
    CHECK(keystead_get_cached(client, reference, strlen(reference), secret) == secret);
    keystead_secret_free(secret);

    bool was_cached = false;
    CHECK(keystead_invalidate(client, reference, strlen(reference), &was_cached, NULL) == KEYSTEAD_STATUS_OK);
    CHECK(was_cached);
    CHECK(keystead_get_cached(client, reference, strlen(reference), NULL) == NULL);
    keystead_client_free(client);
}

static void missing_value_is_not_found(void) {
    unsetenv("KEYSTEAD_CAPI_MISSING");
    keystead_client *client = new_client("{}");
    keystead_secret *secret = NULL;
    keystead_error *error = NULL;
    const char *reference = "env://KEYSTEAD_CAPI_MISSING";

    CHECK(get(client, reference, 5000, NULL, &secret, &error) == KEYSTEAD_STATUS_NOT_FOUND);
    CHECK(secret == NULL);
    CHECK(strcmp(keystead_error_reference(error), reference) == 0);
    CHECK(strstr(keystead_error_text(error), "not-found") != NULL);
    keystead_error_free(error);

    keystead_metrics metrics;
    CHECK(keystead_client_metrics(client, &metrics, NULL) == KEYSTEAD_STATUS_OK);
    CHECK(metrics.errors[KEYSTEAD_STATUS_NOT_FOUND] == 1);
    CHECK(metrics.misses == 1);
    CHECK(keystead_load_latency_bucket_bound_us(0) == 1000);
    keystead_client_free(client);
}

static void fields_and_invalid_references(void) {
    setenv("KEYSTEAD_CAPI_JSON", "{\"user\":\"app\",\"port\":5432}", 1);
    keystead_client *client = new_client("{}");
    keystead_secret *secret = NULL;
    keystead_secret *field = NULL;
    keystead_error *error = NULL;

    CHECK(get(client, "env://KEYSTEAD_CAPI_JSON#user", 5000, NULL, &secret, NULL) == KEYSTEAD_STATUS_OK);
    CHECK(text_equals(secret, "app"));
    CHECK(strcmp(keystead_secret_metadata(secret)->field, "user") == 0);
    keystead_secret_free(secret);

    CHECK(get(client, "env://KEYSTEAD_CAPI_JSON", 5000, NULL, &secret, NULL) == KEYSTEAD_STATUS_OK);
    CHECK(keystead_secret_field(secret, "port", 4, &field, NULL) == KEYSTEAD_STATUS_OK);
    CHECK(text_equals(field, "5432"));
    keystead_secret_free(field);
    CHECK(keystead_secret_field(secret, "password", 8, &field, &error) == KEYSTEAD_STATUS_FIELD_NOT_FOUND);
    keystead_error_free(error);
    keystead_secret_free(secret);

    CHECK(get(client, "gopher://x", 5000, NULL, &secret, NULL) == KEYSTEAD_STATUS_INVALID_REFERENCE);
    CHECK(keystead_get(NULL, "env://X", 7, 0, NULL, &secret, NULL) == KEYSTEAD_STATUS_INTERNAL);
    keystead_client_free(client);
}

static void prefetch_reports_each_reference(void) {
    setenv("KEYSTEAD_CAPI_PREFETCH", "p", 1);
    keystead_client *client = new_client("{}");
    const char *references[] = {"env://KEYSTEAD_CAPI_PREFETCH", "env://KEYSTEAD_CAPI_MISSING", "no scheme"};
    size_t lengths[3];
    for (int i = 0; i < 3; i++) {
        lengths[i] = strlen(references[i]);
    }
    keystead_status statuses[3];
    keystead_error *errors[3];

    keystead_status status =
        keystead_prefetch(client, references, lengths, 3, 5000, NULL, statuses, errors, NULL);
    CHECK(status == KEYSTEAD_STATUS_OK);
    CHECK(statuses[0] == KEYSTEAD_STATUS_OK);
    CHECK(errors[0] == NULL);
    CHECK(statuses[1] == KEYSTEAD_STATUS_NOT_FOUND);
    CHECK(errors[1] != NULL);
    CHECK(statuses[2] == KEYSTEAD_STATUS_INVALID_REFERENCE);
    CHECK(errors[2] != NULL);
    for (int i = 0; i < 3; i++) {
        keystead_error_free(errors[i]);
    }
    keystead_secret *secret = keystead_get_cached(client, references[0], lengths[0], NULL);
    CHECK(secret != NULL);
    keystead_secret_free(secret);
    keystead_client_free(client);
}

static atomic_int rotations;

static void on_rotation(void *user_data, const char *reference, size_t reference_length,
                        const keystead_secret *secret, const keystead_error *error) {
    (void)reference;
    (void)reference_length;
    (void)error;
    if (secret != NULL && text_equals(secret, (const char *)user_data)) {
        atomic_fetch_add(&rotations, 1);
    }
}

static void subscription_sees_refreshed_value(void) {
    setenv("KEYSTEAD_CAPI_ROTATING", "first", 1);
    keystead_client *client = new_client("{}");
    const char *reference = "env://KEYSTEAD_CAPI_ROTATING";
    keystead_secret *secret = NULL;
    CHECK(get(client, reference, 5000, NULL, &secret, NULL) == KEYSTEAD_STATUS_OK);
    keystead_secret_free(secret);

    keystead_subscription *subscription = NULL;
    char expected[] = "second";
    CHECK(keystead_subscribe(client, reference, strlen(reference), on_rotation, expected, &subscription, NULL) ==
          KEYSTEAD_STATUS_OK);
    setenv("KEYSTEAD_CAPI_ROTATING", "second", 1);
    CHECK(keystead_refresh(client, reference, strlen(reference), 5000, NULL, &secret, NULL) == KEYSTEAD_STATUS_OK);
    CHECK(text_equals(secret, "second"));
    keystead_secret_free(secret);

    for (int waited = 0; waited < 200 && atomic_load(&rotations) == 0; waited++) {
        nanosleep(&(struct timespec){.tv_sec = 0, .tv_nsec = 10000000}, NULL);
    }
    CHECK(atomic_load(&rotations) == 1);
    keystead_subscription_free(subscription);
    keystead_client_free(client);
}

/* Opens a loopback socket that accepts connections (through the kernel's
 * backlog) but never responds, and returns its port. */
static int silent_listener(int *port) {
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address;
    memset(&address, 0, sizeof address);
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    if (listener < 0 || bind(listener, (struct sockaddr *)&address, size) != 0 || listen(listener, 16) != 0 ||
        getsockname(listener, (struct sockaddr *)&address, &size) != 0) {
        perror("silent listener");
        exit(1);
    }
    *port = ntohs(address.sin_port);
    return listener;
}

static void timeout_and_cancel_stop_a_hung_call(void) {
    int port = 0;
    int listener = silent_listener(&port);
    setenv("AWS_ACCESS_KEY_ID", "testing", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "testing", 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    char json[256];
    snprintf(json, sizeof json,
             "{\"aws\": {\"endpoint_url\": \"http://127.0.0.1:%d\", \"region\": \"us-east-1\", "
             "\"max_attempts\": 1, \"attempt_timeout\": \"60s\"}}",
             port);
    keystead_client *client = new_client(json);
    keystead_secret *secret = NULL;
    keystead_error *error = NULL;
    struct timespec start;

    clock_gettime(CLOCK_MONOTONIC, &start);
    CHECK(get(client, "aws-sm://hung-timeout", 300, NULL, &secret, &error) == KEYSTEAD_STATUS_UNAVAILABLE);
    double elapsed = seconds_since(&start);
    CHECK(elapsed >= 0.29);
    CHECK(elapsed < 5.0);
    keystead_error_free(error);

    keystead_cancel_token *token = keystead_cancel_token_new();
    CHECK(!keystead_cancel_token_is_cancelled(token));
    keystead_cancel_token_cancel(token);
    CHECK(keystead_cancel_token_is_cancelled(token));
    clock_gettime(CLOCK_MONOTONIC, &start);
    CHECK(get(client, "aws-sm://hung-cancel", KEYSTEAD_NO_TIMEOUT, token, &secret, &error) ==
          KEYSTEAD_STATUS_UNAVAILABLE);
    CHECK(seconds_since(&start) < 5.0);
    CHECK(strstr(keystead_error_message(error), "cancelled") != NULL);
    keystead_error_free(error);
    keystead_cancel_token_free(token);

    keystead_client_free(client);
    close(listener);
}

static void closed_client_rejects_calls(void) {
    setenv("KEYSTEAD_CAPI_CLOSED", "c", 1);
    keystead_client *client = new_client("{}");
    keystead_secret *secret = NULL;
    CHECK(get(client, "env://KEYSTEAD_CAPI_CLOSED", 5000, NULL, &secret, NULL) == KEYSTEAD_STATUS_OK);
    CHECK(keystead_client_close(client, 1000) == KEYSTEAD_STATUS_OK);
    CHECK(keystead_client_close(client, 1000) == KEYSTEAD_STATUS_OK);
    /* A handle taken before closing stays readable. */
    CHECK(text_equals(secret, "c"));
    keystead_secret_free(secret);
    secret = NULL;
    CHECK(get(client, "env://KEYSTEAD_CAPI_CLOSED", 5000, NULL, &secret, NULL) == KEYSTEAD_STATUS_CLOSED);
    CHECK(secret == NULL);
    keystead_client_free(client);
}

int main(void) {
    status_names_are_class_names();
    invalid_config_names_the_key();
    get_reads_text_bytes_and_metadata();
    missing_value_is_not_found();
    fields_and_invalid_references();
    prefetch_reports_each_reference();
    subscription_sees_refreshed_value();
    timeout_and_cancel_stop_a_hung_call();
    closed_client_rejects_calls();
    printf("c-api: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
