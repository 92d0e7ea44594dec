package keystead_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"keystead.dev/keystead"
)

// eventWait bounds the wait for a rotation callback after the refresh that
// caused it returned.
const eventWait = 5 * time.Second

func nextEvent(t *testing.T, events <-chan keystead.RotationEvent) keystead.RotationEvent {
	t.Helper()
	select {
	case event := <-events:
		return event
	case <-time.After(eventWait):
		t.Fatal("no rotation event")
		return keystead.RotationEvent{}
	}
}

func TestSubscribeDeliversRotationsInOrder(t *testing.T) {
	name := runPrefix + "subscribe/password"
	createSecret(t, name, `{"password":"p1"}`)
	client := newClient(t)
	reference := "aws-sm://" + name + "#password"
	if _, err := client.Get(context.Background(), reference); err != nil {
		t.Fatal(err)
	}

	events := make(chan keystead.RotationEvent, 4)
	release := make(chan struct{})
	subscription, err := client.Subscribe(reference, func(event keystead.RotationEvent) {
		events <- event
		// A slow callback holds back only its own queue.
		<-release
	})
	if err != nil {
		t.Fatal(err)
	}
	defer subscription.Close()

	putSecretValue(t, name, `{"password":"p2"}`)
	if _, err := client.Refresh(context.Background(), reference); err != nil {
		t.Fatal(err)
	}
	first := nextEvent(t, events)

	putSecretValue(t, name, `{"password":"p3"}`)
	refreshed := make(chan error, 1)
	go func() {
		_, err := client.Refresh(context.Background(), reference)
		refreshed <- err
	}()
	select {
	case err := <-refreshed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(eventWait):
		t.Fatal("Refresh waited for a blocked callback")
	}
	close(release)
	second := nextEvent(t, events)

	for index, check := range []struct {
		event keystead.RotationEvent
		want  string
	}{{first, "p2"}, {second, "p3"}} {
		if check.event.Err != nil {
			t.Fatalf("event %d: %v", index, check.event.Err)
		}
		if check.event.Reference != reference {
			t.Errorf("event %d reference = %q", index, check.event.Reference)
		}
		if got := check.event.Secret.Reveal(); got != check.want {
			t.Errorf("event %d value = %q, want %q", index, got, check.want)
		}
	}
}

func TestSubscribeReportsFieldErrors(t *testing.T) {
	name := runPrefix + "subscribe/field"
	createSecret(t, name, `{"password":"p1"}`)
	client := newClient(t)
	reference := "aws-sm://" + name + "#password"
	if _, err := client.Get(context.Background(), reference); err != nil {
		t.Fatal(err)
	}
	events := make(chan keystead.RotationEvent, 1)
	subscription, err := client.Subscribe(reference, func(event keystead.RotationEvent) { events <- event })
	if err != nil {
		t.Fatal(err)
	}
	defer subscription.Close()

	putSecretValue(t, name, `{"user":"only"}`)
	_, _ = client.Refresh(context.Background(), reference)
	event := nextEvent(t, events)
	if event.Secret != nil || !errors.Is(event.Err, keystead.ErrFieldNotFound) {
		t.Errorf("event = %+v", event)
	}
}

func TestSubscriptionCloseStopsDelivery(t *testing.T) {
	t.Setenv("KEYSTEAD_GO_SUBSCRIBE", "a")
	client := newClient(t)
	reference := "env://KEYSTEAD_GO_SUBSCRIBE"
	if _, err := client.Get(context.Background(), reference); err != nil {
		t.Fatal(err)
	}
	events := make(chan keystead.RotationEvent, 4)
	var subscription *keystead.Subscription
	subscription, err := client.Subscribe(reference, func(event keystead.RotationEvent) {
		events <- event
		subscription.Close() // closing from inside the callback is allowed
	})
	if err != nil {
		t.Fatal(err)
	}

	t.Setenv("KEYSTEAD_GO_SUBSCRIBE", "b")
	if _, err := client.Refresh(context.Background(), reference); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, events)

	t.Setenv("KEYSTEAD_GO_SUBSCRIBE", "c")
	if _, err := client.Refresh(context.Background(), reference); err != nil {
		t.Fatal(err)
	}
	select {
	case event := <-events:
		t.Errorf("event after Close: %v", event.Secret)
	case <-time.After(300 * time.Millisecond):
	}
	subscription.Close()
}

func TestSubscribeRejectsInvalidReference(t *testing.T) {
	client := newClient(t)
	_, err := client.Subscribe("no scheme", func(keystead.RotationEvent) {})
	if !errors.Is(err, keystead.ErrInvalidReference) {
		t.Errorf("err = %v", err)
	}
}

func TestSubscribeRejectsNilCallback(t *testing.T) {
	client := newClient(t)
	subscription, err := client.Subscribe("env://HOME", nil)
	if err == nil {
		t.Fatal("Subscribe accepted a nil callback")
	}
	if subscription != nil {
		t.Errorf("subscription = %v, want nil", subscription)
	}
}
