package rfc2136

import "time"

// SetTimeout sets the bound of the calls whose context has no deadline
// (TimeoutDefault), so that a test of it takes less than 5 s.
func (c *Client) SetTimeout(d time.Duration) { c.timeout = d }
