package stack

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestParseMode(t *testing.T) {
	for _, s := range []string{"auto", "on", "off"} {
		if m, err := ParseMode(s); err != nil || string(m) != s {
			t.Errorf("ParseMode(%q) = %q, %v", s, m, err)
		}
	}
	if _, err := ParseMode("sometimes"); err == nil {
		t.Errorf("ParseMode accepted sometimes")
	}
}

func TestStartAndFind(t *testing.T) {
	ctx := context.Background()
	var log strings.Builder
	first, err := Start(ctx, Config{S3: On, BSim: On, S3Addr: "127.0.0.1:0", BSimAddr: "127.0.0.1:0", S3Dir: t.TempDir(), Buckets: []string{"test-bucket"}, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if !first.S3Started || !first.SimStarted || first.SystemBToken == "" || first.Sim == nil {
		t.Fatalf("first = %+v", first)
	}
	resp, err := http.Get(first.SystemBURL + "/_sim/faults")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("simulator: %v %v", resp, err)
	}
	resp.Body.Close()
	// Auto finds the running services instead of starting them again.
	s3Addr, bsimAddr := strings.TrimPrefix(first.S3URL, "http://"), strings.TrimPrefix(first.SystemBURL, "http://")
	second, err := Start(ctx, Config{S3: Auto, BSim: Auto, S3Addr: s3Addr, BSimAddr: bsimAddr, Seed: true, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if second.S3Started || second.SimStarted || second.S3URL != first.S3URL || second.SystemBURL != first.SystemBURL || second.Demo != nil {
		t.Errorf("second = %+v", second)
	}
	// On insists on starting, and says why it cannot.
	if _, err := Start(ctx, Config{S3: On, BSim: Off, S3Addr: s3Addr, S3Dir: t.TempDir()}); err == nil {
		t.Errorf("started a second S3 server on a busy address")
	}
	off, err := Start(ctx, Config{S3: Off, BSim: Off})
	if err != nil || off.S3URL != "" || off.SystemBURL != "" {
		t.Errorf("off = %+v, %v", off, err)
	}
	if listening("127.0.0.1:0") {
		t.Errorf("port 0 counts as listening")
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	if !listening(ln.Addr().String()) {
		t.Errorf("a listener is not seen")
	}
}
