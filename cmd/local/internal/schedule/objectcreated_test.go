package schedule

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/testkit"
)

func TestObjectCreated(t *testing.T) {
	o := Options{Region: "eu-west-1", AccountID: "111122223333", ID: "0f1e2d3c-aaaa-bbbb-cccc-123456789abc"}
	obj := Object{Bucket: "ucs-snapshots", Key: "customers.db", VersionID: "18ed4b7669999def", ETag: "b1946ac92492d2347c6235b4d2611184",
		Size: 282624, Time: time.Date(2026, 12, 1, 2, 0, 5, 250e6, time.UTC)}
	got, err := ObjectCreated(obj, o)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":"0","id":"0f1e2d3c-aaaa-bbbb-cccc-123456789abc","detail-type":"Object Created","source":"aws.s3","account":"111122223333","time":"2026-12-01T02:00:05Z","region":"eu-west-1","resources":["arn:aws:s3:::ucs-snapshots"],` +
		`"detail":{"version":"0","bucket":{"name":"ucs-snapshots"},"object":{"key":"customers.db","size":282624,"etag":"b1946ac92492d2347c6235b4d2611184","version-id":"18ed4b7669999def","sequencer":"18ECFEB51D69E480"},"request-id":"LOCAL0f1e2d3c","requester":"111122223333","source-ip-address":"127.0.0.1","reason":"PutObject"}}`
	if string(got) != want {
		t.Errorf("event =\n%s\nwant\n%s", got, want)
	}

	// Every member of the AWS-shaped fixture, and no other.
	b, err := os.ReadFile(filepath.Join(testkit.Root(t), "events", "capturea-object-created.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fixture, ours map[string]any
	if err := json.Unmarshal(b, &fixture); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got, &ours); err != nil {
		t.Fatal(err)
	}
	if f, g := paths("", fixture), paths("", ours); !slices.Equal(f, g) {
		t.Errorf("members = %v, want the fixture's %v", g, f)
	}
}

// paths lists the member paths of a decoded JSON object, sorted.
func paths(prefix string, m map[string]any) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, prefix+k)
		if sub, ok := m[k].(map[string]any); ok {
			out = append(out, paths(prefix+k+".", sub)...)
		}
	}
	return out
}
