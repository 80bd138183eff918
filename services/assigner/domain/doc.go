// Package domain holds the assigner's rules as pure functions, with no I/O:
// a user's effective permissions (rule 3), the settings incompatible with
// staged sessions (rule 4), the zone search order (rule 5), and the plan
// that combines them for one request. The adapters perform the plan.
package domain
