// Package telemetry groups the observability packages of the Unified
// Customer Service; the code lives in its subpackages:
//
//   - emf: CloudWatch Embedded Metric Format documents on stdout;
//   - logging: log/slog JSON logs with the Lambda request id, keyed email
//     hashes and a guard that redacts personal data and secrets;
//   - tracing: AWS X-Ray subsegments behind one small API, so that the
//     X-Ray SDK can later be swapped for OpenTelemetry in one place.
package telemetry
