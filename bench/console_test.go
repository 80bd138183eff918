package bench

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/greenroom-dev/greenroom/libs/events"
)

func TestParseConfigChangedReadsTheChangedResourceOfAConfigEventOnly(t *testing.T) {
	ev, err := events.New("greenroom/config", events.TypeConfigChanged,
		events.ConfigChanged{Kind: "staging_config", Op: "updated", ID: "sc-1", Name: "zone-a/demo"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(ev)
	a, ok := parseConfigChanged(b)
	if !ok || a.id != "sc-1" || a.kind != "staging_config" {
		t.Errorf("parsed %+v, %v; want staging_config sc-1", a, ok)
	}
	other, _ := events.New("greenroom/assigner", events.TypeSessionAssigned, events.SessionAssigned{SessionID: "s-1"})
	b, _ = json.Marshal(other)
	for _, data := range [][]byte{b, []byte("not json"), []byte(`{"type":"greenroom.config.changed","data":{}}`)} {
		if a, ok := parseConfigChanged(data); ok {
			t.Errorf("parsed %+v out of %s, want nothing", a, data)
		}
	}
}

func TestAwaitArrivalSkipsOtherResourcesAndMeasuresFromTheAnswer(t *testing.T) {
	answered := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ch := make(chan configArrival, 3)
	ch <- configArrival{id: "other", at: answered.Add(time.Millisecond)}
	ch <- configArrival{id: "sc-1", at: answered.Add(3 * time.Millisecond)}
	d, err := awaitArrival(ch, "sc-1", answered, time.Minute)
	if err != nil || d != 3*time.Millisecond {
		t.Errorf("awaitArrival = %s, %v; want 3ms", d, err)
	}
	if _, err := awaitArrival(ch, "sc-1", answered, 0); err == nil {
		t.Error("awaitArrival with nothing left: no error")
	}
}
