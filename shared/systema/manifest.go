package systema

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"fmt"
	"io"
	"os"
	"strconv"
)

// Manifest is what the export contract gives a reader that never reads a
// snapshot whole (range mode): the page size, page count and size the
// exporter wrote, and the SHA-256 of the whole file. It travels as the
// object's user metadata (x-amz-meta-ucs-*: bound to the object version,
// read by the HEAD that names the version, no request of its own) and, at
// export, as a JSON file beside the snapshot (ManifestFile). A range-mode
// reader checks the page size, count and size against the object and its
// header; the checksum is checked by the download mode, which reads every
// byte anyway.
type Manifest struct {
	PageSize  int64  `json:"pageSize"`
	PageCount int64  `json:"pageCount"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"` // lower-case hex
}

// The object metadata keys of a Manifest (S3 sends them as
// x-amz-meta-<key>; the SDK's Metadata maps use the bare key).
const (
	MetaPageSize  = "ucs-page-size"
	MetaPageCount = "ucs-page-count"
	MetaSize      = "ucs-size"
	MetaSHA256    = "ucs-sha256"
)

// ManifestFile returns where the exporter puts the manifest of the snapshot
// at path: path + ".manifest.json".
func ManifestFile(path string) string { return path + ".manifest.json" }

// IsZero reports a missing manifest.
func (m Manifest) IsZero() bool { return m == Manifest{} }

// Metadata returns m as object metadata (PutObjectInput.Metadata).
func (m Manifest) Metadata() map[string]string {
	return map[string]string{
		MetaPageSize:  strconv.FormatInt(m.PageSize, 10),
		MetaPageCount: strconv.FormatInt(m.PageCount, 10),
		MetaSize:      strconv.FormatInt(m.Size, 10),
		MetaSHA256:    m.SHA256,
	}
}

// ErrBadManifest is returned (wrapped) for a manifest that does not
// describe its snapshot. Its kind is merge.ErrBadData (it wraps
// ErrInvalidSnapshot).
var ErrBadManifest = fmt.Errorf("%w: manifest", ErrInvalidSnapshot)

// ManifestFromMetadata reads a Manifest from object metadata. An object
// without any of the keys has none (zero Manifest, nil): such snapshots are
// still read, with the header checks alone. Some keys but not all, or a
// malformed value, is an error wrapping ErrBadManifest.
func ManifestFromMetadata(md map[string]string) (Manifest, error) {
	var m Manifest
	found := 0
	for _, f := range []struct {
		key string
		v   *int64
	}{{MetaPageSize, &m.PageSize}, {MetaPageCount, &m.PageCount}, {MetaSize, &m.Size}} {
		s, ok := md[f.key]
		if !ok {
			continue
		}
		found++
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return Manifest{}, fmt.Errorf("%w: %s is not a positive number", ErrBadManifest, f.key)
		}
		*f.v = n
	}
	if s, ok := md[MetaSHA256]; ok {
		found++
		if b, err := hex.DecodeString(s); err != nil || len(b) != sha256.Size {
			return Manifest{}, fmt.Errorf("%w: %s is not a hex SHA-256", ErrBadManifest, MetaSHA256)
		}
		m.SHA256 = s
	}
	switch found {
	case 0:
		return Manifest{}, nil
	case 4:
		if m.PageSize*m.PageCount != m.Size {
			return Manifest{}, fmt.Errorf("%w: %d pages of %d bytes are not %d bytes", ErrBadManifest, m.PageCount, m.PageSize, m.Size)
		}
		return m, nil
	default:
		return Manifest{}, fmt.Errorf("%w: some of %s, %s, %s, %s are missing", ErrBadManifest, MetaPageSize, MetaPageCount, MetaSize, MetaSHA256)
	}
}

// ManifestOf reads the snapshot file at path and returns its manifest
// (the header's page size and count, the size, the SHA-256).
func ManifestOf(path string) (Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return Manifest{}, fmt.Errorf("systema: manifest: %w", err)
	}
	defer f.Close()
	if err := checkHeader(f); err != nil {
		return Manifest{}, fmt.Errorf("systema: manifest of %s: %w", path, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return Manifest{}, fmt.Errorf("systema: manifest: %w", err)
	}
	h := sha256.New()
	head := make([]byte, 100)
	if _, err := io.ReadFull(f, head); err != nil {
		return Manifest{}, fmt.Errorf("systema: manifest: %w", err)
	}
	h.Write(head)
	n, err := io.Copy(h, f)
	if err != nil {
		return Manifest{}, fmt.Errorf("systema: manifest: %w", err)
	}
	ps, _ := headerPageSize(head) // checked by checkHeader
	size := n + int64(len(head))
	return Manifest{PageSize: ps, PageCount: size / ps, Size: size, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// WriteManifest writes the manifest of the snapshot at path to
// ManifestFile(path), as JSON, and returns it.
func WriteManifest(path string) (Manifest, error) {
	m, err := ManifestOf(path)
	if err != nil {
		return Manifest{}, err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Manifest{}, fmt.Errorf("systema: manifest: %w", err)
	}
	if err := os.WriteFile(ManifestFile(path), append(b, '\n'), 0o644); err != nil {
		return Manifest{}, fmt.Errorf("systema: manifest: %w", err)
	}
	return m, nil
}

// check checks m (if any) against a snapshot of size bytes whose first
// bytes are head: the size, the header's page size and, when the header
// vouches for it, its page count.
func (m Manifest) check(head []byte, size int64) error {
	if m.IsZero() {
		return nil
	}
	if m.Size != size {
		return fmt.Errorf("%w: says %d bytes, the object has %d (truncated or replaced)", ErrBadManifest, m.Size, size)
	}
	ps, err := headerPageSize(head)
	if err != nil {
		return err
	}
	if ps != m.PageSize {
		return fmt.Errorf("%w: says %d-byte pages, the header %d", ErrBadManifest, m.PageSize, ps)
	}
	if n := headerPages(head); n != 0 && n != m.PageCount {
		return fmt.Errorf("%w: says %d pages, the header %d", ErrBadManifest, m.PageCount, n)
	}
	return nil
}

// checkSum checks the SHA-256 of the downloaded file f against m (if any).
func (m Manifest) checkSum(f *os.File) error {
	if m.SHA256 == "" {
		return nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("systema: checksum: %w", err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("systema: checksum: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != m.SHA256 {
		return fmt.Errorf("%w: SHA-256 mismatch (the file is not the one exported)", ErrBadManifest)
	}
	return nil
}
