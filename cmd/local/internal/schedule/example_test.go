package schedule_test

import (
	"fmt"
	"time"

	"github.com/acme/unified-customer-service/cmd/local/internal/samtemplate"
	"github.com/acme/unified-customer-service/cmd/local/internal/schedule"
)

func ExampleEvent() {
	s := samtemplate.Schedule{Type: "ScheduleV2", HasInput: true,
		Input: `{"id": "<aws.scheduler.execution-id>", "time": "<aws.scheduler.scheduled-time>"}`}
	ev, _ := schedule.Event(s, schedule.Options{ID: "run-1", Time: time.Date(2026, 11, 24, 3, 30, 0, 0, time.UTC)})
	fmt.Println(string(ev))
	// Output: {"id":"run-1","time":"2026-11-24T03:30:00Z"}
}
