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
			if _, err := st.Get(ctx, "2026-11-24/e1/summary.json"); !errors.Is(err, report.ErrNotExist) {
				t.Fatalf("get of a missing object: %v, want ErrNotExist", err)
			}
			if err := st.PutIfAbsent(ctx, "2026-11-24/e1/summary.json", strings.NewReader(`{"n":1}`), "application/json"); err != nil {
				t.Fatal(err)
			}
			err := st.PutIfAbsent(ctx, "2026-11-24/e1/summary.json", strings.NewReader(`{"n":2}`), "application/json")
			if !errors.Is(err, report.ErrExists) {
				t.Fatalf("second put: %v, want ErrExists", err)
			}
			got, err := st.Get(ctx, "2026-11-24/e1/summary.json")
			if err != nil || string(got) != `{"n":1}` {
				t.Fatalf("get = %q, %v; want the first write kept", got, err)
			}
			if loc := st.Location("a/b"); !strings.HasSuffix(loc, "a/b") {
				t.Errorf("location = %q", loc)
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
					err := st.PutIfAbsent(context.Background(), "claim.json", strings.NewReader(strings.Repeat("x", i+1)), "application/json")
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
	if err := st.PutIfAbsent(context.Background(), "../outside.json", strings.NewReader("x"), ""); err == nil {
		t.Error("a key escaping the directory was accepted")
	}
}
