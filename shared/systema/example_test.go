package systema_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/systema"
)

// Example shows the Lambda wiring: parse SNAPSHOT_URI, build the Source and
// the Store once per execution environment, then pin one version per
// request (Lookup) or per reconciliation run (All).
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "systema-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "customers.db")
	exported := time.Date(2025, 3, 1, 2, 0, 0, 0, time.UTC)
	var recs []*merge.Record
	for _, email := range []string{"Zoë@example.nl", "ÉMILE@exemple.fr", "bob+news@example.com"} {
		r := &merge.Record{LastUpdated: exported}
		r.Values[merge.FieldEmail] = email
		recs = append(recs, r)
	}
	if err := systema.WriteSnapshot(ctx, path, exported, slices.Values(recs)); err != nil {
		fmt.Println(err)
		return
	}

	u, err := systema.ParseURI("file://" + path) // os.Getenv("SNAPSHOT_URI")
	if err != nil {
		fmt.Println(err)
		return
	}
	src, err := systema.NewSource(u, nil) // an *s3.Client for s3:// URIs
	if err != nil {
		fmt.Println(err)
		return
	}
	store, err := systema.New(systema.Config{Source: src, Dir: dir, RefreshEvery: time.Minute})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()

	snap, err := store.Acquire(ctx)
	if err != nil {
		fmt.Println(err) // wraps systema.ErrUnavailable
		return
	}
	defer snap.Release()
	fmt.Println("exported at", snap.Version().ExportedAt.Format(time.RFC3339))
	r, err := snap.Lookup(ctx, "émile@EXEMPLE.fr")
	fmt.Println("lookup:", r.Email(), err)
	for r, err := range snap.All(ctx) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("join order:", r.Key())
	}
	// Output:
	// exported at 2025-03-01T02:00:00Z
	// lookup: ÉMILE@exemple.fr <nil>
	// join order: bob+news@example.com
	// join order: zoë@example.nl
	// join order: émile@exemple.fr
}
