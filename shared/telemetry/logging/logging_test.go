package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// requestIDKey is the context key of the fake request id.
type requestIDKey struct{}

// requestIDFrom is the injected request id function of the tests.
func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// newTest returns a debug logger writing to a buffer, with the request id.
func newTest(t *testing.T) (*slog.Logger, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	l, err := New(&buf, "debug", WithRequestID(requestIDFrom))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return l, &buf
}

// lines decodes the JSON lines in buf.
func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("not a JSON line: %v\n%s", err, line)
		}
		out = append(out, m)
	}
	return out
}

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    slog.Level
		wantErr bool
	}{
		{"", slog.LevelInfo, false},
		{"debug", slog.LevelDebug, false},
		{" warn ", slog.LevelWarn, false},
		// One spelling per level, the template's AllowedValues.
		{"DEBUG", 0, true},
		{"Info", 0, true},
		{"WARN", 0, true},
		{"warning", 0, true},
		{"error", slog.LevelError, false},
		{"verbose", 0, true},
		{"trace", 0, true},
		{"0", 0, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			got, err := ParseLevel(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidLevel) {
					t.Fatalf("error = %v, want ErrInvalidLevel", err)
				}
				for _, s := range []string{"LOG_LEVEL", "debug", "info", "warn", "error", tt.in} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not name %q", err, s)
					}
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseLevel(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestLevelsParse(t *testing.T) {
	want := []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError}
	levels := Levels()
	if len(levels) != len(want) {
		t.Fatalf("Levels() = %v, want %d levels", levels, len(want))
	}
	for i, s := range levels {
		t.Run(s, func(t *testing.T) {
			if got, err := ParseLevel(s); err != nil || got != want[i] {
				t.Errorf("ParseLevel(%q) = %v, %v; want %v", s, got, err, want[i])
			}
		})
	}
}

func TestNewLevel(t *testing.T) {
	var buf bytes.Buffer
	if _, err := New(&buf, "loud"); !errors.Is(err, ErrInvalidLevel) {
		t.Fatalf("New with a bad level: %v", err)
	}
	if _, err := New(nil, "info"); err == nil {
		t.Fatalf("New with a nil writer did not fail")
	}
	l, err := New(&buf, "warn")
	if err != nil {
		t.Fatal(err)
	}
	l.Info("dropped")
	l.Warn("kept")
	got := lines(t, &buf)
	if len(got) != 1 || got[0]["msg"] != "kept" || got[0]["level"] != "WARN" {
		t.Errorf("got %v, want only the warning", got)
	}
}

func TestRequestID(t *testing.T) {
	l, buf := newTest(t)
	ctx := context.WithValue(context.Background(), requestIDKey{}, "c6af9ac6-7b61-11e6-9a41-93e812345678")
	l.InfoContext(ctx, "with id", "n", 1)
	l.With("fn", "lookup").WarnContext(ctx, "with attrs")
	l.Info("no context")
	got := lines(t, buf)
	if len(got) != 3 {
		t.Fatalf("got %d lines", len(got))
	}
	for i, want := range []any{"c6af9ac6-7b61-11e6-9a41-93e812345678", "c6af9ac6-7b61-11e6-9a41-93e812345678", nil} {
		if got[i][RequestIDKey] != want {
			t.Errorf("line %d: requestId = %v, want %v", i, got[i][RequestIDKey], want)
		}
	}
	if got[1]["fn"] != "lookup" {
		t.Errorf("WithAttrs lost the attribute: %v", got[1])
	}
}

// secretError is an error whose message holds an address.
type secretError struct{}

func (secretError) Error() string { return "systemb: get customer Ana.Lima@Example.com: 404" }

// customer is a value logged as a whole by mistake.
type customer struct {
	Contact string `json:"contact"`
	City    string `json:"city"`
}

// LogValue makes nested is a slog.LogValuer returning a group.
type nested struct{}

func (nested) LogValue() slog.Value {
	return slog.GroupValue(slog.String("email", "x@y.z"), slog.Int("n", 2))
}

func TestNoPIIReachesOutput(t *testing.T) {
	const email, token = "Ana.Lima@Example.com", "s3cr3t-t0ken-value"
	tests := []struct {
		name string
		log  func(l *slog.Logger)
		want map[string]any // expected members of the line
	}{
		{"email attr", func(l *slog.Logger) { l.Info("m", "email", email) }, map[string]any{"email": "[REDACTED]"}},
		{"Email attr", func(l *slog.Logger) { l.Info("m", slog.String("Email", email)) }, map[string]any{"Email": "[REDACTED]"}},
		{"phone", func(l *slog.Logger) { l.Info("m", "phone", "+351 912 345 678") }, map[string]any{"phone": "[REDACTED]"}},
		{"names", func(l *slog.Logger) { l.Info("m", "firstName", "Ana", "lastName", "Lima") },
			map[string]any{"firstName": "[REDACTED]", "lastName": "[REDACTED]"}},
		{"token", func(l *slog.Logger) { l.Info("m", "token", token) }, map[string]any{"token": "[REDACTED]"}},
		{"authorization", func(l *slog.Logger) { l.Info("m", "Authorization", "Bearer "+token) }, map[string]any{"Authorization": "[REDACTED]"}},
		{"token of any type", func(l *slog.Logger) { l.Info("m", "systemBToken", []byte(token)) }, map[string]any{"systemBToken": "[REDACTED]"}},
		{"email in message", func(l *slog.Logger) { l.Info("lookup " + email + " failed") }, map[string]any{"msg": "lookup [email] failed"}},
		{"email in other attr", func(l *slog.Logger) { l.Info("m", "url", "/customer/"+email) }, map[string]any{"url": "/customer/[email]"}},
		{"email in error", func(l *slog.Logger) { l.Error("m", "err", secretError{}) }, map[string]any{"err": "systemb: get customer [email]: 404"}},
		{"wrapped error", func(l *slog.Logger) { l.Error("m", "err", fmt.Errorf("lookup: %w", secretError{})) },
			map[string]any{"err": "lookup: systemb: get customer [email]: 404"}},
		{"email in struct", func(l *slog.Logger) { l.Info("m", "c", customer{Contact: email, City: "Porto"}) },
			map[string]any{"c": map[string]any{"contact": "[email]", "city": "Porto"}}},
		{"email group", func(l *slog.Logger) { l.Info("m", slog.Group("email", "local", "ana", "domain", "example.com")) },
			map[string]any{"email": map[string]any{"local": "[REDACTED]", "domain": "[REDACTED]"}}},
		{"in group", func(l *slog.Logger) { l.WithGroup("req").Info("m", "email", email) },
			map[string]any{"req": map[string]any{"email": "[REDACTED]"}}},
		{"with attrs", func(l *slog.Logger) { l.With("token", token).Info("m") }, map[string]any{"token": "[REDACTED]"}},
		{"log valuer", func(l *slog.Logger) { l.Info("m", "v", nested{}) },
			map[string]any{"v": map[string]any{"email": "[REDACTED]", "n": 2.0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, buf := newTest(t)
			tt.log(l)
			out := buf.String()
			for _, secret := range []string{email, strings.ToLower(email), token, "Lima", "912 345", "x@y.z"} {
				if strings.Contains(out, secret) {
					t.Errorf("output contains %q: %s", secret, out)
				}
			}
			got := lines(t, buf)[0]
			for k, want := range tt.want {
				if fmt.Sprint(got[k]) != fmt.Sprint(want) {
					t.Errorf("%s = %v, want %v", k, got[k], want)
				}
			}
		})
	}
}

func TestHarmlessAttrsUnchanged(t *testing.T) {
	l, buf := newTest(t)
	l.Info("snapshot refreshed", "version", "v3", "rows", 1200, "progress", "50%", "ok", true, "emailHash", "0123456789abcdef")
	got := lines(t, buf)[0]
	want := map[string]any{"msg": "snapshot refreshed", "version": "v3", "rows": 1200.0, "progress": "50%", "ok": true, "emailHash": "0123456789abcdef"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

func TestWithClock(t *testing.T) {
	var buf bytes.Buffer
	at := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	l, err := New(&buf, "", WithClock(func() time.Time { return at }))
	if err != nil {
		t.Fatal(err)
	}
	l.Info("m", "email", "a@b.c")
	got := lines(t, &buf)[0]
	if got["time"] != "2025-03-14T09:00:00Z" || got["email"] != "[REDACTED]" {
		t.Errorf("got %v", got)
	}
}

func BenchmarkInfo(b *testing.B) {
	var buf bytes.Buffer
	l, err := New(&buf, "info", WithRequestID(requestIDFrom))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.WithValue(context.Background(), requestIDKey{}, "c6af9ac6-7b61-11e6-9a41-93e812345678")
	h := NewEmailHasher([]byte("k"))
	for b.Loop() {
		buf.Reset()
		l.InfoContext(ctx, "lookup", h.Attr("ana@example.com"), "status", 200, "partial", false)
	}
}
