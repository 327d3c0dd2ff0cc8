package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/acme/unified-customer-service/cmd/local/internal/esm"
)

// dlqDir is the dead-letter store's directory under the data directory.
func dlqDir(o *options) string { return filepath.Join(o.dataDir, "dlq") }

// startMappings runs the Kafka event source mappings of the project's
// functions against its broker and returns the banner's lines about them
// and a stop function. Without a broker it warns and starts nothing.
func (a *App) startMappings(ctx context.Context, p *project, o *options) (lines []string, stop func(), err error) {
	var mappings []*esm.Mapping
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	stop = func() {
		cancel()
		wg.Wait()
		for _, m := range mappings {
			m.Close()
		}
	}
	store := &esm.Store{Dir: dlqDir(o)}
	for _, f := range p.tpl.KafkaFunctions() {
		fn, ok := p.funcs[f.LogicalID]
		if !ok {
			continue
		}
		if p.stack.KafkaBrokers == "" {
			a.logf("warning: %s has Kafka event sources but no broker runs (--embedded off?); its mappings are not started", f.LogicalID)
			continue
		}
		for _, k := range f.Kafka {
			if !k.Enabled {
				continue
			}
			m, err := esm.New(esm.Config{
				Function: f.LogicalID, FunctionARN: fn.ARN(), Source: k,
				Brokers: strings.Split(p.stack.KafkaBrokers, ","), Invoker: p.funcs, DLQ: store,
				StackName: p.tpl.StackName, Log: a.logger(),
			})
			if err != nil {
				stop()
				return nil, nil, err
			}
			mappings = append(mappings, m)
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := m.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
					a.logf("Kafka mapping %s/%s stopped: %v", f.LogicalID, k.Name, err)
				}
			}()
			lines = append(lines, fmt.Sprintf("%s <- %s, group %s", f.LogicalID, k, m.Group()))
		}
	}
	return lines, stop, nil
}

func (a *App) cmdDLQ(_ context.Context, args []string) error {
	fs, o := a.newFlags("dlq", "local dlq list [LogicalId] [--json]: the batches the Kafka event source mappings gave up on (the\n"+
		"local on-failure destination, <data dir>/dlq/<function>/<mapping>.jsonl), oldest first per mapping.")
	asJSON := fs.Bool("json", false, "print the records as JSON lines (the shape Lambda sends to an SQS on-failure destination)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 || pos[0] != "list" || len(pos) > 2 {
		return usageError{"usage: dlq list [LogicalId]"}
	}
	tpl, err := a.loadTemplate(o)
	if err != nil {
		return err
	}
	fn := ""
	if len(pos) == 2 {
		fn = pos[1]
		if _, ok := tpl.Function(fn); !ok {
			return usageError{fmt.Sprintf("the template has no function %q (it has %s)", fn, strings.Join(tpl.FunctionIDs(), ", "))}
		}
	}
	recs, err := (&esm.Store{Dir: dlqDir(o)}).List(fn)
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		a.logf("No dead-lettered batches in %s", dlqDir(o))
		return nil
	}
	for _, r := range recs {
		if *asJSON {
			line, err := json.Marshal(r)
			if err != nil {
				return fmt.Errorf("dlq: %w", err)
			}
			fmt.Fprintf(a.Stdout, "%s\n", line)
			continue
		}
		fmt.Fprintln(a.Stdout, r.Summary())
	}
	return nil
}
