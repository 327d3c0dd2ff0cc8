package logging

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"

	"github.com/acme/unified-customer-service/shared/merge"
)

// EmailHashKey is the attribute carrying an email's keyed hash.
const EmailHashKey = "emailHash"

// EmailHasher turns an email into a short keyed hash that support engineers
// can correlate across log lines (and search for, given the address and the
// key) without the address itself appearing in the logs. It is safe for
// concurrent use.
type EmailHasher struct {
	key    []byte
	random bool
}

// NewEmailHasher returns a hasher keyed with key (the LOG_HASH_KEY
// setting; at least 32 random bytes are advised). With an empty key it uses
// a random key drawn once per process: hashes then correlate the lines of
// one execution environment only, and differ between cold starts and
// between functions. The key is copied.
func NewEmailHasher(key []byte) *EmailHasher {
	if len(key) == 0 {
		k := make([]byte, 32)
		rand.Read(k) // never fails (crypto/rand, Go 1.24+)
		return &EmailHasher{key: k, random: true}
	}
	return &EmailHasher{key: append([]byte(nil), key...)}
}

// RandomKey reports whether h uses a random per-process key (no key given).
func (h *EmailHasher) RandomKey() bool { return h.random }

// Hash returns the first 16 hex digits (64 bits) of
// HMAC-SHA256(key, merge.Key(email)), so that spellings of one address
// differing in case or surrounding spaces hash alike.
func (h *EmailHasher) Hash(email string) string {
	mac := hmac.New(sha256.New, h.key)
	mac.Write([]byte(merge.Key(email)))
	var sum [sha256.Size]byte
	return hex.EncodeToString(mac.Sum(sum[:0])[:8])
}

// Attr returns the attribute EmailHashKey = h.Hash(email), to log in place
// of the address: logger.InfoContext(ctx, "lookup", h.Attr(email)).
func (h *EmailHasher) Attr(email string) slog.Attr {
	return slog.String(EmailHashKey, h.Hash(email))
}
