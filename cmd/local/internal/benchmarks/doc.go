// Package benchmarks holds the service's end-to-end benchmarks (issue 5,
// "Benchmarks"): the real bootstraps, built for this machine with the
// Makefile as the local tool builds them, run in the local tool's Lambda
// sandbox against the real local servers (the embedded S3 server with the
// System A snapshot, the System B simulator with the matching customers),
// all on 127.0.0.1.
//
// The tests are behind the build tag bench, so `make test` does not run them:
//
//	go test -tags bench -run 'TestE2E' -v -timeout 30m ./cmd/local/internal/benchmarks/
//
// They measure, and print as tables:
//
//   - TestE2EReconcile: the reconciliation of 100,000 and 1,000,000
//     customers (the generator's default mix), cold (the run downloads and
//     validates the snapshot) and warm (the same process, the snapshot kept):
//     REPORT Duration, customers/s, the function process's peak RSS (REPORT
//     Max Memory Used, VmHWM) and Init Duration. Each run's summary must equal
//     the generator's ground truth, or the test fails.
//   - TestE2ELookup: GET /customer/{email} through start-api's HTTP server
//     with System B at zero added latency: the cold start (Init Duration and
//     the first answer, which downloads and validates the snapshot) and the
//     warm p50/p99 over sequential requests for existing customers, beside
//     the function's own REPORT Duration, its System B call (the
//     system_b.latency EMF samples) and direct GETs to the simulator, for a
//     10,000 and a 1,000,000-customer snapshot.
//   - TestE2ECapture: CaptureAFunction on S3 "Object Created" events against
//     a kfake broker: the baseline of the 1,000,000-customer snapshot, a
//     snapshot with about 1% of the customers changed, and a first run in
//     snapshot mode (every customer a create): REPORT Duration and peak
//     RSS; the counts and the records on the topic must be the expected ones.
//   - TestE2EBootstrapSizes: the bootstraps' sizes for Lambda (linux/arm64,
//     the Makefile's build-<LogicalId> targets as `make build` runs them).
//   - TestProfileReconcile: the reconciliation in this process (shared/app's
//     wiring against the same servers), for `go test -cpuprofile` and
//     `-memprofile`.
//
// Generated data sets are cached under .local/bench/<N>/ (git-ignored) and
// reused. Speed is printed, never asserted; correctness is asserted. Flags
// (after the package): -e2e.reconcile, -e2e.cold, -e2e.lookups, -e2e.warmup,
// -e2e.repeat, -e2e.profile-n.
package benchmarks
