// Package webhook signs and verifies System B's change notifications (see
// docs/contracts.md, "System B webhooks"): an HMAC-SHA256, with a secret
// both sides share, over the delivery's Unix time, a dot and the raw body,
// sent as
//
//	X-SystemB-Signature: t=1700000000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd
//
// A header may carry several v1 entries (one per secret while System B
// rotates it); one match is enough. A delivery older or newer than the
// tolerance (5 minutes) is refused, so a captured request cannot be replayed
// later. The package does no I/O and keeps no state.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
)

// The request headers of a delivery.
const (
	// HeaderSignature carries "t=<unix seconds>,v1=<hex HMAC-SHA256>".
	HeaderSignature = "X-SystemB-Signature"
	// HeaderDelivery carries System B's id of the delivery (the same on
	// every retry of one notification).
	HeaderDelivery = "X-SystemB-Delivery"
)

// Tolerance is how far a delivery's time may be from the receiver's clock,
// either way: older deliveries are replays (or stuck retries, which System
// B signs afresh), newer ones a broken clock.
const Tolerance = 5 * time.Minute

// MaxHeaderBytes bounds the signature header Verify reads.
const MaxHeaderBytes = 1024

// Errors of Verify. Each is of kind merge.ErrUnauthorized, and none quotes
// the header, the body or the secret.
var (
	// ErrMissing: no signature header.
	ErrMissing = fmt.Errorf("webhook: no %s header: %w", HeaderSignature, merge.ErrUnauthorized)
	// ErrMalformed: the header is not "t=<unix>,v1=<hex>[,v1=<hex>...]".
	ErrMalformed = fmt.Errorf("webhook: malformed %s header: %w", HeaderSignature, merge.ErrUnauthorized)
	// ErrTooOld: the delivery's time is outside the tolerance.
	ErrTooOld = fmt.Errorf("webhook: signature time outside the %v tolerance: %w", Tolerance, merge.ErrUnauthorized)
	// ErrBadSignature: no v1 entry matches the body under any secret.
	ErrBadSignature = fmt.Errorf("webhook: signature does not match: %w", merge.ErrUnauthorized)
	// ErrNoSecret: the receiver has no secret to verify with.
	ErrNoSecret = fmt.Errorf("webhook: no secret configured: %w", merge.ErrUnauthorized)
)

// Sign returns the signature header value for body sent at t under secret.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks header (the value of HeaderSignature) against body under
// any of secrets (the current one, and the previous one during a rotation),
// with now the receiver's clock. It returns the delivery's signed time, or
// one of the errors above.
func Verify(header string, body []byte, secrets [][]byte, now time.Time) (time.Time, error) {
	if len(secrets) == 0 {
		return time.Time{}, ErrNoSecret
	}
	header = strings.TrimSpace(header)
	switch {
	case header == "":
		return time.Time{}, ErrMissing
	case len(header) > MaxHeaderBytes:
		return time.Time{}, ErrMalformed
	}
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return time.Time{}, ErrMalformed
		}
		switch k {
		case "t":
			if ts != "" {
				return time.Time{}, ErrMalformed
			}
			ts = v
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				return time.Time{}, ErrMalformed
			}
			sigs = append(sigs, sig)
		default:
			// Other schemes (a future v2) are ignored, as providers do.
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec <= 0 || len(sigs) == 0 {
		return time.Time{}, ErrMalformed
	}
	signed := time.Unix(sec, 0)
	if d := now.Sub(signed); d > Tolerance || d < -Tolerance {
		return time.Time{}, ErrTooOld
	}
	for _, secret := range secrets {
		if len(secret) == 0 {
			continue
		}
		want := mac(secret, ts, body)
		for _, sig := range sigs {
			if hmac.Equal(sig, want) {
				return signed, nil
			}
		}
	}
	return time.Time{}, ErrBadSignature
}

// ParseSecrets reads the secret setting: one secret, or the current and
// the previous one separated by a comma during a rotation. Blank entries
// are dropped; no secret at all is an error.
func ParseSecrets(s string) ([][]byte, error) {
	var out [][]byte
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, []byte(part))
		}
	}
	if len(out) == 0 {
		return nil, errors.New("webhook: the secret is empty")
	}
	return out, nil
}
