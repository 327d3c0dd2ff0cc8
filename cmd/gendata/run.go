package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/acme/unified-customer-service/shared/demodata"
	"github.com/acme/unified-customer-service/shared/systema"
)

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1 // generation failed
	exitUsage = 2 // bad flags
)

// run parses args, generates the data set and prints the truth summary (or
// the truth as JSON with -json). It returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, dir, asJSON, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "gendata: %v\n", err)
		return exitUsage
	}
	start := time.Now()
	truth, err := demodata.Write(ctx, cfg, dir)
	if err != nil {
		fmt.Fprintf(stderr, "gendata: %v\n", err)
		return exitError
	}
	// The export contract's manifest, for the upload's object metadata.
	if _, err := systema.WriteManifest(filepath.Join(dir, demodata.SnapshotFile)); err != nil {
		fmt.Fprintf(stderr, "gendata: %v\n", err)
		return exitError
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(truth); err != nil {
			fmt.Fprintf(stderr, "gendata: %v\n", err)
			return exitError
		}
		return exitOK
	}
	fmt.Fprintf(stdout, "wrote %s/{%s,%s,%s,%s} in %s\n%s", dir, demodata.SnapshotFile, filepath.Base(systema.ManifestFile(demodata.SnapshotFile)),
		demodata.SystemBFile, demodata.TruthFile,
		time.Since(start).Round(time.Millisecond), truth)
	return exitOK
}

// parseFlags turns the command line into a demodata.Config and the output
// directory; errors say which flag is wrong.
func parseFlags(args []string, stderr io.Writer) (cfg demodata.Config, dir string, asJSON bool, err error) {
	fs := flag.NewFlagSet("gendata", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 1000, "customers to generate (the union of both systems, showcase ones not counted)")
	seed := fs.Int64("seed", 1, "random seed; the same seed and flags give byte-identical files")
	fs.StringVar(&dir, "out", "", "output `directory` (created if missing); required")
	showcase := fs.Bool("showcase", false, "add the fixed showcase customers the README's examples use")
	mix := fs.String("mix", "", "situation fractions, e.g. conflictANewer=0.05,conflictBNewer=5% (unnamed ones keep the default: "+demodata.DefaultMix().String()+"; inSync takes the rest)")
	exportedAt := fs.String("exported-at", "", "System A snapshot time, RFC 3339 (default 2025-06-01T02:00:00Z)")
	now := fs.String("now", "", "read time bounding System B's lastUpdated, RFC 3339 (default exported-at + 10h)")
	fs.BoolVar(&asJSON, "json", false, "print the truth as JSON instead of the summary")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: gendata -out DIR [-n N] [-seed S] [-showcase] [-mix TEXT] [-exported-at T] [-now T] [-json]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, "", false, err
	}
	if fs.NArg() > 0 {
		return cfg, "", false, fmt.Errorf("unexpected argument %q (flags only; see -h)", fs.Arg(0))
	}
	if dir == "" {
		return cfg, "", false, errors.New("-out DIR is required")
	}
	if *n < 0 || *n > demodata.MaxN {
		return cfg, "", false, fmt.Errorf("-n %d: want 0..%d", *n, demodata.MaxN)
	}
	cfg = demodata.NewConfig(*seed, *n)
	cfg.Showcase = *showcase
	if cfg.Mix, err = demodata.ParseMix(*mix); err != nil {
		return cfg, "", false, fmt.Errorf("-mix: %w", err)
	}
	if *exportedAt != "" {
		if cfg.ExportedAt, err = time.Parse(time.RFC3339, *exportedAt); err != nil {
			return cfg, "", false, fmt.Errorf("-exported-at %q: not RFC 3339", *exportedAt)
		}
		if *now == "" {
			cfg.Now = time.Time{} // re-derive from the new exported-at
		}
	}
	if *now != "" {
		if cfg.Now, err = time.Parse(time.RFC3339, *now); err != nil {
			return cfg, "", false, fmt.Errorf("-now %q: not RFC 3339", *now)
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, "", false, err
	}
	return cfg, dir, asJSON, nil
}
