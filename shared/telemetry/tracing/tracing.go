// Package tracing is the one place that knows the tracing backend: today
// AWS X-Ray (github.com/aws/aws-xray-sdk-go, in maintenance mode), later
// OpenTelemetry. Nothing else in the repository imports the X-Ray SDK.
//
// In Lambda with active tracing, the runtime puts the trace header in the
// invocation context and the spans of this package become X-Ray
// subsegments of the function's segment. Everywhere else (tests, the local
// tool, a context without a segment or trace header) every function here
// is a cheap no-op: no error logs from the SDK, no panics, no blocking.
//
// Personal data stays out of traces: errors recorded on a span have their
// email addresses scrubbed, and traced HTTP calls record their URL without
// query, user info or path segments holding an address.
//
// Building with the tag noxray (go build -tags noxray) replaces the X-Ray
// implementation by no-ops with the same API and leaves the SDK out of the
// binary (about 15 MB smaller for linux/arm64; see the package tests).
//
// One limitation of the SDK: when the environment variable
// AWS_XRAY_CONTEXT_MISSING is RUNTIME_ERROR, its AWS SDK instrumentation
// panics on a call made without a segment; do not set it.
package tracing

// Span names used by the service.
const (
	SpanSnapshotFetch   = "systema.snapshot_fetch"
	SpanSnapshotRefresh = "systema.snapshot_refresh"
	SpanSQLiteQuery     = "systema.sqlite_query"
	SpanSystemBCall     = "systemb.call"
	SpanReconcileJoin   = "reconcile.join"
	SpanReconcileReport = "reconcile.write_report"
)
