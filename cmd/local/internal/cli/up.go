package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/acme/unified-customer-service/cmd/local/internal/bsim"
	"github.com/acme/unified-customer-service/cmd/local/internal/demo"
	"github.com/acme/unified-customer-service/cmd/local/internal/kafkalocal"
	"github.com/acme/unified-customer-service/shared/syncworker"
)

func (a *App) cmdUp(ctx context.Context, args []string) error {
	fs, o := a.newFlags("up", "local up: the whole local stack: embedded S3 (:9000) and System B simulator (:8081) with demo data,\nthe functions built for this machine, start-api (:3000) and start-lambda (:3001), until Ctrl-C.")
	fs.StringVar(&o.host, "host", "127.0.0.1", "address to bind start-api and start-lambda")
	fs.IntVar(&o.apiPort, "api-port", 3000, "start-api's port")
	fs.IntVar(&o.lambdaPort, "lambda-port", 3001, "start-lambda's port")
	fs.BoolVar(&o.allowRemote, "allow-non-loopback", false, "allow --host to be reachable from other machines (no authentication!)")
	if err := fs.Set("embedded", "on"); err != nil {
		return err
	}
	o.kafka = true
	o.mappings = true
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{"up takes no arguments"}
	}
	if err := checkHost(o.host, o.allowRemote); err != nil {
		return err
	}
	apiLn, err := listen(o.host, o.apiPort)
	if err != nil {
		return err
	}
	defer apiLn.Close()
	lambdaLn, err := listen(o.host, o.lambdaPort)
	if err != nil {
		return err
	}
	defer lambdaLn.Close()
	trigger := newObjectTrigger(a)
	o.onObjectCreated = trigger.notify
	p, err := a.openProject(ctx, o, nil)
	if err != nil {
		return err
	}
	defer p.Close()
	tctx, stopTrigger := context.WithCancel(ctx)
	defer stopTrigger()
	go trigger.run(tctx, p)
	kafkaLines, stopMappings, err := a.startMappings(ctx, p, o)
	if err != nil {
		return err
	}
	defer stopMappings()
	api, lambda := a.apiServer(p, apiLn), a.lambdaServer(ctx, p, lambdaLn)
	webhookURL := a.pointWebhook(ctx, p, api.url)
	lookup := routeOf(p, "GET", "{email}")
	evFile, err := writeLookupEvent(filepath.Join(o.dataDir, "examples"), lookup[1], demo.ShowcaseCustomers().InSync)
	if err != nil {
		a.logf("warning: no example event for aws lambda invoke: %v", err)
	}
	tpl := o.template
	if tpl == "template.yaml" {
		tpl = ""
	}
	printBanner(a.Stdout, banner{
		API: api.url, Lambda: lambda.url, S3: p.s3URL, Buckets: p.buckets,
		SystemB: p.stack.SystemBURL, Token: p.stack.SystemBToken, Kafka: p.stack.KafkaBrokers, Webhook: webhookURL,
		Region: p.tpl.Region, Functions: p.funcs.Names(),
		Seeded: p.stack.Demo != nil || (!p.stack.S3Started && !p.stack.SimStarted),
		Lookup: lookup, Sync: routeOf(p, "POST", "sync"),
		Scheduled: scheduledFunction(p), Template: tpl, LookupEvent: evFile,
		Captured: capturedFunction(p), Mappings: kafkaLines, DLQ: dlqDir(o),
	})
	return a.serve(ctx, api, lambda)
}

// routeOf finds the function and path of a route by method and a path
// fragment, so the banner follows the template.
func routeOf(p *project, method, fragment string) [2]string {
	for _, r := range p.tpl.SortedRoutes() {
		if r.Method == method && strings.Contains(r.Path, fragment) {
			return [2]string{r.Function, r.Path}
		}
	}
	return [2]string{}
}

// capturedFunction returns the function fired by the snapshot's uploads
// (an S3 Object Created rule), or "".
func capturedFunction(p *project) string {
	for _, f := range p.tpl.Functions {
		if len(f.ObjectCreated) > 0 && p.funcs.Has(f.LogicalID) {
			return f.LogicalID
		}
	}
	return ""
}

// pointWebhook makes the System B simulator send its change notifications
// to start-api's webhook route (when the template has one and the functions
// use the simulator) and returns that URL, or "".
func (a *App) pointWebhook(ctx context.Context, p *project, api string) string {
	route := routeOf(p, "POST", "/webhooks/")
	if route[0] == "" || p.stack.SystemBURL == "" {
		return ""
	}
	cfg := bsim.WebhookConfig{URL: api + route[1], Secret: p.stack.SystemBWebhookSecret}
	if p.stack.Sim != nil {
		if err := p.stack.Sim.SetWebhook(cfg); err != nil {
			a.logf("warning: System B webhook: %v", err)
			return ""
		}
		return cfg.URL
	}
	// A simulator another process started: through its admin API.
	body, _ := json.Marshal(cfg) // two strings always marshal
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, p.stack.SystemBURL+bsim.AdminPrefix+"webhook", bytes.NewReader(body))
	if err != nil {
		a.logf("warning: System B webhook: %v", err)
		return ""
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.logf("warning: System B webhook: the simulator at %s: %v", p.stack.SystemBURL, err)
		return ""
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		a.logf("warning: System B webhook: the simulator at %s answered %s (an older version?)", p.stack.SystemBURL, resp.Status)
		return ""
	}
	return cfg.URL
}

// scheduledFunction names the function the banner's "nightly
// reconciliation" example fires: ReconcileFunction, else the first with a
// schedule (System B's poller has one too, every minute).
func scheduledFunction(p *project) string {
	first := ""
	for _, f := range p.tpl.Functions {
		if sm, _ := scheduledMachine(p.tpl, f.LogicalID); len(f.Schedules) == 0 && sm == nil {
			continue
		}
		if f.LogicalID == "ReconcileFunction" {
			return f.LogicalID
		}
		if first == "" {
			first = f.LogicalID
		}
	}
	return first
}

// banner is what `up` prints: the endpoints and commands that work as printed.
type banner struct {
	API, Lambda, S3 string
	Buckets         []string
	SystemB, Token  string
	Kafka           string // the Kafka bootstrap address; "" when none
	Webhook         string // where the simulator sends System B's change notifications; "" when nowhere
	Region          string
	Functions       []string
	Seeded          bool
	Lookup, Sync    [2]string // function, path
	Scheduled       string
	Captured        string   // the function an upload of the snapshot fires; "" for none
	Template        string   // "" for the default template.yaml
	LookupEvent     string   // a payload file for the aws lambda invoke example
	Mappings        []string // the Kafka event source mappings running
	DLQ             string   // their dead-letter store
}

// printBanner writes the banner with one Write, so it never interleaves with
// log lines.
func printBanner(w io.Writer, b banner) {
	var buf strings.Builder
	defer func() { io.WriteString(w, buf.String()) }() //nolint:errcheck // nowhere to report it
	show := demo.ShowcaseCustomers()
	p := func(format string, args ...any) { fmt.Fprintf(&buf, format+"\n", args...) }
	p("")
	p("The local stack is up (Ctrl-C stops it):")
	p("  HTTP API (API Gateway payload 2.0)  %s", b.API)
	p("  Lambda Invoke API                   %s  (%s)", b.Lambda, strings.Join(b.Functions, ", "))
	if b.S3 != "" {
		p("  S3                                  %s  (buckets: %s)", b.S3, strings.Join(b.Buckets, ", "))
	}
	if b.SystemB != "" {
		p("  System B simulator                  %s  (faults: %s/_sim/)", b.SystemB, b.SystemB)
	}
	if b.Kafka != "" {
		p("  Kafka (embedded broker, kfake)      %s  (topics: %s)", b.Kafka, strings.Join(kafkalocal.Topics(), ", "))
	}
	if b.Webhook != "" {
		p("  System B webhook -> %s  (signed change notifications)", b.Webhook)
	}
	for i, m := range b.Mappings {
		label := ""
		if i == 0 {
			label = "Kafka event source mappings"
		}
		p("  %-36s%s", label, m)
	}
	if !b.Seeded {
		p("")
		p("(Demo data was not loaded: the examples below need it.)")
	}
	lookupPath := func(email string) string {
		return strings.Replace(b.Lookup[1], "{email}", url.PathEscape(email), 1)
	}
	p("")
	p("Try:")
	if b.Lookup[0] != "" {
		p("  # a customer in both systems with a real conflict (System B is newer)")
		p("  curl -s %s%s", b.API, lookupPath(show.Conflict))
	}
	if b.Sync[0] != "" {
		p("  # the field-level conflicts, without merging")
		p(`  curl -s -X POST %s%s -H 'content-type: application/json' -d '{"email":"%s"}'`, b.API, b.Sync[1], show.Conflict)
	}
	if b.Lookup[0] != "" && b.LookupEvent != "" {
		p("  # the same function through the Lambda Invoke API, with the AWS CLI (v1 or v2)")
		p("  aws lambda invoke --endpoint-url %s --no-sign-request --region %s --function-name %s --payload fileb://%s /dev/stdout",
			b.Lambda, b.Region, b.Lookup[0], b.LookupEvent)
	}
	if b.Lookup[0] != "" {
		if b.SystemB != "" {
			p("  # a partial result: take System B down, look up, bring it back")
			p(`  curl -s -X PUT %s/_sim/faults -d '{"down":true}'`, b.SystemB)
			p("  curl -s %s%s", b.API, lookupPath(show.InSync))
			p("  curl -s -X POST %s/_sim/reset", b.SystemB)
			p("  # change System B and watch a conflict appear")
			p(`  curl -s -X PATCH %s/customers/%s -H 'authorization: Bearer %s' -H 'content-type: application/json' -d '{"loyaltyTier":"platinum"}'`,
				b.SystemB, url.PathEscape(show.InSync), b.Token)
			p("  curl -s %s%s", b.API, lookupPath(show.InSync))
		}
	}
	if b.Kafka != "" {
		p("  # the change events, with any Kafka client, e.g. Debian's kcat (a PATCH above arrives through the webhook)")
		p("  kcat -b %s -C -t %s -f '%%k %%h %%s\\n'", b.Kafka, kafkalocal.Topics()[1])
		if b.Captured != "" {
			p("  # System A's change events: %s captures every upload of the snapshot", b.Captured)
			p("  kcat -b %s -C -t %s -f '%%k %%h %%s\\n'", b.Kafka, kafkalocal.Topics()[0])
		}
	}
	if len(b.Mappings) > 0 && slices.Contains(kafkalocal.Topics(), syncworker.TopicUnified) {
		p("  # the merged view and the conflicts the sync worker keeps current (a PATCH above shows in a second or two)")
		p("  kcat -b %s -C -t %s -f '%%k %%s\\n'", b.Kafka, syncworker.TopicUnified)
		p("  kcat -b %s -C -t %s -f '%%k %%s\\n'", b.Kafka, syncworker.TopicConflicts)
	}
	if len(b.Mappings) > 0 {
		tflag := ""
		if b.Template != "" {
			tflag = " -t " + b.Template
		}
		p("  # the batches the Kafka mappings gave up on (%s)", b.DLQ)
		p("  go run ./cmd/local dlq list%s", tflag)
	}
	if b.Scheduled != "" {
		p("  # the nightly reconciliation, now; then its report")
		tflag := ""
		if b.Template != "" {
			tflag = " -t " + b.Template
		}
		p("  go run ./cmd/local schedule %s%s", b.Scheduled, tflag)
		if b.S3 != "" {
			p("  aws s3 ls --endpoint-url %s --no-sign-request --region %s --recursive s3://%s/", b.S3, b.Region, reportBucket(b.Buckets))
		}
	}
	p("")
}

// reportBucket guesses the report bucket for the banner: the one that is
// not the snapshot's, else the first.
func reportBucket(buckets []string) string {
	for _, b := range buckets {
		if strings.Contains(b, "report") {
			return b
		}
	}
	if len(buckets) > 0 {
		return buckets[0]
	}
	return ""
}

// writeLookupEvent writes the payload 2.0 event of GET path for email and
// returns its path as the banner should print it (relative to the working
// directory when below it).
func writeLookupEvent(dir, route, email string) (string, error) {
	if route == "" {
		return "", nil
	}
	path := strings.Replace(route, "{email}", url.PathEscape(email), 1)
	ev, err := json.MarshalIndent(map[string]any{
		"version": "2.0", "routeKey": "GET " + route, "rawPath": path, "rawQueryString": "",
		"headers":         map[string]string{"accept": "application/json"},
		"pathParameters":  map[string]string{"email": email},
		"requestContext":  map[string]any{"http": map[string]string{"method": "GET", "path": path}, "stage": "$default"},
		"isBase64Encoded": false,
	}, "", "  ")
	if err != nil {
		return "", fmt.Errorf("example event: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("example event: %w", err)
	}
	file := filepath.Join(dir, "lookup-event.json")
	if err := os.WriteFile(file, append(ev, '\n'), 0o644); err != nil {
		return "", fmt.Errorf("example event: %w", err)
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return file, nil
	}
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, abs); err == nil && !strings.HasPrefix(rel, "..") {
			return rel, nil
		}
	}
	return abs, nil
}
