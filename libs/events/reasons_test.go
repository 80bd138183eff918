package events_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/greenroom-dev/greenroom/libs/events"
)

// The reason enums of the schemas are the contract; the Reason* and
// Expired* constants are how Go code names them. A reason added on one side
// only would either be refused at publish time or be unknown to consumers.
func TestReasonConstantsAreTheSchemaEnums(t *testing.T) {
	for _, tc := range []struct {
		typ  string
		want []string
	}{
		{events.TypeSessionFailed, events.FailureReasons},
		{events.TypeSessionExpired, events.ExpiryReasons},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			var reason struct {
				Enum []string `json:"enum"`
			}
			raw := readSchema(t, tc.typ).Properties.Data.Properties["reason"]
			if err := json.Unmarshal(raw, &reason); err != nil {
				t.Fatal(err)
			}
			got, want := slices.Sorted(slices.Values(reason.Enum)), slices.Sorted(slices.Values(tc.want))
			if !slices.Equal(got, want) {
				t.Errorf("schema reason enum %v, Go constants %v", got, want)
			}
		})
	}
}

func TestDestroyedFailureSurvivesBeingRecorded(t *testing.T) {
	detail := "destroyed before it was ready: api"
	reason, got := events.ParseRecordedFailure(events.RecordedFailure(events.ReasonDestroyed, detail))
	if reason != events.ReasonDestroyed || got != detail {
		t.Errorf("ParseRecordedFailure = %q, %q", reason, got)
	}
}
