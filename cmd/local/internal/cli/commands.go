package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/acme/unified-customer-service/cmd/local/internal/apigw"
	"github.com/acme/unified-customer-service/cmd/local/internal/invokeapi"
	"github.com/acme/unified-customer-service/cmd/local/internal/samtemplate"
	"github.com/acme/unified-customer-service/cmd/local/internal/sandbox"
	"github.com/acme/unified-customer-service/cmd/local/internal/schedule"
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
	return a.serve(ctx, servers(p, ln)...)
}

func (a *App) cmdSchedule(ctx context.Context, args []string) error {
	fs, o := a.newFlags("schedule", "local schedule <LogicalId>: build the event the function's Schedule/ScheduleV2 event source delivers now, and invoke it.")
	fs.StringVar(&o.eventName, "event-name", "", "the schedule event to fire, when the function has several")
	fs.StringVar(&o.at, "time", "", "the scheduled time, RFC 3339 (default now)")
	fs.BoolVar(&o.printEvent, "print-event", false, "print the event and do not invoke")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"schedule takes one function logical id"}
	}
	at := a.now()
	if o.at != "" {
		if at, err = time.Parse(time.RFC3339, o.at); err != nil {
			return usageError{fmt.Sprintf("--time: %v", err)}
		}
	}
	tpl, fns, err := a.loadFunctions(o, pos)
	if err != nil {
		return err
	}
	s, err := schedule.Pick(fns[0], o.eventName)
	if err != nil {
		return usageError{err.Error()}
	}
	payload, err := schedule.Event(s, schedule.Options{Function: pos[0], Time: at, Region: tpl.Region, AccountID: tpl.AccountID, StackName: tpl.StackName})
	if err != nil {
		return err
	}
	if o.printEvent {
		fmt.Fprintf(a.Stdout, "%s\n", payload)
		return nil
	}
	a.logf("Firing %s's %s event %s (%s)", pos[0], s.Type, s.EventName, s.Expression)
	return a.invokeOnce(ctx, o, pos[0], payload)
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
