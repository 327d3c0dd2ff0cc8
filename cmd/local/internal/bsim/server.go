package bsim

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// DefaultAddr is the address Serve listens on when given "".
const DefaultAddr = "127.0.0.1:8081"

// ErrNotLoopback is returned (wrapped) by Serve for an address that is not on
// the loopback interface: the simulator serves demo data and an admin API
// without authentication, so it never listens beyond this machine.
var ErrNotLoopback = errors.New("bsim: address is not a loopback address")

// Server is a running simulator HTTP server.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
	err  error
}

// Serve starts serving s.Handler() on addr (DefaultAddr when "";
// "127.0.0.1:0" picks a free port) in the background. The host must be a
// loopback address or "localhost". Stop it with Server.Close.
func (s *Sim) Serve(addr string) (*Server, error) {
	if addr == "" {
		addr = DefaultAddr
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("bsim: serve: %w", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("bsim: serve %q: %w", addr, ErrNotLoopback)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("bsim: serve: %w", err)
	}
	srv := &Server{
		srv:  &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second},
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(srv.done)
		if err := srv.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			srv.err = err
		}
	}()
	return srv, nil
}

// URL returns the base URL of System B API v1 on this server, e.g.
// "http://127.0.0.1:8081" (no trailing slash).
func (srv *Server) URL() string { return "http://" + srv.ln.Addr().String() }

// Addr returns the address the server listens on.
func (srv *Server) Addr() net.Addr { return srv.ln.Addr() }

// Close stops the server at once, closing every connection (requests held by
// the hang fault end with it), and returns the error that stopped serving,
// if any other than the close.
func (srv *Server) Close() error {
	err := srv.srv.Close()
	<-srv.done
	if srv.err != nil {
		return fmt.Errorf("bsim: serve: %w", srv.err)
	}
	if err != nil {
		return fmt.Errorf("bsim: close: %w", err)
	}
	return nil
}
