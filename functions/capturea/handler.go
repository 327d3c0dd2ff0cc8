package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-lambda-go/events"

	"github.com/acme/unified-customer-service/shared/capturea"
)

// Capturer captures the changes of one snapshot version.
type Capturer interface {
	Capture(ctx context.Context, obj capturea.Object) (capturea.Result, error)
}

// Handler translates the S3 "Object Created" event into a capture.
type Handler struct {
	Capturer Capturer
}

// ErrNotObjectCreated is returned for an input that is not an S3 "Object
// Created" event delivered by EventBridge.
var ErrNotObjectCreated = errors.New("capturea: input is not an S3 Object Created event")

// objectCreated is the detail of an S3 "Object Created" event (S3 Event
// Notifications delivered to EventBridge).
type objectCreated struct {
	Bucket struct {
		Name string `json:"name"`
	} `json:"bucket"`
	Object struct {
		Key       string `json:"key"`
		Size      *int64 `json:"size"`
		ETag      string `json:"etag"`
		VersionID string `json:"version-id"`
	} `json:"object"`
}

// Handle serves one invocation. It returns what the capture did; it fails
// on a bad event and when the capture failed (the broker or S3 could not be
// reached, the state changed meanwhile), which makes Lambda retry the event
// and, once the retries are spent, send it to the dead-letter queue. A
// retry publishes the events the failed attempt may have published again,
// with the same ids.
func (h *Handler) Handle(ctx context.Context, payload json.RawMessage) (capturea.Result, error) {
	var ev events.EventBridgeEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return capturea.Result{}, fmt.Errorf("%w: %v", ErrNotObjectCreated, err)
	}
	switch {
	case ev.Source != "aws.s3":
		return capturea.Result{}, fmt.Errorf(`%w: "source" is %q, want "aws.s3"`, ErrNotObjectCreated, ev.Source)
	case ev.DetailType != "Object Created":
		return capturea.Result{}, fmt.Errorf(`%w: "detail-type" is %q, want "Object Created"`, ErrNotObjectCreated, ev.DetailType)
	}
	var d objectCreated
	if err := json.Unmarshal(ev.Detail, &d); err != nil {
		return capturea.Result{}, fmt.Errorf(`%w: "detail": %v`, ErrNotObjectCreated, err)
	}
	if d.Bucket.Name == "" || d.Object.Key == "" {
		return capturea.Result{}, fmt.Errorf(`%w: "detail" names no bucket or key`, ErrNotObjectCreated)
	}
	obj := capturea.Object{Bucket: d.Bucket.Name, Key: d.Object.Key, VersionID: d.Object.VersionID, ETag: d.Object.ETag}
	if d.Object.Size != nil {
		obj.Size = *d.Object.Size
	}
	return h.Capturer.Capture(ctx, obj)
}
