package cli

import (
	"bytes"
	"context"

	"github.com/acme/unified-customer-service/cmd/local/internal/s3local"
	"github.com/acme/unified-customer-service/cmd/local/internal/sandbox"
	"github.com/acme/unified-customer-service/cmd/local/internal/schedule"
)

// objectTrigger is S3 Event Notifications to EventBridge, locally: the
// embedded S3 tells it of every object version written (notify), and run
// invokes each function whose EventBridgeRule matches the object, with
// the event AWS would deliver, one event at a time in order of writing
// (a capture function runs with a reserved concurrency of one in AWS).
type objectTrigger struct {
	a  *App
	ch chan s3local.ObjectCreated
}

func newObjectTrigger(a *App) *objectTrigger {
	return &objectTrigger{a: a, ch: make(chan s3local.ObjectCreated, 64)}
}

// notify is the embedded S3's hook; it never blocks a write. Versions
// written before run starts (the demo snapshot's upload) wait for it.
func (t *objectTrigger) notify(ev s3local.ObjectCreated) {
	select {
	case t.ch <- ev:
	default:
		t.a.logf("warning: S3: s3://%s/%s version %s: too many object events waiting; this one fires nothing", ev.Bucket, ev.Key, ev.VersionID)
	}
}

// run delivers the events to p's functions until ctx ends.
func (t *objectTrigger) run(ctx context.Context, p *project) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-t.ch:
			t.fire(ctx, p, ev)
		}
	}
}

// fire invokes every function of p whose rule matches ev, and logs what it
// answered. A failure is logged, not retried.
func (t *objectTrigger) fire(ctx context.Context, p *project, ev s3local.ObjectCreated) {
	for _, f := range p.tpl.Functions {
		if !p.funcs.Has(f.LogicalID) {
			continue
		}
		for _, r := range f.ObjectCreated {
			if !r.Matches(ev.Bucket, ev.Key) {
				continue
			}
			payload, err := schedule.ObjectCreated(schedule.Object{
				Bucket: ev.Bucket, Key: ev.Key, VersionID: ev.VersionID, ETag: ev.ETag, Size: ev.Size, Time: ev.Time,
			}, schedule.Options{Region: p.tpl.Region, AccountID: p.tpl.AccountID, Time: t.a.now()})
			if err != nil {
				t.a.logf("S3: %s: %v", f.LogicalID, err)
				continue
			}
			t.a.logf("S3: s3://%s/%s version %s created: firing %s's %s event", ev.Bucket, ev.Key, ev.VersionID, f.LogicalID, r.EventName)
			res, err := p.funcs.Invoke(ctx, f.LogicalID, payload, sandbox.InvokeOptions{})
			switch {
			case err != nil:
				t.a.logf("S3: %s: %v", f.LogicalID, err)
			case res.FunctionError != "":
				t.a.logf("S3: %s failed (%s): %s", f.LogicalID, res.FunctionError, bytes.TrimSpace(res.Payload))
			default:
				t.a.logf("S3: %s answered %s", f.LogicalID, bytes.TrimSpace(res.Payload))
			}
		}
	}
}
