// Package s3local is the embedded S3 server of the Docker-free local loop:
// gofakes3 serving the S3 REST API on 127.0.0.1, over a small file-backed
// backend of this package that keeps object versions.
//
// Why not a gofakes3 backend: s3mem supports versioning but keeps everything
// in memory (nothing survives a restart, and a 1,000,000-customer snapshot
// would sit in RAM once per version); s3bolt is file-backed but does not
// implement gofakes3.VersionedBackend, so a GET by VersionId fails. This
// backend stores each version's body as a file and its metadata as a small
// JSON file under Config.Dir, holds only the index in memory, and rebuilds it
// on start, so buckets, objects and their VersionIds survive a restart.
//
// What is supported: buckets (created on start, idempotently, with
// versioning enabled), PUT/GET/HEAD/DELETE objects, GET by versionId, range
// GETs, conditional PUT (If-None-Match: *, If-Match), ListObjects (v1, v2),
// ListObjectVersions, delete markers, multi-delete, copy, multipart uploads
// (assembled by gofakes3 in memory, then stored as one version). Requests
// are not authenticated: any credentials work. Use path-style addressing
// (NewClient does).
//
// Known gofakes3 v1.2.0 limits: HEAD with a versionId answers for the latest
// version; the SDK's default CRC32 checksums are accepted but not verified.
package s3local

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
)

// Defaults of Config.
const (
	DefaultAddr = "127.0.0.1:9000"
	DefaultDir  = ".local/s3" // relative to the working directory; git-ignored
)

// Region is the region clients should sign for; the server accepts any.
const Region = "us-east-1"

// ErrNotLoopback is returned (wrapped) by Start for an address that is not
// on the loopback interface: the server has no authentication.
var ErrNotLoopback = errors.New("s3local: address is not a loopback address")

// Config configures Start.
type Config struct {
	// Addr is the listen address; DefaultAddr when "". "127.0.0.1:0" picks
	// a free port. The host must be a loopback address or "localhost".
	Addr string
	// Dir holds the buckets and objects; DefaultDir when "". Created if
	// missing; an existing store is loaded.
	Dir string
	// Buckets are created on start when missing, and get versioning enabled.
	Buckets []string
	// Now is the clock of LastModified and version ids; time.Now when nil.
	Now func() time.Time
	// OnObjectCreated, when set, is called after every write that commits
	// an object version (PUT, copy, completed multipart upload), once the
	// version can be read: S3's "Object Created" event notification. It
	// runs on the request's goroutine before the answer is sent, so it
	// should hand the event on rather than work.
	OnObjectCreated func(ObjectCreated)
}

// ObjectCreated is what an S3 "Object Created" notification says of a
// new object version.
type ObjectCreated struct {
	Bucket    string
	Key       string
	VersionID string // "" for a version written while versioning was off
	ETag      string // hex MD5, unquoted (as the notification carries it)
	Size      int64
	Time      time.Time // the version's LastModified
}

// Server is a running embedded S3 server.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	dir  string
	done chan struct{}
	err  error
	stop func() bool
}

// Start loads (or creates) the store under cfg.Dir, creates cfg.Buckets with
// versioning enabled (existing ones are kept, versioning switched on), and
// serves the S3 API on cfg.Addr in the background until Close is called or
// ctx is done.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.Dir == "" {
		cfg.Dir = DefaultDir
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := checkLoopback(cfg.Addr); err != nil {
		return nil, err
	}
	be, err := openBackend(cfg.Dir, cfg.Now)
	if err != nil {
		return nil, err
	}
	be.created = cfg.OnObjectCreated
	for _, name := range cfg.Buckets {
		if err := ensureVersionedBucket(be, name); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("s3local: listen: %w", err)
	}
	faker := gofakes3.New(be, gofakes3.WithTimeSource(clock(cfg.Now)), gofakes3.WithAutoBucket(false))
	s := &Server{
		srv:  &http.Server{Handler: faker.Server(), ReadHeaderTimeout: 10 * time.Second},
		ln:   ln,
		dir:  cfg.Dir,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.err = err
		}
	}()
	s.stop = context.AfterFunc(ctx, func() { _ = s.srv.Close() })
	return s, nil
}

func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("s3local: address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("s3local: address %q: %w", addr, ErrNotLoopback)
	}
	return nil
}

func ensureVersionedBucket(be *backend, name string) error {
	if ok, _ := be.BucketExists(name); !ok {
		if err := be.CreateBucket(name); err != nil {
			return fmt.Errorf("s3local: create bucket %q: %w", name, err)
		}
	}
	if err := be.SetVersioningConfiguration(name, gofakes3.VersioningConfiguration{Status: gofakes3.VersioningEnabled}); err != nil {
		return fmt.Errorf("s3local: enable versioning on %q: %w", name, err)
	}
	return nil
}

// URL returns the endpoint URL, e.g. "http://127.0.0.1:9000".
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Dir returns the directory that holds the store.
func (s *Server) Dir() string { return s.dir }

// Close stops the server at once. Every acknowledged write is already on
// disk; Close returns the error that stopped serving, if any other than the
// close.
func (s *Server) Close() error {
	s.stop()
	err := s.srv.Close()
	<-s.done
	if s.err != nil {
		return fmt.Errorf("s3local: serve: %w", s.err)
	}
	if err != nil {
		return fmt.Errorf("s3local: close: %w", err)
	}
	return nil
}

// Client returns an S3 client for this server (see NewClient).
func (s *Server) Client() *s3.Client { return NewClient(s.URL()) }

// NewClient returns an aws-sdk-go-v2 S3 client for an S3-compatible endpoint
// such as this server's URL: path-style addressing, Region, fake static
// credentials, and checksums only where an operation requires them.
func NewClient(endpoint string) *s3.Client {
	return s3.New(s3.Options{
		Region:                     Region,
		BaseEndpoint:               aws.String(endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider("local", "local", ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// clock adapts a clock function to gofakes3.TimeSource.
type clock func() time.Time

func (c clock) Now() time.Time                  { return c() }
func (c clock) Since(t time.Time) time.Duration { return c().Sub(t) }
