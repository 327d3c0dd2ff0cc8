package schedule

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Object is the new object version an "Object Created" event announces.
type Object struct {
	Bucket, Key string
	VersionID   string // "" when the bucket is not versioned
	ETag        string // hex MD5, unquoted
	Size        int64
	Time        time.Time // the version's LastModified
}

// ObjectCreated returns the EventBridge event S3 Event Notifications send
// for a new object version ("Object Created", reason PutObject), in AWS's
// key order, as a rule delivers it to its target.
func ObjectCreated(obj Object, o Options) ([]byte, error) {
	if o.ID == "" {
		o.ID = uuid.NewString()
	}
	at := obj.Time
	if at.IsZero() {
		at = o.Time
	}
	type object struct {
		Key       string `json:"key"`
		Size      int64  `json:"size"`
		ETag      string `json:"etag"`
		VersionID string `json:"version-id,omitempty"`
		Sequencer string `json:"sequencer"`
	}
	detail, err := json.Marshal(struct {
		Version   string            `json:"version"`
		Bucket    map[string]string `json:"bucket"`
		Object    object            `json:"object"`
		RequestID string            `json:"request-id"`
		Requester string            `json:"requester"`
		SourceIP  string            `json:"source-ip-address"`
		Reason    string            `json:"reason"`
	}{
		Version: "0", Bucket: map[string]string{"name": obj.Bucket},
		Object: object{
			Key: obj.Key, Size: obj.Size, ETag: obj.ETag, VersionID: obj.VersionID,
			Sequencer: fmt.Sprintf("%016X", at.UnixNano()),
		},
		RequestID: "LOCAL" + o.ID[:8], Requester: o.AccountID, SourceIP: "127.0.0.1", Reason: "PutObject",
	})
	if err != nil {
		return nil, fmt.Errorf("schedule: object created: %w", err)
	}
	b, err := json.Marshal(ScheduledEvent{
		Version: "0", ID: o.ID, DetailType: "Object Created", Source: "aws.s3", Account: o.AccountID,
		Time: at.UTC().Truncate(time.Second).Format(time.RFC3339), Region: o.Region,
		Resources: []string{"arn:aws:s3:::" + obj.Bucket}, Detail: detail,
	})
	if err != nil {
		return nil, fmt.Errorf("schedule: object created: %w", err)
	}
	return b, nil
}
