// Package systema is the adapter over System A, the system of record, read
// from the nightly SQLite snapshot it exports to S3 (schema v1, see
// docs/contracts.md).
//
// A Source (S3Source, FileSource; see ParseURI and NewSource for
// SNAPSHOT_URI) names and streams snapshot versions. A Store downloads the
// current version to a local file, validates it (SQLite header, rollback
// journal, schema_version, columns, the NOCASE email key, quick_check),
// opens it read-only with modernc.org/sqlite and looks for a newer version
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
