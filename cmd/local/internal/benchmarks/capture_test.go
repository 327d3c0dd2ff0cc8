//go:build bench

package benchmarks

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	_ "modernc.org/sqlite" // the "sqlite" driver, to change the snapshot

	"github.com/acme/unified-customer-service/cmd/local/internal/sandbox"
	"github.com/acme/unified-customer-service/cmd/local/internal/schedule"
	"github.com/acme/unified-customer-service/shared/capturea"
	"github.com/acme/unified-customer-service/shared/changes"
	"github.com/acme/unified-customer-service/shared/demodata"
	"github.com/acme/unified-customer-service/shared/kafka/kafkatest"
	"github.com/acme/unified-customer-service/shared/merge"
)

// captureRun is one measured invocation of CaptureAFunction.
type captureRun struct {
	n    int
	rep  int
	kind string // "baseline" (first run, CAPTURE_A_FIRST_RUN=baseline), "1% changed", "full snapshot"
	res  *sandbox.Result
	out  capturea.Result
	load loadSpan
}

// changeSnapshot copies the snapshot at src to dst, exported a day later,
// with about 1% of its customers changed, spread over the key range: a
// third updated (phone and last_updated), a third deleted, a third
// inserted (new emails). It returns the expected counts.
func changeSnapshot(t *testing.T, src, dst string) capturea.Counts {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", dst)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// A cheap spread of the rows: a hash of the email's bytes mod 160 (about 0.33% of the rows each).
	const bucket = "((unicode(substr(email, 2, 1)) * 7919 + unicode(substr(email, 5, 1)) * 31 + length(email)) % 160)"
	var cols []string
	for _, f := range merge.Fields {
		cols = append(cols, f.Column)
	}
	cols = append(cols, "last_updated")
	sel := "'capture-bench-' || email, " + strings.Join(cols[1:], ", ")
	var want capturea.Counts
	for _, st := range []struct {
		sql string
		n   *int
	}{
		{"UPDATE snapshot_meta SET value = strftime('%Y-%m-%dT%H:%M:%SZ', value, '+1 day') WHERE key = 'exported_at'", nil},
		{"UPDATE customers SET phone = '+44 20 7946 0999', last_updated = '2030-01-01T00:00:00Z' WHERE " + bucket + " = 0", &want.Updates},
		{"DELETE FROM customers WHERE " + bucket + " = 1", &want.Deletes},
		{"INSERT INTO customers (" + strings.Join(cols, ", ") + ") SELECT " + sel + " FROM customers WHERE " + bucket + " = 2", &want.Creates},
	} {
		res, err := db.Exec(st.sql)
		if err != nil {
			t.Fatalf("%s: %v", st.sql, err)
		}
		if st.n != nil {
			n, _ := res.RowsAffected()
			*st.n = int(n)
		}
	}
	return want
}

// TestE2ECapture runs CaptureAFunction's bootstrap on S3 "Object Created"
// events for each data set (-e2e.capture), -e2e.repeat times in a fresh
// process with a fresh state and broker (kfake, in this process): the
// baseline of the data set's snapshot, then a snapshot with about 1% of
// the customers changed, then (a fresh state again) the first run in
// snapshot mode, every customer published as a create. Each run's counts
// and the records on the topic must be the expected ones.
func TestE2ECapture(t *testing.T) {
	tpl := loadTemplate(t)
	f := templateFunction(t, tpl, captureAFn)
	bootstrap := buildFunction(t, f, filepath.Join(t.TempDir(), "build"), "", "")
	var runs []captureRun
	for _, n := range sizes(t, *flagCapture) {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			r := newRig(t, tpl, n)
			ctx := context.Background()
			s3c := r.s3.Client()
			head, err := s3c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(r.snap.bucket), Key: aws.String(r.snap.key)})
			if err != nil {
				t.Fatal(err)
			}
			v1 := schedule.Object{Bucket: r.snap.bucket, Key: r.snap.key, VersionID: aws.ToString(head.VersionId),
				ETag: strings.Trim(aws.ToString(head.ETag), `"`), Size: aws.ToInt64(head.ContentLength), Time: time.Now()}
			changed := filepath.Join(t.TempDir(), "changed.db")
			want := changeSnapshot(t, filepath.Join(r.dataDir, demodata.SnapshotFile), changed)
			body, err := os.Open(changed)
			if err != nil {
				t.Fatal(err)
			}
			put, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(r.snap.bucket), Key: aws.String(r.snap.key), Body: body})
			body.Close()
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(changed)
			if err != nil {
				t.Fatal(err)
			}
			v2 := schedule.Object{Bucket: r.snap.bucket, Key: r.snap.key, VersionID: aws.ToString(put.VersionId),
				ETag: strings.Trim(aws.ToString(put.ETag), `"`), Size: fi.Size(), Time: time.Now()}
			t.Logf("changed snapshot: %d updated, %d deleted, %d inserted (%.2f%% of %d)",
				want.Updates, want.Deletes, want.Creates, 100*float64(want.Published())/float64(n), n)

			for rep := 1; rep <= *flagRepeat; rep++ {
				for _, sc := range []struct {
					kind  string
					first capturea.FirstRun
					objs  []schedule.Object
				}{
					{"1% changed", capturea.FirstRunBaseline, []schedule.Object{v1, v2}},
					{"full snapshot", capturea.FirstRunSnapshot, []schedule.Object{v1}},
				} {
					brokers := kafkatest.Broker(t, 3, changes.TopicSystemA).ListenAddrs()
					log := &funcLog{}
					fn := r.functionEnv(t, captureAFn, bootstrap, log, map[string]string{
						"KAFKA_BOOTSTRAP_SERVERS": strings.Join(brokers, ","),
						"CAPTURE_A_FIRST_RUN":     string(sc.first),
						"REPORT_URI":              fmt.Sprintf("s3://ucs-reports/bench-%d-%d-%d", n, rep, time.Now().UnixNano()),
					})
					for i, obj := range sc.objs {
						kind := sc.kind
						if sc.first == capturea.FirstRunBaseline && i == 0 {
							kind = "baseline"
						}
						ev, err := schedule.ObjectCreated(obj, schedule.Options{Region: tpl.Region, AccountID: tpl.AccountID})
						if err != nil {
							t.Fatal(err)
						}
						run := captureRun{n: n, rep: rep, kind: kind, load: startLoad()}
						ictx, cancel := context.WithTimeout(ctx, f.Timeout+time.Minute)
						res, err := fn.Invoke(ictx, ev, sandbox.InvokeOptions{})
						cancel()
						run.load.stop()
						checkInvocation(t, res, err, log)
						run.res = res
						if err := json.Unmarshal(res.Payload, &run.out); err != nil {
							t.Fatalf("the function's answer is not a capture result: %v\n%s", err, res.Payload)
						}
						t.Logf("n=%d rep %d %s: %s, %d MB peak RSS, %+v (load %s)", n, rep, kind, sec(res.Duration), res.MaxMemoryMB, run.out.Counts, run.load)
						runs = append(runs, run)
					}
					last := runs[len(runs)-1].out.Counts
					wantN := int64(want.Published())
					if sc.first == capturea.FirstRunSnapshot {
						wantN = int64(r.truth.SystemA)
						if last.Creates != r.truth.SystemA {
							t.Errorf("full snapshot: %d creates, want %d", last.Creates, r.truth.SystemA)
						}
					} else if last.Creates != want.Creates || last.Updates != want.Updates || last.Deletes != want.Deletes {
						t.Errorf("1%% changed: %+v, want %+v", last, want)
					}
					if got := kafkatest.Count(t, brokers, changes.TopicSystemA); got != wantN {
						t.Errorf("%s: %d records on the topic, want %d", sc.kind, got, wantN)
					}
					closeFunction(t, fn, bootstrap)
				}
			}
		})
	}
	t.Logf("\nSystem A capture through the real bootstrap (%s, MemorySize %d MB, Timeout %s, EphemeralStorage in /tmp); machine: %s\n%s",
		captureAFn, f.MemoryMB, f.Timeout, machine(), captureTable(runs))
}

func captureTable(runs []captureRun) *table {
	tb := &table{header: []string{"customers", "run", "REPORT Duration", "events", "events/s", "Max Memory Used (VmHWM)", "Init Duration", "load avg"}}
	for _, r := range runs {
		initD := "-"
		if r.res.InitDuration > 0 {
			initD = ms(r.res.InitDuration)
		}
		ev := r.out.Counts.Published()
		tb.add(fmt.Sprintf("%d", r.n), fmt.Sprintf("%d %s", r.rep, r.kind), sec(r.res.Duration), fmt.Sprintf("%d", ev),
			fmt.Sprintf("%.0f", float64(ev)/r.res.Duration.Seconds()), fmt.Sprintf("%d MB", r.res.MaxMemoryMB), initD, r.load.String())
	}
	return tb
}
