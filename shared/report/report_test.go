package report_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/acme/unified-customer-service/shared/report"
)

// s3Store serves a fresh in-process S3 (gofakes3 over real HTTP on
// 127.0.0.1) and returns a store on bucket "reports", prefix "runs".
func s3Store(t *testing.T) report.Store {
	t.Helper()
	backend := s3mem.New()
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	client := s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	if _, err := client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("reports")}); err != nil {
		t.Fatal(err)
	}
	st, err := report.Open("s3://reports/runs", client)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestStores(t *testing.T) {
	stores := map[string]func(t *testing.T) report.Store{
		"s3": s3Store,
		"file": func(t *testing.T) report.Store {
			st, err := report.Open("file://"+t.TempDir(), nil)
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st := open(t)
			if _, _, err := st.Get(ctx, "2026-11-24/e1/summary.json"); !errors.Is(err, report.ErrNotExist) {
				t.Fatalf("get of a missing object: %v, want ErrNotExist", err)
			}
			tag, err := st.PutIfAbsent(ctx, "2026-11-24/e1/summary.json", strings.NewReader(`{"n":1}`), "application/json")
			if err != nil || tag == "" {
				t.Fatalf("put = %q, %v", tag, err)
			}
			_, err = st.PutIfAbsent(ctx, "2026-11-24/e1/summary.json", strings.NewReader(`{"n":2}`), "application/json")
			if !errors.Is(err, report.ErrExists) {
				t.Fatalf("second put: %v, want ErrExists", err)
			}
			got, gotTag, err := st.Get(ctx, "2026-11-24/e1/summary.json")
			if err != nil || string(got) != `{"n":1}` || gotTag != tag {
				t.Fatalf("get = %q, tag %q, %v; want the first write kept, tag %q", got, gotTag, err, tag)
			}
			if loc := st.Location("a/b"); !strings.HasSuffix(loc, "a/b") {
				t.Errorf("location = %q", loc)
			}
		})
	}
}

func openStores(t *testing.T) map[string]report.Store {
	t.Helper()
	return map[string]report.Store{"s3": s3Store(t), "file": &report.FileStore{Dir: t.TempDir()}}
}

// TestReplace is the compare-and-swap a reconciliation lease is renewed
// and taken over with.
func TestReplace(t *testing.T) {
	const key = "2026-11-24/e1/claim.json"
	tests := []struct {
		name    string
		present bool // put "v1" first
		tag     func(v1 string) string
		want    error  // nil: replaced
		content string // after the call
	}{
		{"the tag read", true, func(v1 string) string { return v1 }, nil, "v2"},
		{"another tag", true, func(string) string { return `"0123456789abcdef0123456789abcdef"` }, report.ErrChanged, "v1"},
		{"no object", false, func(string) string { return `"0123456789abcdef0123456789abcdef"` }, report.ErrChanged, ""},
	}
	for _, tc := range tests {
		for name, st := range openStores(t) {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				ctx := context.Background()
				k := tc.name + "/" + key
				var v1 string
				if tc.present {
					var err error
					if v1, err = st.PutIfAbsent(ctx, k, strings.NewReader("v1"), "application/json"); err != nil {
						t.Fatal(err)
					}
				}
				tag, err := st.Replace(ctx, k, strings.NewReader("v2"), "application/json", tc.tag(v1))
				if !errors.Is(err, tc.want) || (tc.want == nil) != (tag != "") {
					t.Fatalf("replace = %q, %v; want %v", tag, err, tc.want)
				}
				got, gotTag, err := st.Get(ctx, k)
				switch {
				case tc.content == "":
					if !errors.Is(err, report.ErrNotExist) {
						t.Errorf("get = %q, %v; want no object", got, err)
					}
				case err != nil || string(got) != tc.content:
					t.Errorf("get = %q, %v; want %q", got, err, tc.content)
				case tc.want == nil && gotTag != tag:
					t.Errorf("get's tag %q, replace returned %q", gotTag, tag)
				}
			})
		}
	}
}

// TestConcurrentReplacesOneWins: writers that read the same tag race to
// replace the object; exactly one wins, the others get ErrChanged.
func TestConcurrentReplacesOneWins(t *testing.T) {
	for name, st := range openStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			tag, err := st.PutIfAbsent(ctx, "claim.json", strings.NewReader("old"), "application/json")
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			var won []string
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					body := strings.Repeat("n", i+1)
					_, err := st.Replace(ctx, "claim.json", strings.NewReader(body), "application/json", tag)
					if err == nil {
						mu.Lock()
						won = append(won, body)
						mu.Unlock()
					} else if !errors.Is(err, report.ErrChanged) {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			got, _, err := st.Get(ctx, "claim.json")
			if len(won) != 1 || err != nil || string(got) != won[0] {
				t.Errorf("winners %q, object %q (%v); want exactly one winner, whose content stays", won, got, err)
			}
		})
	}
}

func TestConcurrentPutsOneWins(t *testing.T) {
	for name, st := range map[string]report.Store{"s3": s3Store(t), "file": &report.FileStore{Dir: t.TempDir()}} {
		t.Run(name, func(t *testing.T) {
			var wg sync.WaitGroup
			var mu sync.Mutex
			wins := 0
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := st.PutIfAbsent(context.Background(), "claim.json", strings.NewReader(strings.Repeat("x", i+1)), "application/json")
					if err == nil {
						mu.Lock()
						wins++
						mu.Unlock()
					} else if !errors.Is(err, report.ErrExists) {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			if wins != 1 {
				t.Errorf("%d writers won, want exactly 1", wins)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	tests := []struct{ name, uri string }{
		{"relative file", "file://relative/dir"},
		{"no bucket", "s3:///prefix"},
		{"unknown scheme", "http://example.com/x"},
		{"s3 without a client", "s3://bucket/prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := report.Open(tt.uri, nil); err == nil {
				t.Errorf("Open(%q) succeeded", tt.uri)
			}
		})
	}
}

func TestFileStoreRefusesEscapes(t *testing.T) {
	st := &report.FileStore{Dir: t.TempDir()}
	if _, err := st.PutIfAbsent(context.Background(), "../outside.json", strings.NewReader("x"), ""); err == nil {
		t.Error("a key escaping the directory was accepted")
	}
	if _, err := st.Replace(context.Background(), "../outside.json", strings.NewReader("x"), "", "t"); err == nil {
		t.Error("a replace escaping the directory was accepted")
	}
}
