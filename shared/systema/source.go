package systema

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/acme/unified-customer-service/shared/location"
	"github.com/acme/unified-customer-service/shared/merge"
)

// ErrNoSnapshot is returned (wrapped) by a Source when the snapshot object or
// file does not exist. Its kind is merge.ErrUnavailable: System A cannot
// answer until an export puts one there.
var ErrNoSnapshot = newError("systema: snapshot not found", merge.ErrUnavailable)

// ErrChanged is returned (wrapped) by Source.Fetch and RangeReader.ReadRange
// when the object no longer is the version Stat described (replaced since:
// 412, another ETag or size, the version gone). In range mode it ends every
// read of that snapshot (never pages of two versions) and the next Acquire
// loads the current version. Its kind is merge.ErrUnavailable: looking
// again helps.
var ErrChanged = newError("systema: snapshot changed while fetching", merge.ErrUnavailable)

// Version identifies one version of the snapshot object. Stat fills URI,
// ETag, VersionID, Size and LastModified; a loaded Snapshot adds ExportedAt
// (snapshot_meta's exported_at).
type Version struct {
	URI          string    // where the snapshot lives (SNAPSHOT_URI), never PII
	ETag         string    // S3 ETag; for file:// a synthesised size-mtime tag
	VersionID    string    // S3 VersionId; "" when the bucket is not versioned
	Size         int64     // bytes
	LastModified time.Time // object (or file) modification time
	ExportedAt   time.Time // snapshot_meta exported_at; zero until validated
	Manifest     Manifest  // the object's manifest metadata; zero when it has none
}

// Same reports whether v and o name the same object version: the same
// VersionId when both have one, else the same ETag and size.
func (v Version) Same(o Version) bool {
	if v.URI != o.URI {
		return false
	}
	if v.VersionID != "" && o.VersionID != "" {
		return v.VersionID == o.VersionID
	}
	return v.ETag == o.ETag && v.Size == o.Size && v.VersionID == o.VersionID
}

// String renders the version for logs (no PII: URI, ETag, VersionId).
func (v Version) String() string {
	s := v.URI + " etag=" + v.ETag
	if v.VersionID != "" {
		s += " versionId=" + v.VersionID
	}
	return s
}

// Source is where snapshots come from. It is deliberately small: Stat names
// the current version, Fetch streams that exact version into dst. A Source
// that is also a RangeReader can be read in place (range mode).
type Source interface {
	// Stat returns the current version of the snapshot; an error wrapping
	// ErrNoSnapshot when there is none.
	Stat(ctx context.Context) (Version, error)
	// Fetch writes version v (as Stat returned it) to dst, streamed. It
	// fails (wrapping ErrChanged) rather than write another version.
	Fetch(ctx context.Context, v Version, dst *os.File) error
}

// URI is a parsed SNAPSHOT_URI: s3://bucket/key or file:///abs/path.db.
type URI = location.URI

// ParseURI parses a SNAPSHOT_URI value (location.Parse). Errors name the
// setting and say what form is expected.
func ParseURI(s string) (URI, error) {
	u, err := location.Parse("SNAPSHOT_URI", s, location.Object)
	if err != nil {
		return URI{}, fmt.Errorf("systema: %w", err)
	}
	return u, nil
}

// NewSource returns the Source for u. An s3 URI needs client (built by the
// caller from the default AWS config, so AWS_ENDPOINT_URL_S3 applies); a file
// URI ignores it.
func NewSource(u URI, client S3API) (Source, error) {
	switch u.Scheme {
	case "s3":
		if client == nil {
			return nil, fmt.Errorf("systema: SNAPSHOT_URI %s needs an S3 client", u)
		}
		return NewS3Source(client, u.Bucket, u.Key), nil
	case "file":
		return NewFileSource(u.Path), nil
	default:
		return nil, fmt.Errorf("systema: SNAPSHOT_URI: unsupported scheme %q", u.Scheme)
	}
}
