package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/acme/unified-customer-service/cmd/loadgen/internal/fakeapi"
	"github.com/acme/unified-customer-service/cmd/loadgen/internal/load"
)

func TestParseFlagsRefuses(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"a remote URL", []string{"-url", "http://10.0.0.1:3000"}, "not a loopback address"},
		{"a remote host name", []string{"-url", "http://example.com"}, "not a loopback address"},
		{"a remote simulator", []string{"-sim-url", "http://192.168.1.2:8081"}, "not a loopback address"},
		{"not a URL", []string{"-url", "127.0.0.1:3000"}, "not an http(s) URL"},
		{"-stack with -url", []string{"-stack", "-url", "http://127.0.0.1:3000"}, "-stack chooses the URLs"},
		{"no clients", []string{"-c", "0"}, "-c 0"},
		{"no duration", []string{"-d", "0s"}, "-d 0s"},
		{"negative bound", []string{"-max-requests", "-1"}, "-max-requests -1"},
		{"a zero fault rate", []string{"-fault-rate", "0"}, "-fault-rate 0"},
		{"a 200 fault", []string{"-fault-status", "200"}, "-fault-status 200"},
		{"an argument", []string{"extra"}, "unexpected argument"},
		{"an unknown flag", []string{"-nope"}, "not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			_, err := parseFlags(tt.args, &stderr)
			if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parseFlags(%q) = %v, want a usage error containing %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestParseFlagsAccepts(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"defaults", nil},
		{"localhost", []string{"-url", "http://localhost:3000"}},
		{"IPv6 loopback", []string{"-url", "http://[::1]:3000"}},
		{"a remote URL when allowed", []string{"-url", "https://api.example.com", "-allow-remote"}},
		{"-stack alone", []string{"-stack", "-c", "4", "-d", "1s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseFlags(tt.args, &bytes.Buffer{}); err != nil {
				t.Errorf("parseFlags(%q) = %v", tt.args, err)
			}
		})
	}
}

func TestPhaseList(t *testing.T) {
	o, err := parseFlags([]string{"-phases", "faults,healthy", "-fault-rate", "0.5", "-fault-status", "429"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	phases, err := o.phaseList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range phases {
		names = append(names, p.Name)
	}
	if want := []string{"warmup", "faults", "healthy"}; !slices.Equal(names, want) {
		t.Errorf("phases = %v, want %v", names, want)
	}
	if got := string(phases[1].Faults); got != `{"errorRate":0.5,"status":429}` || !phases[1].Degraded {
		t.Errorf("faults phase injects %s (degraded %t)", got, phases[1].Degraded)
	}
	o.phases = "healthy,chaos"
	if _, err := o.phaseList(); !errors.Is(err, errUsage) {
		t.Errorf("an unknown phase: %v, want a usage error", err)
	}
}

// runFake runs the command against a fake service and returns the exit
// status, the JSON report and stderr.
func runFake(t *testing.T, srv *fakeapi.Server, extra ...string) (int, load.Report, string) {
	t.Helper()
	args := append([]string{"-url", srv.URL, "-sim-url", srv.URL, "-c", "4", "-d", "1m", "-warmup", "0", "-max-requests", "150", "-json"}, extra...)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	var rep load.Report
	if stdout.Len() > 0 {
		if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
			t.Fatalf("the JSON report does not parse: %v\n%s", err, stdout.String())
		}
	}
	return code, rep, stderr.String()
}

func TestRunBothPhases(t *testing.T) {
	srv := fakeapi.New()
	defer srv.Close()
	srv.Injected = 30
	code, rep, stderr := runFake(t, srv)
	if code != exitPass || !rep.OK {
		t.Fatalf("exit %d, ok %t; want a pass. stderr:\n%s", code, rep.OK, stderr)
	}
	if len(rep.Phases) != 2 || rep.Phases[0].Phase != "healthy" || rep.Phases[1].Phase != "faults" {
		t.Fatalf("phases = %+v, want healthy then faults", rep.Phases)
	}
	for _, p := range rep.Phases {
		if p.Requests != 150 || p.StoppedBy != "max-requests" {
			t.Errorf("%s: %d requests, stopped by %s; want 150, max-requests", p.Phase, p.Requests, p.StoppedBy)
		}
	}
	if srv.Lookups() != 300 {
		t.Errorf("the server saw %d lookups, want 300", srv.Lookups())
	}
	if !slices.Contains(srv.Admin(), `PUT /_sim/faults {"errorRate":0.2,"status":503}`) {
		t.Errorf("simulator calls %q: no fault injection", srv.Admin())
	}
	if rep.Machine.CPUs < 1 || rep.Mix != "60/20/20" || !strings.Contains(rep.Data, "seed 1, 2000 customers") {
		t.Errorf("report header: machine %+v mix %q data %q", rep.Machine, rep.Mix, rep.Data)
	}
}

func TestRunFailsOnA5xx(t *testing.T) {
	srv := fakeapi.New()
	defer srv.Close()
	srv.Injected = 30
	srv.Script = func(n int64) int {
		if n == 10 {
			return 502
		}
		return 0
	}
	code, rep, _ := runFake(t, srv)
	if code != exitFail || rep.OK {
		t.Fatalf("exit %d, ok %t; want a failure", code, rep.OK)
	}
	if rep.Phases[0].OK || rep.Phases[0].Status["502"] != 1 || !rep.Phases[1].OK {
		t.Errorf("healthy ok %t with status %v, faults ok %t: want only the healthy phase to fail", rep.Phases[0].OK, rep.Phases[0].Status, rep.Phases[1].OK)
	}
}

func TestRunTextReport(t *testing.T) {
	srv := fakeapi.New()
	defer srv.Close()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-url", srv.URL, "-sim-url", srv.URL, "-c", "2", "-warmup", "0", "-max-requests", "20", "-phases", "healthy"}, &stdout, &stderr)
	if code != exitPass {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"machine: ", "healthy  20 req in ", "p50=", "p99=", " PASS\n", "result: PASS\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestRunNeedsTheSimulatorForFaults(t *testing.T) {
	srv := fakeapi.New()
	defer srv.Close()
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"-url", srv.URL, "-sim-url", srv.URL + "/elsewhere", "-warmup", "0", "-max-requests", "5"}, &bytes.Buffer{}, &stderr)
	if code != exitFail || !strings.Contains(stderr.String(), "needs the System B simulator") {
		t.Errorf("exit %d, stderr %q; want a failure naming the simulator", code, stderr.String())
	}
}

func TestRunUsageExit(t *testing.T) {
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"-url", "http://10.1.2.3"}, &bytes.Buffer{}, &stderr); code != exitUsage {
		t.Errorf("exit %d, want %d; stderr %q", code, exitUsage, stderr.String())
	}
}
