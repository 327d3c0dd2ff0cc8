package syncworker

import (
	"encoding/json"
	"fmt"

	"github.com/acme/unified-customer-service/shared/changes"
	"github.com/acme/unified-customer-service/shared/kafka"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/unified"
)

// PresenceAbsent is the presence of a customer neither system holds (on
// customer.conflicts; customer.unified gets a tombstone).
const PresenceAbsent = "absent"

// UnifiedValue is the value of a customer.unified record.
type UnifiedValue struct {
	ID            string                  `json:"id"`
	SourceEventID string                  `json:"sourceEventId"`
	Key           string                  `json:"key"`
	Presence      merge.Presence          `json:"presence"`
	Customer      merge.Record            `json:"customer"`
	Sources       map[string]merge.Source `json:"sources"`
	LastUpdated   unified.Timestamps      `json:"lastUpdated"`
	Freshness     unified.FreshnessView   `json:"freshness"`
	Conflicts     int                     `json:"conflicts"`
}

// ConflictsValue is the value of a customer.conflicts record: the
// customer's conflicts after the change, an empty list when in sync.
type ConflictsValue struct {
	ID            string             `json:"id"`
	SourceEventID string             `json:"sourceEventId"`
	Key           string             `json:"key"`
	Presence      string             `json:"presence"`
	InSync        bool               `json:"inSync"`
	Conflicts     []unified.Conflict `json:"conflicts"`
}

// Outputs are the records the worker publishes for ev: the unified record
// (a tombstone when res is nil: neither system holds the customer) and the
// conflicts record, keyed by the join key, with ids derived from ev.ID.
func Outputs(ev changes.Event, res *merge.Result, fresh merge.Freshness) ([]kafka.Message, error) {
	uid, cid := OutputID(ev.ID, "unified"), OutputID(ev.ID, "conflicts")
	headers := func(id string) [][2]string {
		return [][2]string{{HeaderEventID, id}, {HeaderSchemaVersion, changes.SchemaVersion}, {HeaderSourceEventID, ev.ID}}
	}
	cv := ConflictsValue{ID: cid, SourceEventID: ev.ID, Key: ev.Key, Presence: PresenceAbsent, Conflicts: []unified.Conflict{}}
	var uval []byte // nil: a tombstone
	if res != nil {
		cv.Presence, cv.InSync = string(res.Presence), res.InSync()
		cv.Conflicts = unified.ViewConflicts(res)
		var err error
		uval, err = json.Marshal(UnifiedValue{
			ID: uid, SourceEventID: ev.ID, Key: ev.Key, Presence: res.Presence,
			Customer: res.Customer, Sources: res.SourcesMap(),
			LastUpdated: unified.ViewTimestamps(res),
			Freshness:   unified.ViewFreshness(fresh), Conflicts: len(res.Conflicts),
		})
		if err != nil {
			return nil, fmt.Errorf("syncworker: unified value: %w", err)
		}
	}
	cval, err := json.Marshal(cv)
	if err != nil {
		return nil, fmt.Errorf("syncworker: conflicts value: %w", err)
	}
	return []kafka.Message{
		{Topic: TopicUnified, Key: []byte(ev.Key), Value: uval, Headers: headers(uid)},
		{Topic: TopicConflicts, Key: []byte(ev.Key), Value: cval, Headers: headers(cid)},
	}, nil
}
