package cli

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/acme/unified-customer-service/cmd/local/internal/build"
	"github.com/acme/unified-customer-service/cmd/local/internal/samtemplate"
	"github.com/acme/unified-customer-service/cmd/local/internal/sandbox"
	"github.com/acme/unified-customer-service/cmd/local/internal/stack"
	"github.com/acme/unified-customer-service/shared/location"
)

// The service's settings the tool fills in for the embedded services (see
// issue 3's configuration); everything else comes from the template.
const (
	envSystemBURL   = "SYSTEM_B_URL"
	envSystemBToken = "SYSTEM_B_TOKEN"
	envSnapshotURI  = "SNAPSHOT_URI"
	envS3Endpoint   = "AWS_ENDPOINT_URL_S3"
	envKafka        = "KAFKA_BOOTSTRAP_SERVERS"
	envWebhook      = "SYSTEM_B_WEBHOOK_SECRET"
	envDedupStore   = "DEDUP_STORE"
)

// realAWS is the --s3-endpoint value that means "real S3".
const realAWS = "aws"

// awsPassThrough are the variables passed on from this shell with
// --s3-endpoint aws, so the SDK in a function finds real credentials.
var awsPassThrough = []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	"AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "HOME"}

// project is a loaded template with its functions running in sandboxes.
type project struct {
	tpl     *samtemplate.Template
	funcs   sandbox.Set
	stack   *stack.Stack
	s3URL   string // what AWS_ENDPOINT_URL_S3 is ("" for real S3)
	buckets []string
}

// loadTemplate reads the template with the command line's overrides and
// prints its warnings.
func (a *App) loadTemplate(o *options) (*samtemplate.Template, error) {
	overrides, err := samtemplate.ParseParameterOverrides(o.overrides...)
	if err != nil {
		return nil, usageError{err.Error()}
	}
	tpl, err := samtemplate.Load(o.template, samtemplate.Options{Parameters: overrides, Region: o.region})
	if err != nil {
		return nil, err
	}
	for _, w := range tpl.Warnings {
		a.logf("warning: template: %s", w)
	}
	if o.buildDir == "" {
		o.buildDir = filepath.Join(tpl.Dir, ".local", "build")
	}
	if o.dataDir == "" {
		o.dataDir = filepath.Join(tpl.Dir, ".local")
	}
	return tpl, nil
}

// loadFunctions loads the template and selects the named functions (all of
// them for none).
func (a *App) loadFunctions(o *options, ids []string) (*samtemplate.Template, []*samtemplate.Function, error) {
	tpl, err := a.loadTemplate(o)
	if err != nil {
		return nil, nil, err
	}
	fns, err := selectFunctions(tpl, ids)
	if err != nil {
		return nil, nil, err
	}
	return tpl, fns, nil
}

// selectFunctions returns the named functions, or all of them for none.
func selectFunctions(tpl *samtemplate.Template, ids []string) ([]*samtemplate.Function, error) {
	if len(ids) == 0 {
		return tpl.Functions, nil
	}
	var out []*samtemplate.Function
	for _, id := range ids {
		f, ok := tpl.Function(id)
		if !ok {
			return nil, usageError{fmt.Sprintf("the template has no function %q (it has %s)", id, strings.Join(tpl.FunctionIDs(), ", "))}
		}
		out = append(out, f)
	}
	return out, nil
}

// buildAll builds (or, with --skip-build, finds) the bootstraps.
func (a *App) buildAll(ctx context.Context, o *options, fns []*samtemplate.Function) (map[string]string, error) {
	b := &build.Builder{Dir: o.buildDir, Log: a.logger()}
	out := map[string]string{}
	for _, f := range fns {
		var p string
		var err error
		if o.skipBuild {
			p, err = b.Existing(f)
		} else {
			a.logf("Building %s for this machine (make build-%s)", f.LogicalID, f.LogicalID)
			p, err = b.Build(ctx, f)
		}
		if err != nil {
			return nil, err
		}
		out[f.LogicalID] = p
	}
	return out, nil
}

// openProject loads the template, builds the functions named (all for
// none), starts or finds the embedded services per --embedded, and prepares a
// sandbox per function. Close it.
func (a *App) openProject(ctx context.Context, o *options, ids []string) (p *project, err error) {
	mode, err := stack.ParseMode(o.embedded)
	if err != nil {
		return nil, usageError{err.Error()}
	}
	tpl, fns, err := a.loadFunctions(o, ids)
	if err != nil {
		return nil, err
	}
	if o.instances < 1 {
		return nil, usageError{"--instances must be at least 1"}
	}
	ev := samtemplate.EnvVars{}
	if o.envVars != "" {
		data, err := os.ReadFile(o.envVars)
		if err != nil {
			return nil, fmt.Errorf("read --env-vars: %w", err)
		}
		if ev, err = samtemplate.ParseEnvVars(data); err != nil {
			return nil, err
		}
	}
	bootstraps, err := a.buildAll(ctx, o, fns)
	if err != nil {
		return nil, err
	}

	// The environment without the tool's settings says which embedded
	// services the functions point at.
	base := map[string]map[string]string{}
	var buckets []string
	var snapBucket, snapKey string
	useSim, useKafka := false, o.kafka
	for _, f := range fns {
		env, _ := f.ComposeEnv(ev.Layers(f.LogicalID)...)
		base[f.LogicalID] = env
		for k, v := range env {
			if u, err := location.Parse(k, v, location.Prefix); err == nil && u.Scheme == "s3" {
				if !slices.Contains(buckets, u.Bucket) {
					buckets = append(buckets, u.Bucket)
				}
				if k == envSnapshotURI {
					snapBucket, snapKey = u.Bucket, u.Key
				}
			}
		}
		if isLoopbackURL(env[envSystemBURL]) {
			useSim = true
		}
		if isLoopbackBrokers(env[envKafka]) || (o.mappings && len(f.Kafka) > 0) {
			useKafka = true
		}
	}
	slices.Sort(buckets)
	cfg := stack.Config{
		S3: mode, BSim: mode,
		S3Addr: o.s3Addr, S3Dir: filepath.Join(o.dataDir, "s3"), Buckets: buckets,
		BSimAddr: o.bsimAddr, BSimLatency: o.bsimLatency,
		Kafka: mode, KafkaAddr: o.kafkaAddr, KafkaDir: filepath.Join(o.dataDir, "kafka"),
		Seed: !o.noSeed, DemoDir: filepath.Join(o.dataDir, "demo"),
		SnapshotBucket: snapBucket, SnapshotKey: snapKey,
		Log: a.logger(), OnObjectCreated: o.onObjectCreated,
	}
	if o.s3Endpoint != "" {
		cfg.S3 = stack.Off
	}
	if o.systemBURL != "" || !useSim {
		cfg.BSim = stack.Off
	}
	if !useKafka {
		cfg.Kafka = stack.Off
	}
	st, err := stack.Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	p = &project{tpl: tpl, funcs: sandbox.Set{}, stack: st, buckets: buckets}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	forced := map[string]string{}
	switch o.s3Endpoint {
	case realAWS:
		for _, k := range awsPassThrough {
			if v := a.getenv(k); v != "" {
				forced[k] = v
			}
		}
	case "":
		p.s3URL = st.S3URL
	default:
		p.s3URL = o.s3Endpoint
	}
	if p.s3URL != "" {
		forced[envS3Endpoint] = p.s3URL
	}
	declaredAnywhere := map[string]bool{}
	for _, f := range fns {
		for k := range f.Environment {
			declaredAnywhere[k] = true
		}
	}
	for k := range ev.Parameters {
		if !declaredAnywhere[k] {
			a.logf("warning: --env-vars: Parameters.%s is declared by no function; ignored", k)
		}
	}
	for _, f := range fns {
		tool := map[string]string{}
		switch {
		case o.systemBURL != "":
			tool[envSystemBURL] = o.systemBURL
		case st.SystemBURL != "" && isLoopbackURL(base[f.LogicalID][envSystemBURL]):
			tool[envSystemBURL] = st.SystemBURL
			tool[envSystemBToken] = st.SystemBToken
			tool[envWebhook] = st.SystemBWebhookSecret
		}
		if st.KafkaBrokers != "" && isLoopbackBrokers(base[f.LogicalID][envKafka]) {
			tool[envKafka] = st.KafkaBrokers
		}
		// The sync worker's DynamoDB dedup table has its embedded equivalent
		// locally: one SQLite file per function under the data directory.
		// (The template's dynamodb://${SyncDedupTable} does not resolve locally.)
		if v, ok := base[f.LogicalID][envDedupStore]; ok && !strings.HasPrefix(v, "file://") && o.s3Endpoint != realAWS {
			if abs, err := filepath.Abs(filepath.Join(o.dataDir, "dedup", f.LogicalID+".db")); err == nil {
				tool[envDedupStore] = "file://" + abs
			}
		}
		env, ignored := f.ComposeEnv(tool, ev.Parameters, ev.Functions[f.LogicalID])
		for _, k := range ignored {
			if _, own := ev.Functions[f.LogicalID][k]; own {
				a.logf("warning: --env-vars: %s.%s is not declared in the template; ignored (as sam does)", f.LogicalID, k)
			}
		}
		fn, err := sandbox.New(sandbox.Config{
			Name:         f.LogicalID,
			Bootstrap:    bootstraps[f.LogicalID],
			Handler:      f.Handler,
			Runtime:      f.Runtime,
			Timeout:      f.Timeout,
			MemoryMB:     f.MemoryMB,
			Region:       tpl.Region,
			AccountID:    tpl.AccountID,
			Env:          env,
			Forced:       forced,
			MaxInstances: o.instances,
			Log:          a.logger(),
			Now:          a.Now,
		})
		if err != nil {
			return nil, err
		}
		p.funcs[f.LogicalID] = fn
	}
	return p, nil
}

// Close stops the functions and the services the project started.
func (p *project) Close() {
	p.funcs.Close() //nolint:errcheck // never fails
	if p.stack != nil {
		p.stack.Close() //nolint:errcheck // best effort at exit
	}
}

// isLoopbackBrokers reports whether a Kafka bootstrap list names only
// this machine (the template's default does: the embedded broker's address).
func isLoopbackBrokers(list string) bool {
	if strings.TrimSpace(list) == "" {
		return false
	}
	for b := range strings.SplitSeq(list, ",") {
		host, _, err := net.SplitHostPort(strings.TrimSpace(b))
		if err != nil {
			return false
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return false
		}
	}
	return true
}

// isLoopbackURL reports whether u points at this machine (the template's
// default System B URL does: the simulator's address).
func isLoopbackURL(u string) bool {
	pu, err := url.Parse(u)
	if err != nil || pu.Host == "" {
		return false
	}
	host := pu.Hostname()
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}
