package systema

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
)

// FileSource reads the snapshot from a local file (file:// URIs, local
// runs). Its version is the file's size and modification time.
type FileSource struct {
	path string
	uri  string
}

var _ Source = (*FileSource)(nil)

// NewFileSource returns a Source for the file at path (absolute).
func NewFileSource(path string) *FileSource {
	return &FileSource{path: path, uri: URI{Scheme: "file", Path: path}.String()}
}

// Stat stats the file.
func (s *FileSource) Stat(ctx context.Context) (Version, error) {
	if err := ctx.Err(); err != nil {
		return Version{}, fmt.Errorf("systema: stat %s: %w", s.uri, err)
	}
	fi, err := os.Stat(s.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Version{}, fmt.Errorf("systema: stat %s: %w", s.uri, ErrNoSnapshot)
		}
		return Version{}, fmt.Errorf("systema: stat %s: %w", s.uri, err)
	}
	return s.version(fi)
}

func (s *FileSource) version(fi fs.FileInfo) (Version, error) {
	if !fi.Mode().IsRegular() {
		return Version{}, fmt.Errorf("systema: stat %s: not a regular file: %w", s.uri, ErrNoSnapshot)
	}
	mt := fi.ModTime().UTC()
	return Version{
		URI:          s.uri,
		ETag:         strconv.FormatInt(fi.Size(), 10) + "-" + strconv.FormatInt(mt.UnixNano(), 10),
		Size:         fi.Size(),
		LastModified: mt,
	}, nil
}

// Fetch copies the file into dst, failing with ErrChanged if it is no longer
// version v.
func (s *FileSource) Fetch(ctx context.Context, v Version, dst *os.File) error {
	f, err := os.Open(s.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("systema: open %s: %w", s.uri, ErrNoSnapshot)
		}
		return fmt.Errorf("systema: open %s: %w", s.uri, err)
	}
	defer f.Close()
	check := func() error {
		fi, err := f.Stat()
		if err != nil {
			return fmt.Errorf("systema: stat %s: %w", s.uri, err)
		}
		got, err := s.version(fi)
		if err != nil {
			return err
		}
		if !got.Same(v) {
			return fmt.Errorf("systema: fetch %s: %w", v, ErrChanged)
		}
		return nil
	}
	if err := check(); err != nil {
		return err
	}
	if _, err := io.Copy(dst, readerCtx{ctx, f}); err != nil {
		return fmt.Errorf("systema: copy %s: %w", s.uri, err)
	}
	return check() // a writer that rewrote the file in place changed its mtime
}

// readerCtx stops a copy when ctx is done.
type readerCtx struct {
	ctx context.Context
	r   io.Reader
}

func (r readerCtx) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
