package keystead_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"keystead.dev/keystead"
)

// promptly bounds how long a cancelled or closed call may take to return;
// the hung endpoint would otherwise hold it for the one-minute attempt
// timeout.
const promptly = 3 * time.Second

func TestCancelStopsCallMidway(t *testing.T) {
	client := hungClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)

	started := time.Now()
	_, err := client.Get(ctx, "aws-sm://"+runPrefix+"hung/cancel")
	elapsed := time.Since(started)

	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want it to match context.Canceled", err)
	}
	if !errors.Is(err, keystead.ErrUnavailable) {
		t.Errorf("err = %v, want it to match ErrUnavailable", err)
	}
	if elapsed < 200*time.Millisecond || elapsed > promptly {
		t.Errorf("Get returned after %v", elapsed)
	}
}

func TestDeadlineStopsCallMidway(t *testing.T) {
	client := hungClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()

	started := time.Now()
	_, err := client.Refresh(ctx, "aws-sm://"+runPrefix+"hung/deadline")
	elapsed := time.Since(started)

	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want it to match context.DeadlineExceeded", err)
	}
	if !errors.Is(err, keystead.ErrUnavailable) {
		t.Errorf("err = %v, want it to match ErrUnavailable", err)
	}
	if elapsed < 300*time.Millisecond || elapsed > promptly {
		t.Errorf("Refresh returned after %v", elapsed)
	}
}

func TestPrefetchHonoursCancel(t *testing.T) {
	client := hungClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)

	started := time.Now()
	err := client.Prefetch(ctx, "aws-sm://"+runPrefix+"hung/prefetch")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
	if elapsed := time.Since(started); elapsed > promptly {
		t.Errorf("Prefetch returned after %v", elapsed)
	}
}

func TestEndedContextFailsBeforeTheCall(t *testing.T) {
	t.Setenv("KEYSTEAD_GO_ENDED", "warm")
	client := newClient(t)
	if _, err := client.Get(context.Background(), "env://KEYSTEAD_GO_ENDED"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	// Even a warm value is not returned to a caller whose context ended.
	_, err := client.Get(ctx, "env://KEYSTEAD_GO_ENDED")
	if !errors.Is(err, context.Canceled) || !errors.Is(err, keystead.ErrUnavailable) {
		t.Errorf("Get = %v", err)
	}
	var failure *keystead.Error
	if !errors.As(err, &failure) || failure.Reference != "env://KEYSTEAD_GO_ENDED" {
		t.Errorf("error fields = %+v", failure)
	}

	expired, cancelExpired := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancelExpired()
	if _, err := client.Refresh(expired, "env://KEYSTEAD_GO_ENDED"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Refresh = %v", err)
	}
	if _, err := keystead.New(ctx, keystead.Config{}); !errors.Is(err, context.Canceled) {
		t.Errorf("New = %v", err)
	}
}

func TestCloseStopsCallInFlight(t *testing.T) {
	client := hungClient(t)
	result := make(chan error, 1)
	go func() {
		_, err := client.Get(context.Background(), "aws-sm://"+runPrefix+"hung/close")
		result <- err
	}()
	time.Sleep(200 * time.Millisecond)

	started := time.Now()
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-result:
		if !errors.Is(err, keystead.ErrClosed) {
			t.Errorf("Get = %v, want ErrClosed", err)
		}
	case <-time.After(promptly):
		t.Fatal("Get still waiting after Close")
	}
	if elapsed := time.Since(started); elapsed > promptly {
		t.Errorf("Close took %v", elapsed)
	}
}
