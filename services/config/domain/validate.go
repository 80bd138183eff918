package domain

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/greenroom-dev/greenroom/libs/containerconfig"
)

// FieldError is one problem with one field of a request: a body field (a
// dotted path for nested ones), a query parameter or a header.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// FieldErrors lists a request's problems; the first is the one a client is
// told about first.
type FieldErrors []FieldError

// Add records a problem with field.
func (e *FieldErrors) Add(field, format string, args ...any) {
	*e = append(*e, FieldError{Field: field, Detail: fmt.Sprintf(format, args...)})
}

func (e FieldErrors) Error() string {
	parts := make([]string, len(e))
	for i, fe := range e {
		parts[i] = fe.Field + ": " + fe.Detail
	}
	return strings.Join(parts, "; ")
}

// NamePattern is what names (and usernames) look like: lower case, so that
// references by name are unambiguous.
var NamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// presence says whether a field must be in a body and whether it may be null.
type presence int

const (
	optional presence = iota // may be absent; null is an error
	required                 // must be present and not null
	nullable                 // may be absent or null
)

// present records an error when o breaks p, and reports whether o holds a
// value worth checking further.
func present[T any](errs *FieldErrors, field string, o Optional[T], p presence) bool {
	switch {
	case !o.Set && p == required:
		errs.Add(field, "is required")
	case o.Null && p != nullable:
		errs.Add(field, "must not be null")
	}
	return o.Has()
}

func checkName(errs *FieldErrors, field string, o Optional[string], p presence) {
	if present(errs, field, o, p) && !NamePattern.MatchString(o.Value) {
		errs.Add(field, "%q is not a valid name: use 1 to 63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", o.Value)
	}
}

func checkNonEmpty(errs *FieldErrors, field string, o Optional[string], p presence) {
	if present(errs, field, o, p) && o.Value == "" {
		errs.Add(field, "must not be empty")
	}
}

func checkLength(errs *FieldErrors, field string, o Optional[string], p presence, min, max int) {
	if present(errs, field, o, p) && (len(o.Value) < min || len(o.Value) > max) {
		errs.Add(field, "must be %d to %d characters long", min, max)
	}
}

func checkMin[T int | int32](errs *FieldErrors, field string, o Optional[T], p presence, min T) {
	if present(errs, field, o, p) && o.Value < min {
		errs.Add(field, "must be at least %d", min)
	}
}

func checkRange[T int | int32](errs *FieldErrors, field string, o Optional[T], p presence, min, max T) {
	if present(errs, field, o, p) && (o.Value < min || o.Value > max) {
		errs.Add(field, "must be between %d and %d", min, max)
	}
}

func checkPositive(errs *FieldErrors, field string, o Optional[float64], p presence) {
	if present(errs, field, o, p) && o.Value <= 0 {
		errs.Add(field, "must be greater than 0")
	}
}

// Cores are stored with three decimals (numeric(10,3)).
const (
	coresMin = 0.001
	coresMax = 1_000_000
)

func checkCores(errs *FieldErrors, field string, o Optional[float64], p presence) {
	if present(errs, field, o, p) && (o.Value < coresMin || o.Value > coresMax) {
		errs.Add(field, "must be between %g and %g (cores are counted to three decimals)", coresMin, float64(coresMax))
	}
}

func checkEnum(errs *FieldErrors, field string, o Optional[string], p presence, allowed ...string) {
	if present(errs, field, o, p) && !slices.Contains(allowed, o.Value) {
		errs.Add(field, "must be one of %s", strings.Join(allowed, ", "))
	}
}

func checkPresent[T any](errs *FieldErrors, field string, o Optional[T], p presence) {
	present(errs, field, o, p)
}

// addSettingErrors records the problems libs/containerconfig found in the
// setting called field, each at its key below the field
// ("run_config.privileged", "volume_mappings./srv/{username}.bind",
// "run_config.cap_add[0]"), so the config service and the provisioner
// agree on what is valid.
func addSettingErrors(errs *FieldErrors, field string, problems containerconfig.Errors) {
	for _, p := range problems {
		*errs = append(*errs, FieldError{Field: settingPath(field, p.Field), Detail: p.Detail})
	}
}

func settingPath(field, key string) string {
	switch {
	case key == "":
		return field
	case strings.HasPrefix(key, "["):
		return field + key
	}
	return field + "." + key
}

// checkPath records a problem when the body's path is not absolute and
// clean (and not / unless rootAllowed).
func checkPath(errs *FieldErrors, field string, o Optional[string], p presence, rootAllowed bool) {
	if present(errs, field, o, p) {
		if problem := containerconfig.CheckPath(o.Value, rootAllowed); problem != "" {
			errs.Add(field, "%s", problem)
		}
	}
}
