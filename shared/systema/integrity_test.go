package systema

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
)

// TestIntegrityCheck corrupts pages past the header: only quick_check (on
// by default) sees it before use.
func TestIntegrityCheck(t *testing.T) {
	b := snapBytes(t, genRecords(2000), snapOpts{})
	for i := len(b) / 2; i < len(b)/2+8192; i++ {
		b[i] ^= 0x5a
	}
	path := t.TempDir() + "/corrupt.db"
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, check := range []bool{false, true} {
		st, err := New(Config{Source: NewFileSource(path), Dir: t.TempDir(), SkipIntegrityCheck: !check})
		if err != nil {
			t.Fatal(err)
		}
		snap, err := st.Acquire(context.Background())
		switch {
		case check && (!errors.Is(err, ErrInvalidSnapshot) || !strings.Contains(err.Error(), "quick_check")):
			t.Errorf("with the integrity check: err = %v, want ErrInvalidSnapshot from quick_check", err)
		case !check && err != nil:
			t.Errorf("without the integrity check the header and schema checks pass: %v", err)
		}
		if snap != nil {
			snap.Release()
		}
		st.Close()
	}
}
