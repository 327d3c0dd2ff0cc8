// Package faults is the automated fault matrix of the Unified Customer
// Service (issue 5): one test per row, each injecting its fault through the
// real protocol and asserting the behaviour, the EMF metric lines and the
// JSON logs of the functions.
//
// The tests drive the REAL bootstraps: TestMain builds LookupFunction,
// SyncFunction, ReconcileFunction, CaptureAFunction, System B's capture
// functions (CaptureBWebhookFunction, CaptureBPollFunction, publishing to an
// embedded kfake broker the capture rows stop and restart) and SyncWorkerFunction once
// for this machine through the Makefile (the build package, as `local invoke` does), and every test runs
// them as warm child processes behind the sandbox's Lambda Runtime API, with
// the template's environment plus the test's overrides, against its own
// embedded versioned S3 server (s3local) holding a real snapshot written by
// shared/demodata, and its own System B simulator (bsim) whose faults the
// test switches. Faults the simulator does not have are injected by
// httptest servers: a redirect target, and an S3 proxy that answers
// 503 SlowDown or holds requests. Only row 8 (a new snapshot appearing at a
// precise moment of a reconciliation run) drives shared/app and
// shared/reconcile in-process, against the same real servers. The capture
// rows (20 to 22) give CaptureAFunction its own embedded Kafka broker
// (kfake, the real protocol) on a 127.0.0.1 port, stopped and started
// again to make it unreachable, and read the topic with a plain client.
// The sync worker rows (23 to 26: a poison record, System B down, a
// redelivered batch, the broker down) do the same with the worker's topics,
// invoking SyncWorkerFunction with MSK-shaped Kafka events; its dedup store
// is a SQLite file of the rig.
//
// Every line the functions log during the suite is collected and scanned
// for the data set's emails, names and phone numbers, the System B token and
// the fake AWS credentials (row 15).
//
// The package holds tests only. The fast rows run with `go test`; longer
// variants are behind the soak build tag:
//
//	go test ./cmd/local/internal/faults/
//	go test -tags soak ./cmd/local/internal/faults/
package faults
