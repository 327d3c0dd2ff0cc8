package merge

import (
	"reflect"
	"testing"
	"time"
)

func TestNewer(t *testing.T) {
	later := t0.Add(time.Second)
	tests := []struct {
		name string
		a, b time.Time
		want Source
	}{
		{"A newer", later, t0, SystemA},
		{"B newer", t0, later, SystemB},
		{"equal", t0, t0, Equal},
		{"equal instants in other zones", t0, t0.In(time.FixedZone("CET", 3600)), Equal},
		{"both zero", time.Time{}, time.Time{}, Equal},
		{"A zero", time.Time{}, t0, SystemB},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Newer(tt.a, tt.b); got != tt.want {
				t.Errorf("Newer = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPresenceOf(t *testing.T) {
	r := &Record{}
	tests := []struct {
		name string
		a, b *Record
		want Presence
	}{
		{"both", r, r, InBoth},
		{"only A", r, nil, OnlyInSystemA},
		{"only B", nil, r, OnlyInSystemB},
		{"neither", nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PresenceOf(tt.a, tt.b); got != tt.want {
				t.Errorf("PresenceOf = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDiff(t *testing.T) {
	tA, tB := t0, t0.Add(time.Hour)
	d := func(id FieldID, kind DiffKind, a, b string, newer Source, ta, tb time.Time) Difference {
		return Difference{Field: id, Kind: kind, A: a, B: b, ALastUpdated: ta, BLastUpdated: tb, NewerSource: newer}
	}
	tests := []struct {
		name string
		a, b *Record
		want []Difference
	}{
		{
			name: "in sync cosmetically",
			a:    typicalA(t),
			b:    typicalBInSync(t),
			want: nil,
		},
		{
			name: "conflicts in field order, B newer",
			a:    typicalA(t),
			b:    typicalBConflict(t),
			want: []Difference{
				d(FieldLastName, Mismatch, "Schmidt", "Schmidt-Weber", SystemB, tA, tB),
				d(FieldPhone, Mismatch, "+49 30 1234 5678", "+49 30 9999 0000", SystemB, tA, tB),
				d(FieldMarketingOptIn, Mismatch, "true", "false", SystemB, tA, tB),
				d(FieldLoyaltyTier, OnlyInA, "gold", "", SystemB, tA, tB),
			},
		},
		{
			name: "A newer",
			a:    rec(t, tB, "email", "a@x.io", "firstName", "Anna"),
			b:    rec(t, tA, "email", "A@X.io", "firstName", "Anne", "lastName", "Li"),
			want: []Difference{
				d(FieldFirstName, Mismatch, "Anna", "Anne", SystemA, tB, tA),
				d(FieldLastName, OnlyInB, "", "Li", SystemA, tB, tA),
			},
		},
		{
			name: "equal timestamps",
			a:    rec(t, tA, "email", "a@x.io", "loyaltyTier", "gold"),
			b:    rec(t, tA, "email", "a@x.io", "loyaltyTier", "silver"),
			want: []Difference{d(FieldLoyaltyTier, Mismatch, "gold", "silver", Equal, tA, tA)},
		},
		{
			name: "whitespace-only is absent, original text kept",
			a:    rec(t, tA, "email", "a@x.io", "firstName", "  ", "address.city", " Berlin "),
			b:    rec(t, tB, "email", "a@x.io", "firstName", "", "address.city", ""),
			want: []Difference{d(FieldCity, OnlyInA, " Berlin ", "", SystemB, tA, tB)},
		},
		{
			name: "different keys differ on email",
			a:    rec(t, tA, "email", "a@x.io"),
			b:    rec(t, tA, "email", "b@x.io"),
			want: []Difference{d(FieldEmail, Mismatch, "a@x.io", "b@x.io", Equal, tA, tA)},
		},
		{
			name: "only in A",
			a:    rec(t, tA, "email", "a@x.io", "firstName", "Anna"),
			b:    nil,
			want: []Difference{
				d(FieldEmail, OnlyInA, "a@x.io", "", SystemA, tA, time.Time{}),
				d(FieldFirstName, OnlyInA, "Anna", "", SystemA, tA, time.Time{}),
			},
		},
		{
			name: "only in B",
			a:    nil,
			b:    rec(t, tB, "email", "a@x.io", "marketingOptIn", "false"),
			want: []Difference{
				d(FieldEmail, OnlyInB, "", "a@x.io", SystemB, time.Time{}, tB),
				d(FieldMarketingOptIn, OnlyInB, "", "false", SystemB, time.Time{}, tB),
			},
		},
		{name: "neither", a: nil, b: nil, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Diff(tt.a, tt.b)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Diff =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestAppendDiffReusesBuffer(t *testing.T) {
	a, b := typicalA(t), typicalBConflict(t)
	buf := make([]Difference, 0, NumFields)
	got := AppendDiff(buf[:0], a, b)
	if len(got) != 4 || &got[0] != &buf[:1][0] {
		t.Fatalf("AppendDiff did not append into the buffer: len %d", len(got))
	}
	if got := AppendDiff(buf[:0], a, typicalBInSync(t)); len(got) != 0 {
		t.Errorf("AppendDiff of an in-sync pair = %+v", got)
	}
}

func TestDiffInSyncDoesNotAllocate(t *testing.T) {
	a, b := typicalA(t), typicalBInSync(t)
	if n := testing.AllocsPerRun(100, func() { _ = Diff(a, b) }); n != 0 {
		t.Errorf("Diff of an in-sync pair allocates %v times, want 0", n)
	}
	buf := make([]Difference, 0, NumFields)
	c := typicalBConflict(t)
	if n := testing.AllocsPerRun(100, func() { buf = AppendDiff(buf[:0], a, c) }); n != 0 {
		t.Errorf("AppendDiff into a large enough buffer allocates %v times, want 0", n)
	}
}
