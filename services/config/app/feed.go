package app

// BusEvent is one message of the bus: its subject and its body, a
// CloudEvents 1.0 event in JSON.
type BusEvent struct {
	Subject string
	Data    []byte
}

// EventFeed is the bus's events as they are published, for the admin
// console's live views (adapters.Feed).
type EventFeed interface {
	// Subscribe returns the events published from now on, buffering up to
	// buffer of them. The channel closes when the subscriber falls further
	// behind than that, when the feed stops, or after cancel.
	Subscribe(buffer int) (events <-chan BusEvent, cancel func())
}
