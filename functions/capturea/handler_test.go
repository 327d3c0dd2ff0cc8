package main

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/acme/unified-customer-service/shared/capturea"
	"github.com/acme/unified-customer-service/shared/testkit"
)

type recordingCapturer struct{ got []capturea.Object }

func (r *recordingCapturer) Capture(_ context.Context, obj capturea.Object) (capturea.Result, error) {
	r.got = append(r.got, obj)
	return capturea.Result{Status: capturea.StatusCaptured, Version: obj.VersionID}, nil
}

func TestHandleFixtures(t *testing.T) {
	want := map[string]struct {
		obj capturea.Object
		err error
	}{
		"capturea-object-created.json": {capturea.Object{
			Bucket: "ucs-snapshots", Key: "customers.db", VersionID: "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
			ETag: "b1946ac92492d2347c6235b4d2611184", Size: 1048576,
		}, nil},
		"capturea-current-version.json": {capturea.Object{Bucket: "ucs-snapshots", Key: "customers.db"}, nil},
		"capturea-not-s3.json":          {capturea.Object{}, ErrNotObjectCreated},
	}
	for _, name := range testkit.Events(t, "capturea-") {
		w, ok := want[name]
		if !ok {
			t.Errorf("events/%s has no expectation in this test", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			var payload json.RawMessage
			testkit.Event(t, name, &payload)
			r := &recordingCapturer{}
			_, err := (&Handler{Capturer: r}).Handle(context.Background(), payload)
			if w.err != nil {
				if !errors.Is(err, w.err) || len(r.got) != 0 {
					t.Fatalf("err = %v, captures %d; want %v and none", err, len(r.got), w.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(r.got) != 1 || r.got[0] != w.obj {
				t.Errorf("captured %+v, want %+v", r.got, w.obj)
			}
		})
	}
}

func TestHandleMalformed(t *testing.T) {
	tests := []struct {
		name    string
		payload string
	}{
		{"not JSON", `{`},
		{"not an object", `[]`},
		{"another detail type", `{"source":"aws.s3","detail-type":"Object Deleted","detail":{"bucket":{"name":"b"},"object":{"key":"k"}}}`},
		{"no detail", `{"source":"aws.s3","detail-type":"Object Created"}`},
		{"no bucket", `{"source":"aws.s3","detail-type":"Object Created","detail":{"object":{"key":"k"}}}`},
		{"no key", `{"source":"aws.s3","detail-type":"Object Created","detail":{"bucket":{"name":"b"}}}`},
		{"detail of the wrong type", `{"source":"aws.s3","detail-type":"Object Created","detail":{"bucket":"b"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recordingCapturer{}
			_, err := (&Handler{Capturer: r}).Handle(context.Background(), json.RawMessage(tt.payload))
			if !errors.Is(err, ErrNotObjectCreated) || len(r.got) != 0 {
				t.Errorf("err = %v, captures %d; want ErrNotObjectCreated and none", err, len(r.got))
			}
		})
	}
}
