package systema

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/acme/unified-customer-service/shared/merge"
)

func TestWriteManifestDescribesTheFile(t *testing.T) {
	path := writeSnap(t, t.TempDir(), genRecords(500), snapOpts{})
	m, err := WriteManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if m.Size != fi.Size() || m.PageSize != 4096 || m.PageCount*m.PageSize != m.Size || len(m.SHA256) != 64 {
		t.Fatalf("manifest %+v for a %d-byte file", m, fi.Size())
	}
	raw, err := os.ReadFile(ManifestFile(path))
	if err != nil || !strings.Contains(string(raw), m.SHA256) {
		t.Fatalf("manifest file: %q, %v", raw, err)
	}
	back, err := ManifestFromMetadata(m.Metadata())
	if err != nil || back != m {
		t.Fatalf("metadata round trip: %+v, %v; want %+v", back, err, m)
	}
}

func TestManifestFromMetadata(t *testing.T) {
	good := Manifest{PageSize: 4096, PageCount: 2, Size: 8192, SHA256: strings.Repeat("ab", 32)}.Metadata()
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range good {
			m[a] = b
		}
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name string
		md   map[string]string
		want string // "" ok
	}{
		{"complete", good, ""},
		{"none (an exporter without manifests)", map[string]string{"other": "x"}, ""},
		{"a key missing", with(MetaSHA256, ""), "missing"},
		{"not a number", with(MetaPageCount, "two"), "not a positive number"},
		{"negative", with(MetaSize, "-8192"), "not a positive number"},
		{"size disagrees with pages", with(MetaSize, "8193"), "are not"},
		{"bad checksum", with(MetaSHA256, "xyz"), "hex SHA-256"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ManifestFromMetadata(c.md)
			if c.want == "" {
				if err != nil {
					t.Fatalf("err %v", err)
				}
				return
			}
			if !errors.Is(err, ErrBadManifest) || merge.ErrorKindOf(err) != merge.ErrBadData || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want ErrBadManifest (bad data) saying %q", err, c.want)
			}
		})
	}
}

func TestDownloadModeChecksTheManifest(t *testing.T) {
	path := writeSnap(t, t.TempDir(), genRecords(500), snapOpts{})
	m, err := ManifestOf(path)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := os.ReadFile(path)
	wrongSum := m
	wrongSum.SHA256 = strings.Repeat("0", 64)
	cases := []struct {
		name string
		meta map[string]string
		want string // "" served
	}{
		{"the exporter's manifest", m.Metadata(), ""},
		{"no manifest", nil, ""},
		{"another checksum", wrongSum.Metadata(), "SHA-256 mismatch"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs3 := newFakeS3(t, true)
			_, err := fs3.client.PutObject(context.Background(), &s3.PutObjectInput{
				Bucket: aws.String(testBucket), Key: aws.String(testKey), Body: bytes.NewReader(body), Metadata: c.meta,
			})
			if err != nil {
				t.Fatal(err)
			}
			h := newHarness(t, fs3.source())
			snap, err := h.store.Acquire(context.Background())
			if c.want == "" {
				if err != nil {
					t.Fatalf("acquire: %v", err)
				}
				want, _ := ManifestFromMetadata(c.meta)
				if got := snap.Version().Manifest; got != want {
					t.Fatalf("version's manifest %+v, want %+v", got, want)
				}
				snap.Release()
				return
			}
			if !errors.Is(err, ErrBadManifest) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("acquire: %v, want ErrBadManifest saying %q", err, c.want)
			}
			if files := h.files(t); len(files) != 0 {
				t.Fatalf("refused download left files: %v", files)
			}
		})
	}
}

func TestParseMode(t *testing.T) {
	cases := []struct {
		in, scheme string
		want       Mode
		err        string
	}{
		{"", "s3", ModeRange, ""},
		{"", "file", ModeDownload, ""},
		{"auto", "s3", ModeRange, ""},
		{"auto", "file", ModeDownload, ""},
		{"download", "s3", ModeDownload, ""},
		{"range", "s3", ModeRange, ""},
		{"range", "file", "", "SNAPSHOT_MODE range"},
		{"Range", "s3", "", "SNAPSHOT_MODE"},
		{"stream", "s3", "", "want auto, range or download"},
	}
	for _, c := range cases {
		t.Run(c.in+" "+c.scheme, func(t *testing.T) {
			got, err := ParseMode(c.in, c.scheme)
			if c.err == "" && (err != nil || got != c.want) {
				t.Fatalf("ParseMode(%q, %q) = %q, %v; want %q", c.in, c.scheme, got, err, c.want)
			}
			if c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
				t.Fatalf("ParseMode(%q, %q) error %v, want one saying %q", c.in, c.scheme, err, c.err)
			}
		})
	}
}
