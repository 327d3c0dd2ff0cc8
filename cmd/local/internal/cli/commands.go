package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/acme/unified-customer-service/cmd/local/internal/apigw"
	"github.com/acme/unified-customer-service/cmd/local/internal/invokeapi"
	"github.com/acme/unified-customer-service/cmd/local/internal/samtemplate"
	"github.com/acme/unified-customer-service/cmd/local/internal/sandbox"
	"github.com/acme/unified-customer-service/cmd/local/internal/schedule"
	"github.com/acme/unified-customer-service/cmd/local/internal/statemachine"
)

func (a *App) cmdInvoke(ctx context.Context, args []string) error {
	fs, o := a.newFlags("invoke", "local invoke <LogicalId> [-e event.json|-]: run one event, the response on stdout, the logs on stderr;\nthe exit status is 1 when the function returned an error.")
	fs.StringVar(&o.event, "event", "", `event file, "-" for stdin (default {})`)
	fs.StringVar(&o.event, "e", "", "same as --event")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usageError{"invoke takes one function logical id"}
	}
	payload, err := a.readEvent(o.event)
	if err != nil {
		return err
	}
	if !json.Valid(payload) {
		return usageError{"the event is not valid JSON"}
	}
	ids := pos
	if len(ids) == 0 {
		tpl, err := a.loadTemplate(o)
		if err != nil {
			return err
		}
		if len(tpl.Functions) != 1 {
			return usageError{fmt.Sprintf("name the function to invoke (one of %v)", tpl.FunctionIDs())}
		}
		ids = tpl.FunctionIDs()
	}
	return a.invokeOnce(ctx, o, ids[0], payload)
}

// invokeOnce opens the project for function id, runs one event and prints
// the response (or error document) on stdout.
func (a *App) invokeOnce(ctx context.Context, o *options, id string, payload []byte) error {
	p, err := a.openProject(ctx, o, []string{id})
	if err != nil {
		return err
	}
	defer p.Close()
	stop := context.AfterFunc(ctx, func() { p.funcs.Close() }) //nolint:errcheck // Close never fails
	defer stop()
	res, err := p.funcs.Invoke(ctx, id, payload, sandbox.InvokeOptions{})
	if errors.Is(err, sandbox.ErrClosed) && ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	if err != nil {
		return err
	}
	out := res.Payload
	if len(out) == 0 || out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	a.Stdout.Write(out) //nolint:errcheck // nowhere to report it
	if res.FunctionError != "" {
		return errFunction
	}
	return nil
}

func (a *App) cmdStartAPI(ctx context.Context, args []string) error {
	fs, o := a.newFlags("start-api", "local start-api: serve the template's HttpApi routes as API Gateway HTTP API (payload 2.0) on 127.0.0.1:3000.")
	serverFlags(fs, o, 3000)
	return a.serveCommand(ctx, fs, o, args, func(p *project, ln net.Listener) []*namedServer {
		return []*namedServer{a.apiServer(p, ln)}
	})
}

func (a *App) cmdStartLambda(ctx context.Context, args []string) error {
	fs, o := a.newFlags("start-lambda", "local start-lambda: serve the Lambda Invoke API on 127.0.0.1:3001\n(aws lambda invoke --endpoint-url http://127.0.0.1:3001 --function-name <LogicalId> ...).")
	serverFlags(fs, o, 3001)
	o.mappings = true
	return a.serveCommand(ctx, fs, o, args, func(p *project, ln net.Listener) []*namedServer {
		return []*namedServer{a.lambdaServer(ctx, p, ln)}
	})
}

// serveCommand is start-api's and start-lambda's body: listen, open the
// project, serve until ctx ends.
func (a *App) serveCommand(ctx context.Context, fs *flag.FlagSet, o *options, args []string, servers func(*project, net.Listener) []*namedServer) error {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := checkHost(o.host, o.allowRemote); err != nil {
		return err
	}
	ln, err := listen(o.host, o.port)
	if err != nil {
		return err
	}
	defer ln.Close()
	p, err := a.openProject(ctx, o, pos)
	if err != nil {
		return err
	}
	defer p.Close()
	if o.mappings {
		lines, stop, err := a.startMappings(ctx, p, o)
		if err != nil {
			return err
		}
		defer stop()
		for _, l := range lines {
			a.logf("Kafka event source mapping: %s", l)
		}
	}
	return a.serve(ctx, servers(p, ln)...)
}

func (a *App) cmdSchedule(ctx context.Context, args []string) error {
	fs, o := a.newFlags("schedule", "local schedule <LogicalId>: build the event the Schedule/ScheduleV2 event source delivers now and deliver it:\n"+
		"to the function, or, when a state machine holds the schedule (a state machine's id, or a function that only a\n"+
		"scheduled state machine invokes), run that state machine's definition locally, printing each step.")
	fs.StringVar(&o.eventName, "event-name", "", "the schedule event to fire, when there are several")
	fs.StringVar(&o.at, "time", "", "the scheduled time, RFC 3339 (default now)")
	fs.BoolVar(&o.printEvent, "print-event", false, "print the event and do not invoke")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"schedule takes one logical id (a function or a state machine)"}
	}
	at := a.now()
	if o.at != "" {
		if at, err = time.Parse(time.RFC3339, o.at); err != nil {
			return usageError{fmt.Sprintf("--time: %v", err)}
		}
	}
	tpl, err := a.loadTemplate(o)
	if err != nil {
		return err
	}
	sm, err := scheduledMachine(tpl, pos[0])
	if err != nil {
		return err
	}
	var holder *samtemplate.Function // what holds the schedule: a function, or a state machine's events
	if sm != nil {
		holder = &samtemplate.Function{LogicalID: sm.LogicalID, Schedules: sm.Schedules}
	} else {
		fns, err := selectFunctions(tpl, pos)
		if err != nil {
			return err
		}
		holder = fns[0]
	}
	s, err := schedule.Pick(holder, o.eventName)
	if err != nil {
		return usageError{err.Error()}
	}
	payload, err := schedule.Event(s, schedule.Options{Function: holder.LogicalID, Time: at, Region: tpl.Region, AccountID: tpl.AccountID, StackName: tpl.StackName})
	if err != nil {
		return err
	}
	if o.printEvent {
		fmt.Fprintf(a.Stdout, "%s\n", payload)
		return nil
	}
	a.logf("Firing %s's %s event %s (%s)", holder.LogicalID, s.Type, s.EventName, s.Expression)
	if sm == nil {
		return a.invokeOnce(ctx, o, pos[0], payload)
	}
	return a.runMachine(ctx, o, sm, payload)
}

// scheduledMachine returns the state machine that id names, or the one
// with a schedule that invokes the function id when the function has no
// schedule of its own; nil when the function holds its schedule.
func scheduledMachine(tpl *samtemplate.Template, id string) (*samtemplate.StateMachine, error) {
	if sm, ok := tpl.StateMachine(id); ok {
		return sm, nil
	}
	if f, ok := tpl.Function(id); !ok || len(f.Schedules) > 0 {
		return nil, nil
	}
	for _, sm := range tpl.StateMachines {
		m, err := statemachine.New(sm.Definition)
		if err != nil || len(sm.Schedules) == 0 {
			continue
		}
		if slices.Contains(m.Functions(), id) {
			return sm, nil
		}
	}
	return nil, nil
}

// runMachine runs a state machine's definition on the local functions, as
// Step Functions would: each state printed as it ends, the output on stdout.
// Its SQS tasks print the message (there is no local queue). Retry waits
// are AWS's, in real time.
func (a *App) runMachine(ctx context.Context, o *options, sm *samtemplate.StateMachine, input []byte) error {
	m, err := statemachine.New(sm.Definition)
	if err != nil {
		return fmt.Errorf("%s: %w", sm.LogicalID, err)
	}
	p, err := a.openProject(ctx, o, m.Functions())
	if err != nil {
		return err
	}
	defer p.Close()
	stop := context.AfterFunc(ctx, func() { p.funcs.Close() }) //nolint:errcheck // Close never fails
	defer stop()
	m.Invoke = func(ctx context.Context, fn string, payload []byte) (statemachine.Result, error) {
		res, err := p.funcs.Invoke(ctx, fn, payload, sandbox.InvokeOptions{})
		if err != nil {
			return statemachine.Result{}, err
		}
		if res.FunctionError == "" {
			return statemachine.Result{Payload: res.Payload}, nil
		}
		var doc struct {
			Type    string `json:"errorType"`
			Message string `json:"errorMessage"`
		}
		_ = json.Unmarshal(res.Payload, &doc) //nolint:errcheck // an undecodable document keeps its type below
		name := cmp.Or(doc.Type, res.ErrorType, "Lambda.Unknown")
		return statemachine.Result{Error: name, Cause: doc.Message}, nil
	}
	m.Send = func(_ context.Context, queue string, body []byte) error {
		a.logf("%s: message to %s: %s", sm.LogicalID, queue, body)
		return nil
	}
	m.OnStep = func(st statemachine.Step) {
		switch {
		case st.Err != "":
			a.logf("%s: step %d %s (%s): error %s", sm.LogicalID, st.N, st.State, st.Type, st.Err)
		case st.Retry > 0:
			a.logf("%s: step %d %s (%s), retry %d after %s: %s", sm.LogicalID, st.N, st.State, st.Type, st.Retry, st.Wait, st.Output)
		default:
			a.logf("%s: step %d %s (%s): %s", sm.LogicalID, st.N, st.State, st.Type, st.Output)
		}
	}
	out, err := m.Run(ctx, input, "local-"+sandbox.NewRequestID())
	if err != nil {
		if errors.Is(err, sandbox.ErrClosed) && ctx.Err() != nil {
			return fmt.Errorf("interrupted: %w", ctx.Err())
		}
		return err
	}
	fmt.Fprintf(a.Stdout, "%s\n", out)
	return nil
}

func (a *App) cmdBuild(ctx context.Context, args []string) error {
	fs, o := a.newFlags("build", "local build [<LogicalId>...]: build the bootstraps for this machine with the Makefile.")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	_, fns, err := a.loadFunctions(o, pos)
	if err != nil {
		return err
	}
	paths, err := a.buildAll(ctx, o, fns)
	if err != nil {
		return err
	}
	for _, f := range fns {
		fmt.Fprintf(a.Stdout, "%s\t%s\n", f.LogicalID, paths[f.LogicalID])
	}
	return nil
}

// apiServer is start-api's server.
func (a *App) apiServer(p *project, ln net.Listener) *namedServer {
	var routes []samtemplate.FunctionRoute
	for _, r := range p.tpl.SortedRoutes() {
		if p.funcs.Has(r.Function) {
			routes = append(routes, r)
		}
	}
	base := "http://" + ln.Addr().String()
	for _, r := range routes {
		a.logf("Mounting %s at %s%s [%s]", r.Function, base, r.Path, r.Method)
	}
	h := &apigw.Server{Router: apigw.NewRouter(routes), Invoker: p.funcs, AccountID: p.tpl.AccountID, Log: a.logger(), Now: a.Now}
	return &namedServer{name: "start-api", url: base, ln: ln, srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
}

// lambdaServer is start-lambda's server.
func (a *App) lambdaServer(ctx context.Context, p *project, ln net.Listener) *namedServer {
	base := "http://" + ln.Addr().String()
	a.logf("Lambda Invoke API at %s for %v", base, p.funcs.Names())
	h := &invokeapi.Server{Invoker: p.funcs, Region: p.tpl.Region, AccountID: p.tpl.AccountID, Log: a.logger(), Background: ctx}
	return &namedServer{name: "start-lambda", url: base, ln: ln, srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
}

type namedServer struct {
	name, url string
	ln        net.Listener
	srv       *http.Server
}

// serve runs the servers until ctx ends or one fails, then shuts them down.
func (a *App) serve(ctx context.Context, servers ...*namedServer) error {
	errc := make(chan error, len(servers))
	for _, s := range servers {
		go func() {
			if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s: %w", s.name, err)
			}
		}()
	}
	var err error
	select {
	case <-ctx.Done():
		a.logf("Shutting down")
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for _, s := range servers {
		s.srv.Shutdown(sctx) //nolint:errcheck // closing anyway
		s.srv.Close()        //nolint:errcheck // closing anyway
	}
	return err
}

func listen(host string, port int) (net.Listener, error) {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w (is another `local` running?)", addr, err)
	}
	return ln, nil
}
