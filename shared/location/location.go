// Package location parses the storage locations the functions are
// configured with, SNAPSHOT_URI and REPORT_URI: s3://bucket/key and
// file:///abs/path. It is the one parser (and the one set of error
// messages) behind the configuration check (shared/config) and the
// adapters that open the locations (shared/systema, shared/report), and the
// local tool reads the template's buckets with it.
package location

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// Kind says what a URI names.
type Kind int

const (
	// Object is one object or file: s3://bucket/key or
	// file:///abs/path.db (SNAPSHOT_URI). The key is required.
	Object Kind = iota
	// Prefix is a key prefix or a directory: s3://bucket, s3://bucket/prefix
	// or file:///abs/dir (REPORT_URI). The prefix may be empty.
	Prefix
)

// form is what a URI of the kind looks like, for error messages.
func (k Kind) form() string {
	if k == Prefix {
		return "want s3://bucket/prefix or file:///abs/dir"
	}
	return "want s3://bucket/key or file:///abs/path.db"
}

// URI is a parsed location.
type URI struct {
	Scheme string // "s3" or "file"
	Bucket string // s3 only
	Key    string // s3 only: the object key, or the prefix without surrounding slashes
	Path   string // file only: absolute, cleaned
}

// String renders the URI back in the form Parse reads.
func (u URI) String() string {
	if u.Scheme == "s3" {
		return "s3://" + u.Bucket + "/" + u.Key
	}
	return "file://" + u.Path
}

// Parse parses s, the value of the setting named setting (which every
// error names, with the form expected), as a URI of kind k. An all-space
// value is empty; a file URI may name the host localhost; no URI may carry
// a query, a fragment or user info.
func Parse(setting, s string, k Kind) (URI, error) {
	if strings.TrimSpace(s) == "" {
		return URI{}, fmt.Errorf("%s is empty (%s)", setting, k.form())
	}
	u, err := url.Parse(s)
	if err != nil {
		return URI{}, fmt.Errorf("%s %q does not parse (%s): %w", setting, s, k.form(), err)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return URI{}, fmt.Errorf("%s %q: no query, fragment or user info allowed (%s)", setting, s, k.form())
	}
	switch u.Scheme {
	case "s3":
		key := strings.TrimPrefix(u.Path, "/")
		if k == Prefix {
			if u.Host == "" {
				return URI{}, fmt.Errorf("%s %q: needs a bucket (%s)", setting, s, k.form())
			}
			return URI{Scheme: "s3", Bucket: u.Host, Key: strings.Trim(key, "/")}, nil
		}
		if u.Host == "" || key == "" || strings.HasSuffix(key, "/") {
			return URI{}, fmt.Errorf("%s %q: needs a bucket and an object key (%s)", setting, s, k.form())
		}
		return URI{Scheme: "s3", Bucket: u.Host, Key: key}, nil
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return URI{}, fmt.Errorf("%s %q: file URIs take no host (%s)", setting, s, k.form())
		}
		if u.Path == "" || !filepath.IsAbs(u.Path) || (k == Object && strings.HasSuffix(u.Path, "/")) {
			return URI{}, fmt.Errorf("%s %q: needs an absolute file path (%s)", setting, s, k.form())
		}
		return URI{Scheme: "file", Path: filepath.Clean(u.Path)}, nil
	default:
		return URI{}, fmt.Errorf("%s %q: unsupported scheme %q (%s)", setting, s, u.Scheme, k.form())
	}
}
