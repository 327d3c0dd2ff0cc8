// Package demodata generates deterministic demo and test data for the
// Unified Customer Service: the same customers as System A and System B hold
// them, with a configurable mix of situations (in sync, conflicting with
// either system newer, only in one system, different only cosmetically), and
// the ground truth a reconciliation must find.
//
// Everything follows from Config: the same seed, size, mix and times give
// byte-identical files. Customers stream in join-key order (merge.Key,
// byte-wise) without an in-memory list: emails are "first.last.NNN" with a
// zero-padded index, the name pair advancing monotonically with the index,
// then an optional "+tag" and the domain (example.com or example.org only).
// Some emails are stored with upper-case ASCII letters; non-ASCII letters in
// emails are lower case except in the showcase's ShowcaseNonASCIISystemA, and
// the name lists are chosen so that SQLite's NOCASE order of System A's
// emails equals the join-key order even with it.
//
// Write produces the three files of a data set (SnapshotFile via
// systema.WriteSnapshot, SystemBFile as System B API v1 JSON Lines for the
// System B simulator, TruthFile); Generator.Pairs, SystemA and SystemB stream
// the same data for tests and benchmarks without files. Truth is tallied from
// what the generator decided, never from merge.Diff, so tests can check one
// against the other.
package demodata
