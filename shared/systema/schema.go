// Package systema is the adapter over System A, the system of record, read
// from the nightly SQLite snapshot it exports to S3 (schema v1, see
// docs/contracts.md).
//
// A Source (S3Source, FileSource; see ParseURI and NewSource for
// SNAPSHOT_URI) names and streams snapshot versions. A Store opens the
// current version in one of two modes (Config.Mode, SNAPSHOT_MODE). In range
// mode (ModeRange, S3 only) it reads the object in place: an SQLite VFS
// (modernc.org/sqlite/vfs) over ranged GETs of the pinned VersionId (else
// If-Match on the ETag), through a bounded LRU page cache with readahead
// that doubles on sequential reads; a version that changes under it is
// ErrChanged, never mixed pages. In download mode (ModeDownload) it copies
// the version to a local file and checks the manifest's SHA-256 and
// quick_check. Either way it validates the SQLite header (rollback journal,
// page size, length), the export's Manifest (object metadata), the
// schema_version, columns and the NOCASE email key, opens the database
// read-only and immutable with modernc.org/sqlite and looks for a newer version
// at most every RefreshEvery, in a refresh of its own that a request waits
// for only until its deadline's reserve; a version exported before the one
// served is refused. Acquire pins one version (a Snapshot) for a request or
// a whole reconciliation run; Snapshot.Lookup reads one customer by email,
// Snapshot.All streams every customer in join order, yielding a
// *merge.BadRecordError for a malformed row and carrying on. Failures to
// read System A wrap ErrUnavailable; every sentinel also carries its
// merge.ErrorKind (see errors.go).
package systema

// SchemaVersion is the snapshot schema version this package reads.
const SchemaVersion = "1"

// Schema is the DDL of a version 1 snapshot, as System A's batch writes it.
const Schema = `CREATE TABLE customers (
  email            TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,
  first_name       TEXT,
  last_name        TEXT,
  phone            TEXT,
  address_line1    TEXT,
  city             TEXT,
  postal_code      TEXT,
  country          TEXT,
  marketing_opt_in INTEGER,
  loyalty_tier     TEXT,
  last_updated     TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE snapshot_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);`
