package systemb

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/acme/unified-customer-service/shared/merge"
)

// Pager streams all System B customers in join order (merge.Key ascending,
// byte-wise) from GET {base}/customers?limit=N&cursor=C, one page at a
// time, like bufio.Scanner:
//
//	p := client.List(ctx, 1000)
//	defer p.Close()
//	for p.Next() {
//		if bad := p.BadRecord(); bad != nil {
//			count(bad) // a malformed item; the Pager carries on
//			continue
//		}
//		use(p.Record())
//	}
//	if err := p.Err(); err != nil { ... }
//
// A pull iterator (rather than an iter.Seq2) suits the sort-merge join,
// which advances two sources at its own pace; All adapts it to range.
//
// Items are decoded one by one: an item that is valid JSON but not a valid
// customer (a wrong type, no email, no valid lastUpdated) is a bad record,
// reported by BadRecord in its place, and the Pager carries on with the
// rest of the page and the next pages. A page whose envelope does not
// parse (invalid JSON, no items or nextCursor) ends the Pager with
// ErrBadData.
//
// Memory is bounded by two pages: the one being consumed and the next one,
// fetched in the background while the caller consumes the current one
// (unless Config.DisablePrefetch). Each page fetch uses the Client's
// timeout, retry and budget machinery. Keys of the good items must be
// strictly ascending within and across pages, else Err is ErrBadData: the
// join depends on it. A Pager is not safe for concurrent use.
type Pager struct {
	c      *Client
	ctx    context.Context
	cancel context.CancelFunc
	limit  int
	since  string // the updatedSince parameter (RFC 3339), or ""

	cur, spare *page
	i          int // the current item of cur
	b          int // the first bad item of cur at or after i
	started    bool
	closed     bool
	pending    chan error   // the fetch in flight into spare, if any
	deferred   func() error // the fetch to run into spare, with DisablePrefetch
	err        error
	pages      int
	skip       int // items of the first page to pass over (ListFrom)
}

// page is one decoded list page and the buffer its body was read into.
type page struct {
	body bytes.Buffer
	decodedPage
	lastEmail string // email of the last good item, or of the last one before
	// where the page was fetched from, for Position
	cursor    string
	hasCursor bool
	prevEmail string // lastEmail of the page before
}

// Position is where a Pager's current item is: enough to list again from
// that item (ListFrom) in a later process. It holds the page's cursor and
// the email of the last item before the page (for the join-order check),
// so it is personal data: store it where the report is, never log it.
type Position struct {
	Limit     int    `json:"limit"`
	Cursor    string `json:"cursor,omitempty"`
	HasCursor bool   `json:"hasCursor,omitempty"` // false: the first page
	Page      int    `json:"page"`                // counted from 1
	Item      int    `json:"item"`                // in the page, counted from 0
	After     string `json:"after,omitempty"`     // the email of the last item before the page
}

// List returns a Pager over all customers, pageSize at a time (1..1000;
// 0 means 1000). A page size out of range gives a Pager whose Err is
// ErrInvalidArgument. No request is made before the first Next.
func (c *Client) List(ctx context.Context, pageSize int) *Pager {
	return c.ListSince(ctx, pageSize, time.Time{})
}

// ListSince is List restricted to the customers whose lastUpdated is at or
// after since, with the API v1.1 parameter updatedSince (see
// docs/contracts.md); a zero since lists all, as List. The items keep the
// join order and the cursor paging. A System B without v1.1 answers 400:
// the Pager then stops with ErrUpdatedSinceUnsupported, before any item,
// and the caller may fall back to List.
func (c *Client) ListSince(ctx context.Context, pageSize int, since time.Time) *Pager {
	ctx, cancel := context.WithCancel(ctx)
	p := &Pager{c: c, ctx: ctx, cancel: cancel, limit: pageSize, cur: new(page), spare: new(page)}
	if !since.IsZero() {
		p.since = since.UTC().Format(time.RFC3339Nano)
	}
	if pageSize == 0 {
		p.limit = DefaultPageSize
	}
	if p.limit < 1 || p.limit > MaxPageSize {
		p.err = &Error{Op: OpList, Err: ErrInvalidArgument, Cause: fmt.Errorf("page size %d is not in 1..%d", pageSize, MaxPageSize)}
		cancel()
	}
	return p
}

// ListFrom returns a Pager that starts at pos, a Position an earlier
// Pager's Position returned: its first record is the item that was
// current then, and bad-record positions go on from there. It refetches
// that page by its cursor (the API's cursors name the last key before a
// page, so they stay valid while the data changes). A pos that does not fit
// (another page size, an item past the end of the refetched page) gives a
// Pager whose Err is ErrInvalidArgument.
func (c *Client) ListFrom(ctx context.Context, pos Position) *Pager {
	p := c.List(ctx, pos.Limit)
	if p.err != nil {
		return p
	}
	if pos.Limit == 0 || pos.Page < 1 || pos.Item < 0 || pos.Item >= pos.Limit || (pos.Page == 1) == pos.HasCursor {
		p.err = &Error{Op: OpList, Err: ErrInvalidArgument, Cause: fmt.Errorf("position %d/%d (limit %d) is not one a Pager returns", pos.Page, pos.Item, pos.Limit)}
		p.cancel()
		return p
	}
	p.started = true
	p.pages, p.skip, p.cur.lastEmail = pos.Page-1, pos.Item, pos.After
	p.start(pos.Cursor, pos.HasCursor)
	return p
}

// Position returns where the current item is (valid after a Next that
// returned true).
func (p *Pager) Position() Position {
	return Position{Limit: p.limit, Cursor: p.cur.cursor, HasCursor: p.cur.hasCursor, Page: p.pages, Item: p.i, After: p.cur.prevEmail}
}

// Next advances to the next record; false at the end or on an error (see Err).
func (p *Pager) Next() bool {
	if p.err != nil || p.closed {
		return false
	}
	if p.i+1 < len(p.cur.items) {
		p.i++
		if p.b < len(p.cur.bad) && p.cur.bad[p.b].index < p.i {
			p.b++
		}
		return true
	}
	if !p.started {
		p.started = true
		p.start("", false)
	}
	for {
		var err error
		switch {
		case p.pending != nil:
			err = <-p.pending
			p.pending = nil
		case p.deferred != nil:
			f := p.deferred
			p.deferred = nil
			err = f()
		default: // the end
			p.cancel()
			return false
		}
		if err != nil {
			p.err = err
			p.cancel()
			return false
		}
		p.pages++
		p.cur, p.spare = p.spare, p.cur
		p.i, p.b = 0, 0
		if p.skip > 0 { // ListFrom: resume at the item that was current
			if p.skip >= len(p.cur.items) {
				p.err = &Error{Op: OpList, Err: ErrInvalidArgument, Cause: fmt.Errorf("page %d has %d items, fewer than the position's %d", p.pages, len(p.cur.items), p.skip+1)}
				p.cancel()
				return false
			}
			p.i = p.skip
			for p.b < len(p.cur.bad) && p.cur.bad[p.b].index < p.i {
				p.b++
			}
			p.skip = 0
		}
		if p.cur.more {
			p.start(p.cur.next, true)
		}
		if len(p.cur.items) > 0 {
			return true
		}
	}
}

// start arranges the fetch of the page at cursor (or the first page) into
// p.spare: in the background, or with DisablePrefetch when Next needs it.
func (p *Pager) start(cursor string, hasCursor bool) {
	dst, prevEmail, n := p.spare, p.cur.lastEmail, p.pages+1
	run := func() error {
		dst.cursor, dst.hasCursor, dst.prevEmail = cursor, hasCursor, prevEmail
		return p.c.fetchPage(p.ctx, p.limit, p.since, cursor, hasCursor, prevEmail, n, dst)
	}
	if p.c.cfg.DisablePrefetch {
		p.deferred = run
		return
	}
	ch := make(chan error, 1)
	p.pending = ch
	go func() { ch <- run() }()
}

// Record returns the current record, or nil when the current item is a
// bad record (see BadRecord). It stays valid until the next call to Next;
// copy it to keep it.
func (p *Pager) Record() *merge.Record {
	if p.bad() != nil {
		return nil
	}
	return &p.cur.items[p.i]
}

// BadRecord returns, when the current item is valid JSON but not a valid
// customer, the error describing it: its position ("page 3 item 17", both
// counted from 1) and what is wrong, naming fields but never values. It
// returns nil for a good item.
func (p *Pager) BadRecord() *merge.BadRecordError {
	b := p.bad()
	if b == nil {
		return nil
	}
	return &merge.BadRecordError{
		Source:   merge.SystemB,
		Position: fmt.Sprintf("page %d item %d", p.pages, b.index+1),
		Reason:   b.reason,
	}
}

// bad returns the current item's badItem, or nil.
func (p *Pager) bad() *badItem {
	if p.b < len(p.cur.bad) && p.cur.bad[p.b].index == p.i {
		return &p.cur.bad[p.b]
	}
	return nil
}

// Err returns the error that stopped the Pager; nil at a clean end. It is an
// *Error wrapping ErrUnavailable, ErrUnauthorized, ErrBadData or
// ErrInvalidArgument.
func (p *Pager) Err() error { return p.err }

// Pages returns the number of pages consumed so far.
func (p *Pager) Pages() int { return p.pages }

// Close stops the Pager and waits for a background fetch to end. It is safe
// to call more than once and after the end.
func (p *Pager) Close() error {
	p.cancel()
	if p.pending != nil {
		<-p.pending
		p.pending = nil
	}
	p.deferred = nil
	p.closed = true
	return nil
}

// All adapts the Pager to range-over-func, the contract of a record
// stream: it yields each record with a nil error, a bad record as (nil,
// *merge.BadRecordError) and carries on, then, if the Pager stopped on an
// error, (nil, err) once. It does not close the Pager.
func (p *Pager) All() iter.Seq2[*merge.Record, error] {
	return func(yield func(*merge.Record, error) bool) {
		for p.Next() {
			var ok bool
			if bad := p.BadRecord(); bad != nil {
				ok = yield(nil, bad)
			} else {
				ok = yield(p.Record(), nil)
			}
			if !ok {
				return
			}
		}
		if err := p.Err(); err != nil {
			yield(nil, err)
		}
	}
}

// fetchPage fetches, decodes and checks one page into dst.
func (c *Client) fetchPage(ctx context.Context, limit int, since, cursor string, hasCursor bool, prevEmail string, n int, dst *page) error {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if since != "" {
		q.Set("updatedSince", since)
	}
	if hasCursor {
		q.Set("cursor", cursor)
	}
	attempts, err := c.fetch(ctx, OpList, c.base+"/customers?"+q.Encode(), c.cfg.MaxPageBytes, &dst.body, nil)
	var e *Error
	if since != "" && n == 1 && errors.As(err, &e) && e.Status == http.StatusBadRequest {
		return &Error{Op: OpList, Status: e.Status, Attempts: e.Attempts, Err: ErrUpdatedSinceUnsupported, Cause: errors.New("the first page with updatedSince was refused")}
	}
	if err != nil {
		return err
	}
	bad := func(cause error) error {
		return &Error{Op: OpList, Status: http.StatusOK, Attempts: attempts, Err: ErrBadData, Cause: fmt.Errorf("page %d: %w", n, cause)}
	}
	if err := decodePage(dst.body.Bytes(), &dst.decodedPage); err != nil {
		return bad(err)
	}
	if len(dst.items) > limit {
		return bad(fmt.Errorf("%d items for a limit of %d", len(dst.items), limit))
	}
	if dst.more && hasCursor && dst.next == cursor {
		return bad(errors.New("nextCursor repeats the cursor"))
	}
	prev := prevEmail // "" before the first page
	b := 0            // the next bad item
	for i := range dst.items {
		if b < len(dst.bad) && dst.bad[b].index == i {
			b++
			continue
		}
		e := dst.items[i].Email()
		// Keys are never empty (the codec requires an email), so the first
		// item of all compares after "".
		if compareKeys(e, prev) <= 0 {
			return bad(fmt.Errorf("item %d is not after the one before it in join order", i+1))
		}
		prev = e
	}
	dst.lastEmail = prev
	return nil
}

// compareKeys compares the join keys of two emails, merge.Key(a) and
// merge.Key(b), without building them when both are ASCII.
func compareKeys(a, b string) int {
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	if !isASCII(a) || !isASCII(b) {
		return strings.Compare(merge.Key(a), merge.Key(b))
	}
	for i := 0; i < len(a) && i < len(b); i++ {
		x, y := lowerASCII(a[i]), lowerASCII(b[i])
		if x != y {
			return cmp.Compare(x, y)
		}
	}
	return cmp.Compare(len(a), len(b))
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
