// Package systemb is the adapter over System B, the external near-real-time
// REST API (v1, see docs/contracts.md): its JSON codec, and a client with
// per-call deadlines, bounded retries and a streaming pager. Vendor errors
// become the sentinel errors of this package at the boundary.
package systemb
