package keystead

import (
	"testing"
	"time"
)

func TestClassNamesMatchCore(t *testing.T) {
	for class := ClassInvalidReference; class <= ClassInternal; class++ {
		if got, want := class.String(), coreClassName(class); got != want {
			t.Errorf("class %d: Go name %q, core name %q", int(class), got, want)
		}
	}
	if got := coreClassName(ClassInternal + 1); got != "unknown" {
		t.Errorf("core knows a class after ClassInternal: %q; add it to the Go binding", got)
	}
}

func TestSentinelsMatchOwnClassOnly(t *testing.T) {
	for class := ClassInvalidReference; class <= ClassInternal; class++ {
		err := newError(class, "env://X", "message", nil)
		for other := ClassInvalidReference; other <= ClassInternal; other++ {
			if got, want := err.Is(sentinels[other]), class == other; got != want {
				t.Errorf("%v error Is(%v sentinel) = %v", class, other, got)
			}
		}
	}
}

func TestDurationTextUsesLargestExactUnit(t *testing.T) {
	cases := map[time.Duration]string{
		2 * time.Hour:           "2h",
		90 * time.Minute:        "90m",
		90 * time.Second:        "90s",
		1500 * time.Millisecond: "1500ms",
		3 * time.Microsecond:    "3us",
		7:                       "7ns",
		-5 * time.Second:        "-5s",
	}
	for duration, want := range cases {
		if got := durationText(duration); got != want {
			t.Errorf("durationText(%v) = %q, want %q", duration, got, want)
		}
	}
}

func TestConfigJSONLeavesOutZeroValues(t *testing.T) {
	text, err := Config{}.encode()
	if err != nil {
		t.Fatal(err)
	}
	if string(text) != "{}" {
		t.Errorf("empty config = %s", text)
	}
	text, err = Config{
		Cache:   CacheConfig{TTL: time.Minute, DisableCaching: true, MaxEntries: 5},
		AWS:     AWSConfig{Region: "eu-west-1"},
		Secrets: []SecretConfig{{Reference: "env://A", Tags: map[string]string{"owner": "go"}}},
	}.encode()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"aws":{"region":"eu-west-1"},"cache":{"max_entries":5,"ttl":"0s"},"secret":[{"ref":"env://A","tags":{"owner":"go"}}]}`
	if string(text) != want {
		t.Errorf("config = %s\nwant     %s", text, want)
	}
}
