// Package systema is the adapter over System A, the system of record, read
// from the nightly SQLite snapshot it exports to S3 (schema v1, see
// docs/contracts.md). It downloads and validates snapshots, pins one version
// per request or reconciliation run, and serves point lookups and an ordered
// iterator as merge.Records.
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
