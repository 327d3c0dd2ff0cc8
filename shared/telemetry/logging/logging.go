// Package logging builds the log/slog JSON loggers of the Lambda functions.
//
// Every record carries the Lambda request id (taken from the context by a
// function the caller injects, so this package does not import Lambda).
// Customer data is personal data: emails appear only as a keyed hash
// (EmailHasher), and a guard redacts attributes named like personal data or
// secrets (email, phone, firstName, lastName, token, authorization...) and
// scrubs email addresses out of messages, strings and errors, should anyone
// log them by mistake.
package logging

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/acme/unified-customer-service/shared/telemetry/internal/pii"
)

// RequestIDKey is the attribute carrying the request id.
const RequestIDKey = "requestId"

// ErrInvalidLevel is wrapped by the error of ParseLevel and New for a
// LOG_LEVEL that is not one of Levels.
var ErrInvalidLevel = errors.New("logging: invalid LOG_LEVEL")

// Levels returns the LOG_LEVEL values, least severe first: the template's
// AllowedValues for its LogLevel parameter are the same list.
func Levels() []string { return []string{"debug", "info", "warn", "error"} }

// ParseLevel parses a LOG_LEVEL setting, exactly one of Levels (lower
// case, as CloudFormation checks AllowedValues), surrounding spaces
// ignored; "" is info. It is the only parser of the setting: config.Load
// checks it with this function too.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.TrimSpace(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%w: %q, want one of %s", ErrInvalidLevel, s, strings.Join(Levels(), ", "))
}

// Option configures New.
type Option func(*config)

// config holds what the options set.
type config struct {
	requestID func(context.Context) string
	now       func() time.Time
}

// WithRequestID makes every record carry RequestIDKey with the id fn
// returns for the record's context (records logged without a context, or
// for which fn returns "", carry none). The functions pass a fn that reads
// lambdacontext.FromContext(ctx).AwsRequestID.
func WithRequestID(fn func(context.Context) string) Option {
	return func(c *config) { c.requestID = fn }
}

// WithClock replaces the time of every record by now(), for tests and
// examples whose output must not change.
func WithClock(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

// New returns a JSON logger writing to w at the LOG_LEVEL level (see
// ParseLevel), with the Redact guard, and with the request id when
// WithRequestID is given. Use the *Context methods (InfoContext...) so that
// the request id can be found.
func New(w io.Writer, level string, opts ...Option) (*slog.Logger, error) {
	if w == nil {
		return nil, errors.New("logging: nil writer")
	}
	lvl, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	var c config
	for _, o := range opts {
		o(&c)
	}
	replace := Redact
	if c.now != nil {
		replace = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Time(slog.TimeKey, c.now())
			}
			return Redact(groups, a)
		}
	}
	var h slog.Handler = slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lvl, ReplaceAttr: replace})
	if c.requestID != nil {
		h = NewRequestIDHandler(h, c.requestID)
	}
	return slog.New(h), nil
}

// Redact is the slog.HandlerOptions.ReplaceAttr guard of New, exported for
// handlers built elsewhere. It replaces by pii.Redacted ("[REDACTED]") the
// value of an attribute whose name, or the name of an enclosing group,
// denotes personal data or a secret (email, phone, firstName, lastName, any
// name containing token, authorization, password or secret; "emailHash" is
// fine), and replaces every email address inside the message, string
// values, errors and other values by "[email]".
func Redact(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 {
		switch a.Key {
		case slog.TimeKey, slog.LevelKey, slog.SourceKey:
			return a
		case slog.MessageKey:
			return slog.String(a.Key, pii.Scrub(a.Value.String()))
		}
	}
	if pii.SensitiveKey(a.Key) {
		return slog.String(a.Key, pii.Redacted)
	}
	for _, g := range groups {
		if pii.SensitiveKey(g) {
			return slog.String(a.Key, pii.Redacted)
		}
	}
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); strings.ContainsAny(s, "@%") {
			return slog.String(a.Key, pii.Scrub(s))
		}
	case slog.KindAny:
		return scrubAny(a)
	}
	return a
}

// scrubAny scrubs an attribute of kind Any: an error becomes its scrubbed
// message; another value is scrubbed in its JSON encoding, which the JSON
// handler then writes as is.
func scrubAny(a slog.Attr) slog.Attr {
	v := a.Value.Any()
	if err, ok := v.(error); ok {
		return slog.String(a.Key, pii.Scrub(err.Error()))
	}
	b, err := json.Marshal(v)
	if err != nil { // the handler reports it; nothing of the value is written
		return a
	}
	if s := pii.Scrub(string(b)); s != string(b) {
		return slog.Any(a.Key, json.RawMessage(s))
	}
	return a
}

// requestIDHandler adds the request id found in the context to each record.
type requestIDHandler struct {
	next      slog.Handler
	requestID func(context.Context) string
}

var _ slog.Handler = requestIDHandler{}

// NewRequestIDHandler wraps next so that each record carries RequestIDKey
// with requestID(ctx) when that is not empty. Like any attribute added to a
// record, it lands in the logger's current group, if any.
func NewRequestIDHandler(next slog.Handler, requestID func(context.Context) string) slog.Handler {
	return requestIDHandler{next: next, requestID: requestID}
}

// Enabled reports whether next handles records at level.
func (h requestIDHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle adds the request id and passes the record to next.
func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		if id := h.requestID(ctx); id != "" {
			r = r.Clone()
			r.AddAttrs(slog.String(RequestIDKey, id))
		}
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs returns the wrapper around next.WithAttrs(attrs).
func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{next: h.next.WithAttrs(attrs), requestID: h.requestID}
}

// WithGroup returns the wrapper around next.WithGroup(name).
func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{next: h.next.WithGroup(name), requestID: h.requestID}
}
