package location_test

import (
	"strings"
	"testing"

	"github.com/acme/unified-customer-service/shared/location"
)

func TestParse(t *testing.T) {
	const obj, pre = location.Object, location.Prefix
	tests := []struct {
		name string
		in   string
		kind location.Kind
		want location.URI
		err  string // a substring of the error; "" for none
	}{
		{"s3 object", "s3://bucket/key.db", obj, location.URI{Scheme: "s3", Bucket: "bucket", Key: "key.db"}, ""},
		{"s3 nested object", "s3://my-bucket/nightly/systema/customers.db", obj, location.URI{Scheme: "s3", Bucket: "my-bucket", Key: "nightly/systema/customers.db"}, ""},
		{"file object", "file:///tmp/customers.db", obj, location.URI{Scheme: "file", Path: "/tmp/customers.db"}, ""},
		{"file object on localhost, cleaned", "file://localhost/var/data/../snap.db", obj, location.URI{Scheme: "file", Path: "/var/snap.db"}, ""},
		{"s3 prefix", "s3://reports/runs", pre, location.URI{Scheme: "s3", Bucket: "reports", Key: "runs"}, ""},
		{"s3 prefix, slashes trimmed", "s3://reports/runs/daily/", pre, location.URI{Scheme: "s3", Bucket: "reports", Key: "runs/daily"}, ""},
		{"s3 bucket only", "s3://reports", pre, location.URI{Scheme: "s3", Bucket: "reports"}, ""},
		{"s3 bucket and slash", "s3://reports/", pre, location.URI{Scheme: "s3", Bucket: "reports"}, ""},
		{"file directory", "file:///var/reports/", pre, location.URI{Scheme: "file", Path: "/var/reports"}, ""},

		{"empty", "", obj, location.URI{}, "SETTING is empty (want s3://bucket/key or file:///abs/path.db)"},
		{"spaces", "   ", pre, location.URI{}, "SETTING is empty (want s3://bucket/prefix or file:///abs/dir)"},
		{"s3 without key", "s3://bucket", obj, location.URI{}, "needs a bucket and an object key"},
		{"s3 bucket and slash as object", "s3://bucket/", obj, location.URI{}, "needs a bucket and an object key"},
		{"s3 without bucket", "s3:///key", obj, location.URI{}, "needs a bucket and an object key"},
		{"s3 prefix as object", "s3://bucket/prefix/", obj, location.URI{}, "needs a bucket and an object key"},
		{"s3 prefix without bucket", "s3:///prefix", pre, location.URI{}, "needs a bucket (want s3://bucket/prefix"},
		{"query", "s3://bucket/key?versionId=1", obj, location.URI{}, "no query, fragment or user info allowed"},
		{"fragment", "s3://bucket/runs#x", pre, location.URI{}, "no query, fragment or user info allowed"},
		{"user info", "s3://me@bucket/key", obj, location.URI{}, "no query, fragment or user info allowed"},
		{"file with a host", "file://relative/path.db", obj, location.URI{}, "file URIs take no host"},
		{"relative file", "file:relative.db", obj, location.URI{}, "needs an absolute file path"},
		{"relative directory", "file://relative/dir", pre, location.URI{}, "file URIs take no host"},
		{"directory as object", "file:///tmp/dir/", obj, location.URI{}, "needs an absolute file path"},
		{"no scheme", "/tmp/customers.db", obj, location.URI{}, `unsupported scheme ""`},
		{"https", "https://bucket.s3.amazonaws.com/key", obj, location.URI{}, `unsupported scheme "https"`},
		{"http prefix", "http://example.com/x", pre, location.URI{}, `unsupported scheme "http"`},
		{"bad escape", "s3://bu cket/%zz", obj, location.URI{}, "does not parse"},
		{"leading space", " s3://bucket/key", obj, location.URI{}, "does not parse"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := location.Parse("SETTING", tc.in, tc.kind)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "SETTING ") {
					t.Fatalf("Parse(%q) = %+v, %v; want an error starting with the setting and holding %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Parse(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
			if back, err := location.Parse("SETTING", got.String(), tc.kind); err != nil || back != got {
				t.Errorf("round trip of %q: %+v, %v", got.String(), back, err)
			}
		})
	}
}
