// Package dedup is the sync worker's idempotency store (the consistency
// model's "Idempotency Considerations"): the ids of the change events it
// has processed, kept for a TTL, and per customer and system the
// lastUpdated of the newest change it has applied (a watermark that only
// moves forward). Open picks the implementation from DEDUP_STORE:
// dynamodb://table (AWS, conditional writes and a TTL attribute) or
// file:///abs/path (an embedded SQLite file, for the local loop and tests).
package dedup

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
)

// Store remembers processed event ids and applied watermarks. Its errors
// are of kind merge.ErrUnavailable when the store cannot be reached.
type Store interface {
	// Seen reports whether id was recorded and its TTL has not run out.
	Seen(ctx context.Context, id string) (bool, error)
	// Applied returns the lastUpdated of the newest change of system
	// applied for key; the zero time when none was.
	Applied(ctx context.Context, key string, system merge.Source) (time.Time, error)
	// Record stores the outcome of processed events: each entry's id, kept
	// for ttl, and, when its LastUpdated is set, its key's watermark for
	// its system, moved only forward (an older or equal time leaves the
	// stored one, and is no error). On an error some entries may have been
	// stored; recording them again is harmless.
	Record(ctx context.Context, ttl time.Duration, entries ...Entry) error
}

// Entry is one processed event for Store.Record.
type Entry struct {
	ID          string       // the event id
	Key         string       // the customer's join key (with LastUpdated)
	System      merge.Source // the system whose change it was (with LastUpdated)
	LastUpdated time.Time    // the change's lastUpdated; zero: the id only (a skipped event)
}

// Location is a parsed DEDUP_STORE value.
type Location struct {
	Scheme string // "dynamodb" or "file"
	Table  string // the DynamoDB table (dynamodb)
	Path   string // the absolute path of the SQLite file (file)
}

// ParseLocation parses a DEDUP_STORE value: dynamodb://table or
// file:///abs/path. Its errors are of kind merge.ErrInvalid.
func ParseLocation(s string) (Location, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || s == "" {
		return Location{}, fmt.Errorf("dedup: %w: want dynamodb://table or file:///abs/path", merge.ErrInvalid)
	}
	switch u.Scheme {
	case "dynamodb":
		if u.Host == "" || (u.Path != "" && u.Path != "/") {
			return Location{}, fmt.Errorf("dedup: %w: want dynamodb://table (a table name, no path)", merge.ErrInvalid)
		}
		return Location{Scheme: "dynamodb", Table: u.Host}, nil
	case "file":
		if u.Host != "" || !strings.HasPrefix(u.Path, "/") || strings.HasSuffix(u.Path, "/") {
			return Location{}, fmt.Errorf("dedup: %w: want file:///abs/path (an absolute file path)", merge.ErrInvalid)
		}
		return Location{Scheme: "file", Path: u.Path}, nil
	}
	return Location{}, fmt.Errorf("dedup: %w: want dynamodb://table or file:///abs/path", merge.ErrInvalid)
}

// expired reports whether an entry that expires at exp is gone at now.
func expired(exp, now time.Time) bool { return !now.Before(exp) }
