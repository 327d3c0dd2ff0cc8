package s3local

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"
)

// backend is a file-backed gofakes3.Backend with object versioning.
//
// Layout under dir (one directory per bucket; bucket names are validated, so
// they are safe path elements):
//
//	<bucket>/bucket.json          name, creation time, versioning status
//	<bucket>/v/<id>.data          the body of version <id>
//	<bucket>/v/<id>.json          its metadata (key, time, hash, size, ...);
//	                              written last, so it commits the version
//	<bucket>/tmp/                 bodies being received
//
// <id> is a 16-digit hex counter that only grows (also across restarts), so
// versions sort by age. The index of every version is held in memory (bodies
// stay on disk), rebuilt from the .json files on start. Versions written
// while versioning was not enabled are "null" versions, as in S3: their
// VersionID is "" and the next unversioned write replaces them.
type backend struct {
	dir string
	now func() time.Time
	// created is told of every object version a write commits; nil for none.
	created func(ObjectCreated)

	mu      sync.RWMutex
	buckets map[string]*bucket
	lastID  uint64
}

var (
	_ gofakes3.Backend          = (*backend)(nil)
	_ gofakes3.VersionedBackend = (*backend)(nil)
)

type bucket struct {
	Name       string                    `json:"name"`
	Created    time.Time                 `json:"created"`
	Versioning gofakes3.VersioningStatus `json:"versioning"`

	dir     string
	objects map[string][]*version // key -> versions, oldest first
}

type version struct {
	ID           string            `json:"id"`
	Key          string            `json:"key"`
	Null         bool              `json:"null,omitempty"` // written while versioning was off
	DeleteMarker bool              `json:"deleteMarker,omitempty"`
	LastModified time.Time         `json:"lastModified"`
	Size         int64             `json:"size"`
	Hash         []byte            `json:"md5"`
	Metadata     map[string]string `json:"metadata,omitempty"`
}

// versionID is the ID S3 clients see: "" for a null version.
func (v *version) versionID() gofakes3.VersionID {
	if v.Null {
		return ""
	}
	return gofakes3.VersionID(v.ID)
}

// openBackend loads (or creates) the store under dir.
func openBackend(dir string, now func() time.Time) (*backend, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("s3local: open %s: %w", dir, err)
	}
	b := &backend{dir: dir, now: now, buckets: map[string]*bucket{}}
	dirs, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("s3local: open %s: %w", dir, err)
	}
	for _, d := range dirs {
		if !d.IsDir() || gofakes3.ValidateBucketName(d.Name()) != nil {
			continue
		}
		bk, err := b.loadBucket(d.Name())
		if err != nil {
			return nil, err
		}
		if bk != nil {
			b.buckets[bk.Name] = bk
		}
	}
	return b, nil
}

// loadBucket reads one bucket's index; nil when the directory holds no
// bucket.json (not a bucket of ours).
func (b *backend) loadBucket(name string) (*bucket, error) {
	bdir := filepath.Join(b.dir, name)
	raw, err := os.ReadFile(filepath.Join(bdir, "bucket.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("s3local: load bucket %s: %w", name, err)
	}
	bk := &bucket{dir: bdir, objects: map[string][]*version{}}
	if err := json.Unmarshal(raw, bk); err != nil || bk.Name != name {
		return nil, fmt.Errorf("s3local: load bucket %s: bucket.json is damaged", name)
	}
	_ = os.RemoveAll(filepath.Join(bdir, "tmp")) // uploads cut short by a crash
	files, err := os.ReadDir(filepath.Join(bdir, "v"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("s3local: load bucket %s: %w", name, err)
	}
	for _, f := range files {
		id, ok := strings.CutSuffix(f.Name(), ".json")
		if !ok {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(bdir, "v", f.Name()))
		if err != nil {
			return nil, fmt.Errorf("s3local: load bucket %s: %w", name, err)
		}
		v := &version{}
		if err := json.Unmarshal(raw, v); err != nil || v.ID != id {
			return nil, fmt.Errorf("s3local: load bucket %s: version %s is damaged", name, id)
		}
		if n, err := strconv.ParseUint(id, 16, 64); err == nil && n > b.lastID {
			b.lastID = n
		}
		bk.objects[v.Key] = append(bk.objects[v.Key], v)
	}
	for _, vs := range bk.objects {
		slices.SortFunc(vs, func(x, y *version) int { return strings.Compare(x.ID, y.ID) })
	}
	return bk, nil
}

// nextID returns a new version id. Caller holds mu.
func (b *backend) nextID() string {
	b.lastID = max(b.lastID+1, uint64(b.now().UnixNano()))
	return fmt.Sprintf("%016x", b.lastID)
}

func (bk *bucket) dataPath(id string) string { return filepath.Join(bk.dir, "v", id+".data") }
func (bk *bucket) metaPath(id string) string { return filepath.Join(bk.dir, "v", id+".json") }

// saveJSON writes v to path atomically (temporary file and rename).
func saveJSON(path string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("s3local: save %s: %w", filepath.Base(path), err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		return fmt.Errorf("s3local: save %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("s3local: save %s: %w", filepath.Base(path), err)
	}
	return nil
}

// bucket returns the named bucket or gofakes3's NoSuchBucket. Caller holds mu.
func (b *backend) bucket(name string) (*bucket, error) {
	bk := b.buckets[name]
	if bk == nil {
		return nil, gofakes3.BucketNotFound(name)
	}
	return bk, nil
}

// current returns the latest version of key, or nil.
func (bk *bucket) current(key string) *version {
	vs := bk.objects[key]
	if len(vs) == 0 {
		return nil
	}
	return vs[len(vs)-1]
}

// find returns the version of key with S3 version id vid ("null" or "" for
// the null version).
func (bk *bucket) find(key string, vid gofakes3.VersionID) (*version, error) {
	vs := bk.objects[key]
	if len(vs) == 0 {
		return nil, gofakes3.KeyNotFound(key)
	}
	for _, v := range vs {
		if (v.Null && (vid == "null" || vid == "")) || (!v.Null && gofakes3.VersionID(v.ID) == vid) {
			return v, nil
		}
	}
	return nil, gofakes3.ErrNoSuchVersion
}

// add appends a committed version to the index, first dropping the null
// version it replaces. Caller holds mu.
func (bk *bucket) add(v *version) error {
	if v.Null {
		if err := bk.drop(v.Key, func(o *version) bool { return o.Null }); err != nil {
			return err
		}
	}
	bk.objects[v.Key] = append(bk.objects[v.Key], v)
	return nil
}

// drop removes the versions of key that match, from the index and the disk.
// Caller holds mu.
func (bk *bucket) drop(key string, match func(*version) bool) error {
	vs := bk.objects[key]
	kept := vs[:0]
	var err error
	for _, v := range vs {
		if !match(v) {
			kept = append(kept, v)
			continue
		}
		// The metadata first: a version without it is not loaded again.
		if e := os.Remove(bk.metaPath(v.ID)); e != nil && !errors.Is(e, os.ErrNotExist) {
			err = errors.Join(err, e)
		}
		if e := os.Remove(bk.dataPath(v.ID)); e != nil && !errors.Is(e, os.ErrNotExist) {
			err = errors.Join(err, e)
		}
	}
	clear(vs[len(kept):])
	if len(kept) == 0 {
		delete(bk.objects, key)
	} else {
		bk.objects[key] = kept
	}
	if err != nil {
		return fmt.Errorf("s3local: delete version files: %w", err)
	}
	return nil
}

// ListBuckets implements gofakes3.Backend.
func (b *backend) ListBuckets() ([]gofakes3.BucketInfo, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]gofakes3.BucketInfo, 0, len(b.buckets))
	for _, bk := range b.buckets {
		out = append(out, gofakes3.BucketInfo{Name: bk.Name, CreationDate: gofakes3.NewContentTime(bk.Created)})
	}
	slices.SortFunc(out, func(x, y gofakes3.BucketInfo) int { return strings.Compare(x.Name, y.Name) })
	return out, nil
}

// BucketExists implements gofakes3.Backend.
func (b *backend) BucketExists(name string) (bool, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.buckets[name] != nil, nil
}

// CreateBucket implements gofakes3.Backend.
func (b *backend) CreateBucket(name string) error {
	if err := gofakes3.ValidateBucketName(name); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buckets[name] != nil {
		return gofakes3.ResourceError(gofakes3.ErrBucketAlreadyExists, name)
	}
	bk := &bucket{Name: name, Created: b.now().UTC(), dir: filepath.Join(b.dir, name), objects: map[string][]*version{}}
	if err := os.MkdirAll(filepath.Join(bk.dir, "v"), 0o755); err != nil {
		return fmt.Errorf("s3local: create bucket: %w", err)
	}
	if err := saveJSON(filepath.Join(bk.dir, "bucket.json"), bk); err != nil {
		return err
	}
	b.buckets[name] = bk
	return nil
}

// DeleteBucket implements gofakes3.Backend: only a bucket without any
// version can be deleted.
func (b *backend) DeleteBucket(name string) error {
	return b.deleteBucket(name, false)
}

// ForceDeleteBucket implements gofakes3.Backend.
func (b *backend) ForceDeleteBucket(name string) error {
	return b.deleteBucket(name, true)
}

func (b *backend) deleteBucket(name string, force bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	bk, err := b.bucket(name)
	if err != nil {
		return err
	}
	if !force && len(bk.objects) > 0 {
		return gofakes3.ResourceError(gofakes3.ErrBucketNotEmpty, name)
	}
	if err := os.RemoveAll(bk.dir); err != nil {
		return fmt.Errorf("s3local: delete bucket: %w", err)
	}
	delete(b.buckets, name)
	return nil
}

// ListBucket implements gofakes3.Backend: the current versions, by key.
func (b *backend) ListBucket(name string, prefix *gofakes3.Prefix, page gofakes3.ListBucketPage) (*gofakes3.ObjectList, error) {
	if prefix == nil {
		prefix = &gofakes3.Prefix{}
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	bk, err := b.bucket(name)
	if err != nil {
		return nil, err
	}
	keys := bk.sortedKeys(page.Marker)
	list := gofakes3.NewObjectList()
	var match gofakes3.PrefixMatch
	var count int64
	lastPrefix := ""
	for i, key := range keys {
		v := bk.current(key)
		if v.DeleteMarker || !prefix.Match(key, &match) {
			continue
		}
		if match.CommonPrefix {
			if match.MatchedPart == lastPrefix {
				continue
			}
			list.AddPrefix(match.MatchedPart)
			lastPrefix = match.MatchedPart
		} else {
			list.Add(&gofakes3.Content{
				Key:          key,
				LastModified: gofakes3.NewContentTime(v.LastModified),
				ETag:         gofakes3.FormatETag(v.Hash),
				Size:         v.Size,
				StorageClass: gofakes3.StorageStandard,
			})
		}
		count++
		if page.MaxKeys > 0 && count >= page.MaxKeys {
			list.NextMarker = key
			list.IsTruncated = i+1 < len(keys)
			break
		}
	}
	return list, nil
}

// sortedKeys returns the bucket's keys after marker ("" for all), sorted.
// Caller holds mu.
func (bk *bucket) sortedKeys(marker string) []string {
	keys := make([]string, 0, len(bk.objects))
	for k := range bk.objects {
		if k > marker {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// object opens the body of v for a GET.
func (bk *bucket) object(v *version, rng *gofakes3.ObjectRangeRequest, withBody bool) (*gofakes3.Object, error) {
	obj := &gofakes3.Object{
		Name:           v.Key,
		Metadata:       maps.Clone(v.Metadata),
		Size:           v.Size,
		Hash:           v.Hash,
		VersionID:      v.versionID(),
		IsDeleteMarker: v.DeleteMarker,
		Contents:       io.NopCloser(strings.NewReader("")),
	}
	if !withBody || v.DeleteMarker {
		return obj, nil
	}
	r, err := rng.Range(v.Size)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(bk.dataPath(v.ID))
	if err != nil {
		return nil, fmt.Errorf("s3local: open object: %w", err)
	}
	start, n := int64(0), v.Size
	if r != nil {
		start, n = r.Start, r.Length
	}
	obj.Range = r
	obj.Contents = struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, start, n), f}
	return obj, nil
}

// GetObject implements gofakes3.Backend: the current version.
func (b *backend) GetObject(bucketName, key string, rng *gofakes3.ObjectRangeRequest) (*gofakes3.Object, error) {
	return b.getVersion(bucketName, key, nil, rng, true)
}

// HeadObject implements gofakes3.Backend.
func (b *backend) HeadObject(bucketName, key string) (*gofakes3.Object, error) {
	return b.getVersion(bucketName, key, nil, nil, false)
}

// GetObjectVersion implements gofakes3.VersionedBackend.
func (b *backend) GetObjectVersion(bucketName, key string, vid gofakes3.VersionID, rng *gofakes3.ObjectRangeRequest) (*gofakes3.Object, error) {
	return b.getVersion(bucketName, key, &vid, rng, true)
}

// HeadObjectVersion implements gofakes3.VersionedBackend.
func (b *backend) HeadObjectVersion(bucketName, key string, vid gofakes3.VersionID) (*gofakes3.Object, error) {
	return b.getVersion(bucketName, key, &vid, nil, false)
}

// getVersion finds a version (the current one when vid is nil) and opens it.
func (b *backend) getVersion(bucketName, key string, vid *gofakes3.VersionID, rng *gofakes3.ObjectRangeRequest, withBody bool) (*gofakes3.Object, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	bk, err := b.bucket(bucketName)
	if err != nil {
		return nil, err
	}
	var v *version
	if vid == nil || *vid == "" {
		if v = bk.current(key); v == nil || v.DeleteMarker {
			return nil, gofakes3.KeyNotFound(key)
		}
	} else if v, err = bk.find(key, *vid); err != nil {
		return nil, err
	}
	return bk.object(v, rng, withBody)
}

// PutObject implements gofakes3.Backend. The body goes to a temporary file
// first; conditions are checked and the version committed under the lock.
func (b *backend) PutObject(bucketName, key string, meta map[string]string, input io.Reader, size int64, cond *gofakes3.PutConditions) (gofakes3.PutObjectResult, error) {
	var result gofakes3.PutObjectResult
	b.mu.RLock()
	bk, err := b.bucket(bucketName)
	b.mu.RUnlock()
	if err != nil {
		return result, err
	}
	tmp, hash, err := receive(filepath.Join(bk.dir, "tmp"), input, size)
	if err != nil {
		return result, err
	}
	defer os.Remove(tmp) // a no-op once renamed

	var created *ObjectCreated
	defer func() { // after the unlock below: the callback may read the store
		if created != nil && b.created != nil {
			b.created(*created)
		}
	}()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buckets[bucketName] != bk {
		return result, gofakes3.BucketNotFound(bucketName)
	}
	if cond != nil {
		info := &gofakes3.ConditionalObjectInfo{}
		if cur := bk.current(key); cur != nil && !cur.DeleteMarker {
			info.Exists, info.Hash = true, cur.Hash
		}
		if err := gofakes3.CheckPutConditions(cond, info); err != nil {
			return result, err
		}
	}
	v := &version{
		ID:           b.nextID(),
		Key:          key,
		Null:         bk.Versioning != gofakes3.VersioningEnabled,
		LastModified: b.now().UTC(),
		Size:         size,
		Hash:         hash,
		Metadata:     meta,
	}
	if err := os.Rename(tmp, bk.dataPath(v.ID)); err != nil {
		return result, fmt.Errorf("s3local: put object: %w", err)
	}
	if err := b.commit(bk, v); err != nil {
		return result, err
	}
	result.VersionID = v.versionID()
	created = &ObjectCreated{
		Bucket: bucketName, Key: key, VersionID: string(v.versionID()),
		ETag: hex.EncodeToString(hash), Size: size, Time: v.LastModified,
	}
	return result, nil
}

// commit writes v's metadata and adds it to the index. Caller holds mu.
func (b *backend) commit(bk *bucket, v *version) error {
	if err := saveJSON(bk.metaPath(v.ID), v); err != nil {
		_ = os.Remove(bk.dataPath(v.ID))
		return err
	}
	return bk.add(v)
}

// receive copies exactly size bytes of input to a new file in dir and returns
// its path and MD5.
func receive(dir string, input io.Reader, size int64) (string, []byte, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, fmt.Errorf("s3local: receive object: %w", err)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	path := filepath.Join(dir, hex.EncodeToString(rnd[:]))
	f, err := os.Create(path)
	if err != nil {
		return "", nil, fmt.Errorf("s3local: receive object: %w", err)
	}
	h := md5.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(input, size+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != size {
		err = gofakes3.ErrIncompleteBody
	}
	if err != nil {
		_ = os.Remove(path)
		return "", nil, err
	}
	return path, h.Sum(nil), nil
}

// CopyObject implements gofakes3.Backend.
func (b *backend) CopyObject(srcBucket, srcKey, dstBucket, dstKey string, meta map[string]string) (gofakes3.CopyObjectResult, error) {
	return gofakes3.CopyObject(b, srcBucket, srcKey, dstBucket, dstKey, meta)
}

// DeleteObject implements gofakes3.Backend: with versioning enabled it adds
// a delete marker; otherwise it removes the null version (adding a null
// delete marker when older versions remain, as S3 does when suspended).
func (b *backend) DeleteObject(bucketName, key string) (gofakes3.ObjectDeleteResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	bk, err := b.bucket(bucketName)
	if err != nil {
		return gofakes3.ObjectDeleteResult{}, err
	}
	return b.deleteObject(bk, key)
}

// deleteObject is DeleteObject. Caller holds mu.
func (b *backend) deleteObject(bk *bucket, key string) (gofakes3.ObjectDeleteResult, error) {
	var result gofakes3.ObjectDeleteResult
	if len(bk.objects[key]) == 0 {
		return result, nil
	}
	enabled := bk.Versioning == gofakes3.VersioningEnabled
	if !enabled {
		if err := bk.drop(key, func(v *version) bool { return v.Null }); err != nil {
			return result, err
		}
		if len(bk.objects[key]) == 0 {
			return result, nil
		}
	}
	marker := &version{ID: b.nextID(), Key: key, Null: !enabled, DeleteMarker: true, LastModified: b.now().UTC()}
	if err := b.commit(bk, marker); err != nil {
		return result, err
	}
	result.IsDeleteMarker, result.VersionID = true, marker.versionID()
	return result, nil
}

// DeleteObjectVersion implements gofakes3.VersionedBackend: it removes one
// version for good.
func (b *backend) DeleteObjectVersion(bucketName, key string, vid gofakes3.VersionID) (gofakes3.ObjectDeleteResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	bk, err := b.bucket(bucketName)
	if err != nil {
		return gofakes3.ObjectDeleteResult{}, err
	}
	return b.deleteVersion(bk, key, vid)
}

// deleteVersion is DeleteObjectVersion. Caller holds mu.
func (b *backend) deleteVersion(bk *bucket, key string, vid gofakes3.VersionID) (gofakes3.ObjectDeleteResult, error) {
	var result gofakes3.ObjectDeleteResult
	v, err := bk.find(key, vid)
	if err != nil {
		return result, nil // S3: deleting a missing version is not an error
	}
	if err := bk.drop(key, func(o *version) bool { return o == v }); err != nil {
		return result, err
	}
	result.IsDeleteMarker, result.VersionID = v.DeleteMarker, vid
	return result, nil
}

// DeleteMulti implements gofakes3.Backend.
func (b *backend) DeleteMulti(bucketName string, keys ...string) (gofakes3.MultiDeleteResult, error) {
	ids := make([]gofakes3.ObjectID, len(keys))
	for i, k := range keys {
		ids[i] = gofakes3.ObjectID{Key: k}
	}
	return b.DeleteMultiVersions(bucketName, ids...)
}

// DeleteMultiVersions implements gofakes3.VersionedBackend.
func (b *backend) DeleteMultiVersions(bucketName string, ids ...gofakes3.ObjectID) (gofakes3.MultiDeleteResult, error) {
	var result gofakes3.MultiDeleteResult
	b.mu.Lock()
	defer b.mu.Unlock()
	bk, err := b.bucket(bucketName)
	if err != nil {
		return result, err
	}
	for _, id := range ids {
		if id.VersionID != "" {
			_, err = b.deleteVersion(bk, id.Key, gofakes3.VersionID(id.VersionID))
		} else {
			_, err = b.deleteObject(bk, id.Key)
		}
		if err != nil {
			result.Error = append(result.Error, gofakes3.ErrorResultFromError(err))
			continue
		}
		result.Deleted = append(result.Deleted, id)
	}
	return result, nil
}

// VersioningConfiguration implements gofakes3.VersionedBackend.
func (b *backend) VersioningConfiguration(bucketName string) (gofakes3.VersioningConfiguration, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	bk, err := b.bucket(bucketName)
	if err != nil {
		return gofakes3.VersioningConfiguration{}, err
	}
	return gofakes3.VersioningConfiguration{Status: bk.Versioning}, nil
}

// SetVersioningConfiguration implements gofakes3.VersionedBackend.
func (b *backend) SetVersioningConfiguration(bucketName string, v gofakes3.VersioningConfiguration) error {
	if v.MFADelete.Enabled() {
		return gofakes3.ErrNotImplemented
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	bk, err := b.bucket(bucketName)
	if err != nil {
		return err
	}
	switch {
	case v.Enabled():
		bk.Versioning = gofakes3.VersioningEnabled
	case bk.Versioning == gofakes3.VersioningEnabled:
		bk.Versioning = gofakes3.VersioningSuspended
	}
	return saveJSON(filepath.Join(bk.dir, "bucket.json"), bk)
}

// ListBucketVersions implements gofakes3.VersionedBackend: keys in order,
// each key's versions newest first, as S3 lists them.
func (b *backend) ListBucketVersions(bucketName string, prefix *gofakes3.Prefix, page *gofakes3.ListBucketVersionsPage) (*gofakes3.ListBucketVersionsResult, error) {
	if prefix == nil {
		prefix = &gofakes3.Prefix{}
	}
	if page == nil {
		page = &gofakes3.ListBucketVersionsPage{}
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	result := gofakes3.NewListBucketVersionsResult(bucketName, prefix, page)
	bk, err := b.bucket(bucketName)
	if err != nil {
		return result, err
	}
	marker := ""
	if page.HasKeyMarker {
		marker = page.KeyMarker
	}
	keys := bk.sortedKeys("")
	var match gofakes3.PrefixMatch
	var count int64
	for _, key := range keys {
		if key < marker || (key == marker && !page.HasVersionIDMarker) || !prefix.Match(key, &match) {
			continue
		}
		if match.CommonPrefix {
			result.AddPrefix(match.MatchedPart)
			continue
		}
		vs := bk.objects[key]
		skipping := key == marker // resume after VersionIDMarker
		for i := len(vs) - 1; i >= 0; i-- {
			v := vs[i]
			if skipping {
				if v.versionID() == page.VersionIDMarker || (v.Null && page.VersionIDMarker == "null") {
					skipping = false
				}
				continue
			}
			if page.MaxKeys > 0 && count >= page.MaxKeys {
				result.IsTruncated = true
				return result, nil
			}
			result.Versions = append(result.Versions, listItem(v, i == len(vs)-1))
			result.NextKeyMarker, result.NextVersionIDMarker = key, v.versionID()
			if v.Null {
				result.NextVersionIDMarker = "null"
			}
			count++
		}
	}
	result.NextKeyMarker, result.NextVersionIDMarker = "", ""
	return result, nil
}

func listItem(v *version, latest bool) gofakes3.VersionItem {
	if v.DeleteMarker {
		return &gofakes3.DeleteMarker{Key: v.Key, VersionID: v.versionID(), IsLatest: latest, LastModified: gofakes3.NewContentTime(v.LastModified)}
	}
	return &gofakes3.Version{
		Key: v.Key, VersionID: v.versionID(), IsLatest: latest, LastModified: gofakes3.NewContentTime(v.LastModified),
		Size: v.Size, ETag: gofakes3.FormatETag(v.Hash), StorageClass: gofakes3.StorageStandard,
	}
}
