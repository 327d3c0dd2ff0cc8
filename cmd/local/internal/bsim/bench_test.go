package bsim

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"testing"

	"github.com/acme/unified-customer-service/shared/merge"
)

// benchCustomers is the dataset size of the benchmarks.
const benchCustomers = 100_000

// realisticLines returns n customers with every field set, as JSON Lines.
func realisticLines(n int) []byte {
	recs := make([]*merge.Record, n)
	for i := range recs {
		r := customer(fmt.Sprintf("customer.%07d@example.com", i), "Alexandra")
		r.Values[merge.FieldLastName] = "Montgomery-Smith"
		r.Values[merge.FieldPhone] = "+44 20 7946 0958"
		r.Values[merge.FieldAddressLine1] = "221B Baker Street"
		r.Values[merge.FieldCity] = "London"
		r.Values[merge.FieldPostalCode] = "NW1 6XE"
		r.Values[merge.FieldCountry] = "GB"
		r.Values[merge.FieldLoyaltyTier] = "gold"
		recs[i] = r
	}
	return jsonLines(recs...)
}

// discardWriter is a reusable http.ResponseWriter that drops the body.
type discardWriter struct {
	h      http.Header
	status int
	n      int64
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(status int)      { w.status = status }
func (w *discardWriter) Write(b []byte) (int, error) { w.n += int64(len(b)); return len(b), nil }

// BenchmarkListPage measures serving pages of 1000 customers out of 100,000,
// walking the whole list with cursors: in the handler alone, and over
// loopback HTTP with a Go client. Run:
//
//	go test -run '^$' -bench BenchmarkListPage -benchmem ./cmd/local/internal/bsim/
func BenchmarkListPage(b *testing.B) {
	sim := New(Config{Token: testToken})
	if err := sim.Load(bytes.NewReader(realisticLines(benchCustomers))); err != nil {
		b.Fatal(err)
	}
	h := sim.Handler()

	// pages returns the query of every page of 1000, in order.
	var queries []string
	for cursor := ""; ; {
		q := url.Values{"limit": {"1000"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		queries = append(queries, "/customers?"+q.Encode())
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, queries[len(queries)-1], nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		h.ServeHTTP(rec, req)
		var p page
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || rec.Code != 200 {
			b.Fatalf("page %d: %d %v", len(queries), rec.Code, err)
		}
		if p.NextCursor == nil {
			break
		}
		cursor = *p.NextCursor
	}
	pageBytes := func() int64 {
		w := &discardWriter{h: http.Header{}}
		req := httptest.NewRequest(http.MethodGet, queries[0], nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		h.ServeHTTP(w, req)
		return w.n
	}()

	b.Run("handler", func(b *testing.B) {
		reqs := make([]*http.Request, len(queries))
		for i, q := range queries {
			reqs[i] = httptest.NewRequest(http.MethodGet, q, nil)
			reqs[i].Header.Set("Authorization", "Bearer "+testToken)
		}
		w := &discardWriter{h: http.Header{}}
		b.SetBytes(pageBytes)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			clear(w.h)
			h.ServeHTTP(w, reqs[i%len(reqs)])
			if w.status != http.StatusOK {
				b.Fatalf("status %d", w.status)
			}
		}
	})

	b.Run("http", func(b *testing.B) {
		srv := httptest.NewServer(h)
		defer srv.Close()
		client := srv.Client()
		b.SetBytes(pageBytes)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+queries[i%len(queries)], nil)
			req.Header.Set("Authorization", "Bearer "+testToken)
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, resp.Body); err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
}

var loadN = flag.Int("bsim.n", benchCustomers, "customers BenchmarkLoad loads")

// BenchmarkLoad measures loading JSON Lines (decode, validate, re-encode,
// sort), reported as records/s, and the heap the loaded simulator holds
// (MB-heap, measured after a GC). Run (-bsim.n sets the size):
//
//	go test -run '^$' -bench BenchmarkLoad -benchmem ./cmd/local/internal/bsim/ -bsim.n 1000000
func BenchmarkLoad(b *testing.B) {
	lines := realisticLines(*loadN)
	var sim *Sim
	b.SetBytes(int64(len(lines)))
	b.ReportAllocs()
	for b.Loop() {
		sim = New(Config{})
		if err := sim.Load(bytes.NewReader(lines)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(*loadN)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	lines = nil
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc)/(1<<20), "MB-heap")
	runtime.KeepAlive(sim)
}
